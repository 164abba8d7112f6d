from django.urls import include, path

from training import events_views, export_views, views

urlpatterns = [
    path("projects/<int:project_id>/scores/", views.ProjectScoresView.as_view(), name="project-scores"),
    path("projects/<int:project_id>/model-versions/", views.ModelVersionListView.as_view(), name="model-version-list"),
    path("projects/<int:project_id>/training-policy/", views.TrainingPolicyView.as_view(), name="training-policy"),
    path("model-versions/<int:version_id>/promote/", views.ModelVersionPromoteView.as_view(), name="model-version-promote"),
    path("projects/<int:project_id>/training-runs/", views.TrainingRunListView.as_view(), name="training-run-list"),
    path("projects/<int:project_id>/export/pairs/", export_views.PairsExportView.as_view(), name="export-pairs"),
    path("projects/<int:project_id>/export/labels/", export_views.LabelsExportView.as_view(), name="export-labels"),
    path("projects/<int:project_id>/export/scores/", export_views.ScoresExportView.as_view(), name="export-scores"),
    path("projects/<int:project_id>/export/leaderboard/", export_views.LeaderboardExportView.as_view(), name="export-leaderboard"),
    path("model-versions/<int:version_id>/snapshot/", export_views.ModelVersionSnapshotView.as_view(), name="model-version-snapshot"),
    path("projects/<int:project_id>/leaderboard/", views.LeaderboardView.as_view(), name="project-leaderboard"),
    path("projects/<int:project_id>/events/", events_views.ProjectEventsView.as_view(), name="project-events"),
]

# The admin console's training-side API, one module per area.
urlpatterns += [
    path("", include("training.api.model_quality")),
    path("", include("training.api.dashboards")),
]
