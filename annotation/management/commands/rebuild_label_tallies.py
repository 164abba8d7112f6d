from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from annotation.tallies import label_tallies_rebuild


class Command(BaseCommand):
    help = (
        "Count the stored label tallies (annotator agreement, model comparisons) again from the labels. "
        "Run after loading labels around the services (COPY, SQL) or to repair."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", metavar="NAME", help="Rebuild one project's tallies (default: all).")

    def handle(self, *args, project, **options):
        target = None
        if project is not None:
            target = Project.objects.filter(name=project).first()
            if target is None:
                raise CommandError(f"No project named {project!r}.")
        rebuilt = label_tallies_rebuild(project=target)
        self.stdout.write(f"Rebuilt {rebuilt} tallies.")
