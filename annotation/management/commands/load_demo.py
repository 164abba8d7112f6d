import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.models import Project
from annotation.roles import admin_role_set
from annotation.services import project_create, project_import_jsonl

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "demo_project.jsonl"
DEMO_PROJECT = "Demo: everyday assistant"
DEMO_GUIDELINES = """\
## How to judge

Pick the response a careful, expert user would rather receive.

1. **Correct first.** A confident wrong answer is worse than a short right one.
2. **Helpful next.** Does it answer the question that was asked, at the right depth?
3. **Clear and safe.** Prefer well-organised answers; penalise needless refusals.

Use **Tie** only when you genuinely cannot prefer one. Press `?` for keyboard shortcuts.
"""
DEMO_USERS = [("admin", True), ("annotator1", False), ("annotator2", False)]


class Command(BaseCommand):
    help = "Create the demo admin, two demo annotators and the demo project (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password", help="Use this password for all demo users instead of random ones (tests, screenshots)."
        )

    @transaction.atomic
    def handle(self, *args, password=None, **options):
        User = get_user_model()
        created_credentials = []
        users = {}
        for username, is_admin in DEMO_USERS:
            user = User.objects.filter(username=username).first()
            if user is None:
                secret = password or secrets.token_urlsafe(9)
                user = User.objects.create_user(username=username, password=secret, is_superuser=is_admin)
                if is_admin:
                    admin_role_set(user=user, is_admin=True)
                created_credentials.append((username, secret, "admin" if is_admin else "annotator"))
            users[username] = user

        project = Project.objects.filter(name=DEMO_PROJECT).first()
        if project is None:
            project = project_create(
                name=DEMO_PROJECT,
                guidelines=DEMO_GUIDELINES,
                labels_per_item=2,
                annotators=[users["annotator1"], users["annotator2"]],
            )
            with DEMO_FILE.open("rb") as handle:
                summary = project_import_jsonl(project=project, lines=handle, source=DEMO_FILE.name)
            self.stdout.write(f"Demo project {project.name!r}: {summary.prompts} prompts, {summary.items} items.")
        else:
            self.stdout.write(f"Demo project {project.name!r} already exists.")

        if created_credentials:
            self.stdout.write(self.style.SUCCESS("Demo users (write these down, they are shown only once):"))
            for username, secret, role in created_credentials:
                self.stdout.write(f"  {role:<9}  username: {username:<11}  password: {secret}")
        else:
            self.stdout.write("Demo users already exist (passwords were printed when they were created).")
