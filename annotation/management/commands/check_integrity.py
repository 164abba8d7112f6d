from django.core.management.base import BaseCommand, CommandError

from annotation.integrity import IntegrityReport, integrity_check, integrity_repair
from annotation.management.project_option import add_project_option, project_named


class Command(BaseCommand):
    help = (
        "Check the denormalised annotation state (item label counts, assignment statuses) against the labels. "
        "Exits 1 if drift is found and not repaired, so it can run from cron or CI; --repair fixes it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Fix the drift found, then check again.")
        add_project_option(parser, "Check one project (default: all).")

    def handle(self, *args, repair, project, **options):
        target = project_named(project)
        report = integrity_check(project=target)
        self._write(report)
        if report.clean:
            return
        if not repair:
            raise CommandError("Drift found and not repaired; run again with --repair to fix it.")
        fixed = integrity_repair(project=target)
        self.stdout.write("Repaired: " + ", ".join(f"{check} {count}" for check, count in fixed.items()) + ".")
        after = integrity_check(project=target)
        self._write(after)
        if not after.clean:
            # Only a write racing the repair around the services can leave some; a rerun settles it.
            raise CommandError("Drift remains after the repair; run again.")

    def _write(self, report: IntegrityReport) -> None:
        checked = ", ".join(f"{count} {kind}" for kind, count in report.checked.items())
        self.stdout.write(f"Checked {checked} in {report.scope}:")
        for check in report.checks:
            if not check.count:
                self.stdout.write(f"  ok     {check.check}: no {check.description}")
                continue
            self.stdout.write(self.style.WARNING(f"  DRIFT  {check.check}: {check.count} {check.description}"))
            for example in check.examples:
                self.stdout.write(f"           {example}")
            if check.count > len(check.examples):
                self.stdout.write(f"           ... and {check.count - len(check.examples)} more")
        if report.clean:
            self.stdout.write(self.style.SUCCESS("No drift found."))
