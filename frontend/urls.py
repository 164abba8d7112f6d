from django.urls import include, path

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<int:project_id>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:project_id>/results/", views.results, name="results"),
]

# The admin console, one module per area.
urlpatterns += [
    path("", include("frontend.console.projects")),
    path("", include("frontend.console.people")),
    path("", include("frontend.console.review")),
    path("", include("frontend.console.quality")),
    path("", include("frontend.console.dashboards")),
]
