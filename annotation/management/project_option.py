"""The ``--project NAME`` option that several management commands share."""
from django.core.management.base import CommandError

from annotation.models import Project


def add_project_option(parser, help_text: str) -> None:
    parser.add_argument("--project", metavar="NAME", help=help_text)


def project_named(name: str | None) -> Project | None:
    """The project called ``name``; None when no name was given (the command then means all projects)."""
    if name is None:
        return None
    project = Project.objects.filter(name=name).first()
    if project is None:
        raise CommandError(f"No project named {name!r}.")
    return project
