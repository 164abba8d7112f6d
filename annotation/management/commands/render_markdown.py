from django.core.management.base import BaseCommand

from annotation.management.project_option import add_project_option, project_named
from annotation.services import stored_html_render


class Command(BaseCommand):
    help = (
        "Render the stored HTML of every prompt and response again with the current Markdown renderer and "
        "sanitiser. Run it after upgrading nh3 or Markdown, or changing annotation/rendering.py."
    )

    def add_arguments(self, parser):
        add_project_option(parser, "One project (default: all).")

    def handle(self, *args, project, **options):
        target = project_named(project)
        written = stored_html_render(project=target)
        self.stdout.write(f"Rendered {written} prompts and responses again.")
