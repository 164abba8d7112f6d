from django.urls import include, path

from annotation import views

urlpatterns = [
    path("projects/", views.ProjectListView.as_view(), name="project-list"),
    path("projects/<int:project_id>/", views.ProjectDetailView.as_view(), name="project-detail"),
    path("projects/<int:project_id>/next-item/", views.NextItemView.as_view(), name="next-item"),
    path("projects/<int:project_id>/labels/", views.LabelListView.as_view(), name="label-list"),
    path(
        "projects/<int:project_id>/annotator-quality/", views.AnnotatorQualityView.as_view(), name="annotator-quality"
    ),
    path("projects/<int:project_id>/imports/", views.ImportView.as_view(), name="project-import"),
    path("labels/<int:label_id>/undo/", views.LabelUndoView.as_view(), name="label-undo"),
    path("assignments/<int:assignment_id>/submit/", views.SubmitView.as_view(), name="assignment-submit"),
    path("assignments/<int:assignment_id>/skip/", views.SkipView.as_view(), name="assignment-skip"),
    path("assignments/<int:assignment_id>/heartbeat/", views.HeartbeatView.as_view(), name="assignment-heartbeat"),
]

# The admin console's API, one module per area.
urlpatterns += [
    path("", include("annotation.api.projects")),
    path("", include("annotation.api.people")),
    path("", include("annotation.api.review")),
    path("", include("annotation.api.quality")),
]
