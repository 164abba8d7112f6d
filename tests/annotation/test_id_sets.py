"""Filters on id sets computed in Python stay one query parameter, so no size is a server error
(it was "too many SQL variables" on SQLite, the embedded default)."""
import pytest

from annotation import review
from annotation.id_sets import in_ids
from annotation.models import Label
from tests.console.review_fixtures import submit

pytestmark = pytest.mark.django_db

# More than SQLite lets a statement bind: 32,766 by default since SQLite 3.32, 250,000 in
# Debian's build (this machine's); filter(id__in=...) failed past it.
MANY = 300_000


def test_a_set_larger_than_sqlites_parameter_limit_filters_and_excludes(make_project, make_user):
    crew = [make_user(f"crew{index}") for index in range(2)]
    project = make_project("Ids", annotators=crew, prompts=3, labels_per_item=2)
    labels = [submit(project, user, choice="A") for user in crew]
    kept = {labels[0].id} | set(range(10**9, 10**9 + MANY))
    assert list(Label.objects.filter(in_ids("id", kept)).values_list("id", flat=True)) == [labels[0].id]
    assert list(Label.objects.exclude(in_ids("id", kept)).values_list("id", flat=True)) == [labels[1].id]
    assert not Label.objects.filter(in_ids("id", [])).exists()


def test_the_label_browser_filters_on_more_labels_than_a_statement_may_bind(
    make_project, make_user, api_client_for, admin_user, monkeypatch
):
    crew = [make_user(f"crew{index}") for index in range(2)]
    project = make_project("Ids", annotators=crew, prompts=3, labels_per_item=2)
    first, second = (submit(project, user, choice="A") for user in crew)
    many = {first.id} | set(range(10**9, 10**9 + MANY))
    monkeypatch.setattr(review, "project_disagreeing_label_ids", lambda project: many)
    monkeypatch.setitem(review.LABEL_ID_SETS, review.MODEL_DISAGREEMENT, (lambda project: many, lambda project: (), None))
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.id}/review/labels/"
    for name in ("disagreement", "model_disagreement"):
        for value, expected in (("true", [first.id]), ("false", [second.id])):
            response = client.get(url, {name: value})
            assert response.status_code == 200, response.content
            assert [row["id"] for row in response.json()["results"]] == expected, (name, value)


EMBEDDED_CHECK = """
import django, os
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from annotation import review
from annotation.models import Label
from annotation.services import project_create, project_import_jsonl
from tests.conftest import prompt_record
from tests.console.review_fixtures import submit
users = [get_user_model().objects.create_user(f"crew{index}") for index in range(2)]
project = project_create(name="Embedded", labels_per_item=2, annotators=users)
project_import_jsonl(project=project, lines=[prompt_record(f"p{i}", "Q?", "good", "bad") for i in range(2)], source="t.jsonl")
first, second = (submit(project, user, choice="A") for user in users)
many = {first.id} | set(range(10**9, 10**9 + %(many)d))
review.project_disagreeing_label_ids = lambda project: many
chosen = [label.id for label in review.review_labels(project=project, filters=review.BrowserFilters(disagreement=True))]
others = [label.id for label in review.review_labels(project=project, filters=review.BrowserFilters(disagreement=False))]
print(connection.vendor, chosen == [first.id], others == [second.id])
"""


def test_the_embedded_default_sqlite_takes_the_same_filters(tmp_path):
    """scripts/test runs on PostgreSQL; the embedded default (scripts/run) is SQLite, where the
    500 was: the same filters there, in a fresh interpreter on a migrated SQLite database."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key not in ("CELERY_BROKER_URL", "DJANGO_ENV")}
    # The embedded default's engine, in a file of this test's own (the default one is var/db.sqlite3).
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", RLHF_VAR_DIR=str(tmp_path), CELERY_BROKER_URL="memory://",
               PYTHONPATH=str(repo))
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDED_CHECK % {"many": MANY}], cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-3:] == ["sqlite", "True", "True"], result.stdout
