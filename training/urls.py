from django.urls import path

from training import views

urlpatterns = [
    path("projects/<int:project_id>/scores/", views.ProjectScoresView.as_view(), name="project-scores"),
    path("projects/<int:project_id>/model-versions/", views.ModelVersionListView.as_view(), name="model-version-list"),
    path("projects/<int:project_id>/training-policy/", views.TrainingPolicyView.as_view(), name="training-policy"),
    path("model-versions/<int:version_id>/promote/", views.ModelVersionPromoteView.as_view(), name="model-version-promote"),
    path("projects/<int:project_id>/training-runs/", views.TrainingRunListView.as_view(), name="training-run-list"),
]
