import time

from django.core.management.base import BaseCommand

from annotation.management.project_option import add_project_option, project_named
from annotation.tallies import label_tallies_fold


class Command(BaseCommand):
    help = (
        "Store newly settled labels in the label tallies, as Celery beat does every LABEL_TALLY_FOLD_SECONDS. "
        "For deployments that schedule it themselves (cron, or --every) instead of running beat."
    )

    def add_arguments(self, parser):
        add_project_option(parser, "Fold one project's tallies (default: all).")
        parser.add_argument(
            "--every", type=float, metavar="SECONDS",
            help="Keep folding, every SECONDS, until interrupted (default: once).",
        )

    def handle(self, *args, project, every, **options):
        target = project_named(project)
        while True:
            result = label_tallies_fold(project=target)
            self.stdout.write(f"Folded {result['folded']} labels into the tallies of {result['projects']} projects.")
            if not every:
                return
            time.sleep(every)
