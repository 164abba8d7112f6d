from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.importing import ImportValidationError
from annotation.models import Project
from annotation.services import project_create, project_import_jsonl
from config.errors import ConflictError


class Command(BaseCommand):
    help = "Import prompts and responses from a JSONL file into a project (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project name (created if --create is given).")
        parser.add_argument("path", type=Path, help="JSONL file: one prompt with its responses per line.")
        parser.add_argument("--create", action="store_true", help="Create the project if it does not exist.")

    def handle(self, *args, project, path, create, **options):
        if not path.is_file():
            raise CommandError(f"{path}: no such file.")
        target = Project.objects.filter(name=project).first()
        if target is None:
            if not create:
                raise CommandError(f"No project named {project!r}; pass --create to create it.")
            target = project_create(name=project)
        try:
            with path.open("rb") as handle:
                # The import history names the command, as the web upload names its user.
                summary = project_import_jsonl(
                    project=target, lines=handle, source=str(path), record_source=f"manage.py import_jsonl {path}"
                )
        except ImportValidationError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path}:{error.line}: {error.field}: {error.message}")
            if exc.error_count > len(exc.errors):
                self.stderr.write(f"{path}: ... and {exc.error_count - len(exc.errors)} more problems not listed.")
            raise CommandError(exc.message) from None
        except ConflictError as exc:  # an archived project
            raise CommandError(exc.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary.prompts} prompts, {summary.responses} responses, "
                f"{summary.items} comparison items into {target.name!r}."
            )
        )
