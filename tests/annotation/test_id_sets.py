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
    monkeypatch.setitem(review.LABEL_ID_SETS, review.MODEL_DISAGREEMENT, (lambda project: many, lambda project: ()))
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.id}/review/labels/"
    for name in ("disagreement", "model_disagreement"):
        for value, expected in (("true", [first.id]), ("false", [second.id])):
            response = client.get(url, {name: value})
            assert response.status_code == 200, response.content
            assert [row["id"] for row in response.json()["results"]] == expected, (name, value)
