"""Fixtures shared by every test: users, a project with imported items, API clients."""
import json
import os

import pytest
from rest_framework.test import APIClient

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PASSWORD = "correct-horse-battery"


def prompt_record(external_id: str, question: str, good: str, bad: str) -> str:
    return json.dumps(
        {
            "external_id": external_id,
            "conversation": [{"role": "user", "content": question}],
            "responses": [{"text": good, "model": "model-good"}, {"text": bad, "model": "model-bad"}],
        }
    )


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's million iterations cost about a second per user on a 2-core machine, and the
    suite creates hundreds; tests check who may do what, not the hash (cookiecutter-django
    does the same). PBKDF2 stays available for tests whose passwords a child process checks."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, *, admin: bool = False):
        from annotation.roles import admin_role_set, role_flags

        user = django_user_model.objects.create_user(username=username, password=PASSWORD)
        if admin:
            admin_role_set(user=user, is_admin=True)  # the "Admins" group, as the People page does
        # Loaded as a request loads it (annotation.roles), global roles included.
        return django_user_model.objects.annotate(**role_flags()).get(id=user.id)

    return make


@pytest.fixture
def annotator(make_user):
    return make_user("ann")


@pytest.fixture
def admin_user(make_user):
    return make_user("boss", admin=True)


@pytest.fixture
def make_project():
    from annotation.services import project_create, project_import_jsonl

    def make(name: str = "Helpfulness", *, annotators=(), prompts: int = 3, labels_per_item: int = 1):
        project = project_create(name=name, guidelines="Be **careful**.", labels_per_item=labels_per_item, annotators=annotators)
        lines = [
            prompt_record(f"{name}-{index}", f"Question {index}?", f"A good helpful answer {index}.", f"A bad rude answer {index}.")
            for index in range(prompts)
        ]
        project_import_jsonl(project=project, lines=lines, source="fixture.jsonl")
        return project

    return make


@pytest.fixture
def project(make_project, annotator):
    return make_project(annotators=[annotator])


@pytest.fixture
def api_client_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user=user)
        return client

    return make


@pytest.fixture
def sent_tasks(monkeypatch):
    """The messages training sends to the broker, recorded instead of sent: [(task name, id)]."""
    from training import dispatch

    sent = []
    monkeypatch.setattr(dispatch, "_send", lambda task_name, argument: sent.append((task_name, argument)) or "")
    return sent
