from django.core.management.base import BaseCommand

from annotation.management.project_option import add_project_option, project_named
from annotation.tallies import label_tallies_rebuild


class Command(BaseCommand):
    help = (
        "Count the stored label tallies (annotator agreement, model comparisons) again from the labels. "
        "Run after loading labels around the services (COPY, SQL) or to repair."
    )

    def add_arguments(self, parser):
        add_project_option(parser, "Rebuild one project's tallies (default: all).")

    def handle(self, *args, project, **options):
        target = project_named(project)
        rebuilt = label_tallies_rebuild(project=target)
        self.stdout.write(f"Rebuilt {rebuilt} tallies.")
