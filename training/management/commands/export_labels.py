import sys

from django.core.management.base import BaseCommand, CommandError

from annotation.models import Project
from config.errors import DomainError
from training.export import KINDS, PAIR_STYLES, ExportRequest, project_export


class Command(BaseCommand):
    help = "Export a project's pairs, labels or scores to a file: the same bytes as the export API."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name or id.")
        parser.add_argument("--kind", choices=KINDS, default="labels")
        parser.add_argument("--format", dest="export_format", choices=("jsonl", "csv"), default="jsonl")
        parser.add_argument("--style", choices=PAIR_STYLES, default="plain", help="Pairs only.")
        parser.add_argument("--ties", choices=("0", "1"), help="Pairs only; default: the project's training policy.")
        parser.add_argument("--model-version", dest="model_version", type=int, help="Scores only; default: the champion.")
        parser.add_argument("--out", required=True, help="File to write ('-' for standard output).")

    def handle(self, *args, project, kind, export_format, style, ties, model_version, out, **options):
        lookup = {"id": int(project)} if project.isdigit() else {"name": project}
        target = Project.objects.filter(**lookup).first()
        if target is None:
            raise CommandError(f"No project {project!r}.")
        request = ExportRequest(
            kind=kind, export_format=export_format, style=style,
            ties=None if ties is None else ties == "1", version=model_version,
        )
        try:
            export = project_export(target, request)
        except DomainError as error:
            raise CommandError(error.message) from error
        handle = sys.stdout.buffer if out == "-" else open(out, "wb")  # noqa: SIM115 - closed below
        lines = 0
        try:
            for line in export.lines:
                handle.write(line.encode())
                lines += 1
                if lines % 1000 == 0:
                    self.stderr.write(f"\r{lines} lines", ending="")
        finally:
            if handle is not sys.stdout.buffer:
                handle.close()
        self.stderr.write(f"\r{lines} lines written ({kind}, {export_format}) to {out}")
