from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.services import stored_html_render


class Command(BaseCommand):
    help = (
        "Render the stored HTML of every prompt and response again with the current Markdown renderer and "
        "sanitiser. Run it after upgrading nh3 or Markdown, or changing annotation/rendering.py."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", metavar="NAME", help="One project (default: all).")

    def handle(self, *args, project, **options):
        target = None
        if project is not None:
            target = Project.objects.filter(name=project).first()
            if target is None:
                raise CommandError(f"No project named {project!r}.")
        written = stored_html_render(project=target)
        self.stdout.write(f"Rendered {written} prompts and responses again.")
