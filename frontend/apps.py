from django.apps import AppConfig


class FrontendConfig(AppConfig):
    """Server-rendered pages and the annotator client; they talk to the JSON API like any other client."""

    name = "frontend"
    verbose_name = "Frontend"
