"""The quality API: access for every role, gold marking, statistics, exclusions and disagreements."""
import uuid

import pytest
from rest_framework.test import APIClient

from annotation.models import ComparisonItem, Project, ProjectProgress
from tests.labelling import label_in_order, make_champion
from training.models import AnnotatorExclusionChange
from training.selectors import training_policy_for

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "annotator", "reviewer", "admin")


@pytest.fixture
def world(make_user, make_project):
    users = {
        "annotator": make_user("annie"),
        "reviewer": make_user("rev"),
        "outsider": make_user("outsider"),
        "admin": make_user("root", admin=True),
    }
    project = make_project("Ours", annotators=[users["annotator"]], prompts=3)
    project.reviewers.add(users["reviewer"])
    other = make_project("Theirs", annotators=[users["outsider"]], prompts=1)
    label_in_order(project, users["annotator"], ["A"])
    return {"users": users, "project": project, "other": other}


def client_for(world, role):
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(user=world["users"][role])
    return client


def gold_body(item):
    first, second = item.slots.order_by("slot").values_list("response_id", flat=True)
    return {"ranking": [[first], [second]]}


# (name, method, path, body, statuses in ROLES order)
ENDPOINTS = [
    ("statistics", "get", "/api/projects/{p}/quality-statistics/", None, "401 404 403 200 200"),
    ("report", "get", "/api/projects/{p}/annotator-report/", None, "401 404 403 404 200"),
    ("exclusion-changes", "get", "/api/projects/{p}/exclusion-changes/", None, "401 404 403 404 200"),
    ("disagreements", "get", "/api/projects/{p}/model-disagreements/", None, "401 404 403 404 200"),
    ("exclude", "post", "/api/projects/{p}/annotators/{annotator}/exclusion/", {"excluded": True}, "401 404 403 404 200"),
    ("gold-put", "put", "/api/items/{item}/gold/", "gold", "401 404 403 404 200"),
    ("gold-delete", "delete", "/api/items/{item}/gold/", None, "401 404 403 404 200"),
]


def fill(path, world, project=None):
    project = project or world["project"]
    return path.format(
        p=project.id, annotator=world["users"]["annotator"].id, item=ComparisonItem.objects.filter(project=project).first().id
    )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "body", "expected"), ENDPOINTS, ids=[row[0] for row in ENDPOINTS])
def test_access(world, role, name, method, path, body, expected):
    if body == "gold":
        body = gold_body(world["project"].items.first())
    response = getattr(client_for(world, role), method)(fill(path, world), body, format="json")
    want = int(expected.split()[ROLES.index(role)])
    assert response.status_code == want, (name, role, response.content[:300])
    if want == 404:
        assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(("name", "method", "path", "body", "expected"), ENDPOINTS, ids=[row[0] for row in ENDPOINTS])
def test_ids_of_another_project_look_missing_even_to_members_of_this_one(world, name, method, path, body, expected):
    other = world["other"]
    if body == "gold":
        body = gold_body(other.items.first())
    for role in ("annotator", "reviewer"):
        response = getattr(client_for(world, role), method)(fill(path, world, other), body, format="json")
        assert response.status_code == 404, (name, role)
        assert response.json()["code"] == "not_found"


def test_the_admin_marks_and_unmarks_gold_and_the_counters_follow(world):
    admin = client_for(world, "admin")
    item = world["project"].items.order_by("-id").first()
    body = gold_body(item)
    response = admin.put(f"/api/items/{item.id}/gold/", body, format="json")
    assert response.json() == {"item_id": item.id, "gold_ranking": body["ranking"]}
    assert ProjectProgress.objects.get(project=world["project"]).unfinished_items == 1  # 3 items, 1 labelled, 1 gold
    assert admin.delete(f"/api/items/{item.id}/gold/").json()["gold_ranking"] is None
    assert ProjectProgress.objects.get(project=world["project"]).unfinished_items == 2


def test_an_archived_project_keeps_its_gold_items_as_they_are(world):
    admin = client_for(world, "admin")
    project = world["project"]
    marked, ordinary = project.items.order_by("-id")[:2]
    admin.put(f"/api/items/{marked.id}/gold/", gold_body(marked), format="json")
    project.status = Project.Status.ARCHIVED
    project.save(update_fields=["status"])
    unfinished = ProjectProgress.objects.get(project=project).unfinished_items
    for response in (
        admin.put(f"/api/items/{ordinary.id}/gold/", gold_body(ordinary), format="json"),
        admin.delete(f"/api/items/{marked.id}/gold/"),
    ):
        assert response.status_code == 409, response.content
        assert "archived" in response.json()["detail"]
    assert [item.gold_ranking is not None for item in project.items.filter(id__in=[marked.id, ordinary.id]).order_by("-id")] == [True, False]
    assert ProjectProgress.objects.get(project=project).unfinished_items == unfinished


@pytest.mark.parametrize(
    "body",
    [{}, {"ranking": "A"}, {"ranking": [[1]]}, {"ranking": [["x"]]}, {"ranking": [[]]}, {"ranking": [[0, -1]]},
     {"ranking": [[[[[1]]]]]}, {"ranking": [[1] * 100]}, {"ranking": [["\x00"]]}, {"ranking": None}],
)
def test_a_bad_gold_answer_is_a_400_naming_ranking(world, body):
    item = world["project"].items.first()
    response = client_for(world, "admin").put(f"/api/items/{item.id}/gold/", body, format="json")
    assert response.status_code == 400, response.content
    assert "ranking" in response.json()["fields"]


def test_statistics_read_real_labels(world, make_user):
    second = make_user("second")
    project = world["project"]
    project.annotators.add(second)
    label_in_order(project, second, ["A", "B"])
    body = client_for(world, "reviewer").get(f"/api/projects/{project.id}/quality-statistics/").json()
    assert body["position_bias"]["decisive"] == 3 and body["position_bias"]["left"] == 2
    assert body["gold"] == {"labels": 0, "correct": 0, "accuracy": None}
    assert set(body["alpha"]) == {"nominal", "ordinal", "units", "items"}


def test_exclusion_toggles_the_policy_and_records_who_when_and_why(world):
    project, annotator = world["project"], world["users"]["annotator"]
    admin = client_for(world, "admin")
    url = f"/api/projects/{project.id}/annotators/{annotator.id}/exclusion/"
    first = admin.post(url, {"excluded": True, "reason": "Clicks A every time."}, format="json").json()
    assert first["excluded"] is True and first["change"]["action"] == "excluded"
    assert first["change"]["changed_by"] == "root" and first["change"]["reason"] == "Clicks A every time."
    assert list(training_policy_for(project).excluded_annotators.all()) == [annotator]
    # Asking again changes nothing and records nothing.
    assert admin.post(url, {"excluded": True}, format="json").json()["change"] is None
    report = admin.get(f"/api/projects/{project.id}/annotator-report/").json()
    assert [row["excluded"] for row in report["annotators"]] == [True]
    # Reversible, and the history keeps both.
    assert admin.post(url, {"excluded": False}, format="json").json()["change"]["action"] == "included"
    assert not training_policy_for(project).excluded_annotators.exists()
    history = admin.get(f"/api/projects/{project.id}/exclusion-changes/").json()
    assert [change["action"] for change in history] == ["included", "excluded"]
    assert AnnotatorExclusionChange.objects.filter(project=project).count() == 2


@pytest.mark.parametrize(
    "body", [{}, {"excluded": "maybe"}, {"excluded": True, "reason": "x" * 3000}, {"excluded": True, "reason": "a\x00b"}]
)
def test_a_bad_exclusion_request_is_a_400_naming_the_field(world, body):
    project, annotator = world["project"], world["users"]["annotator"]
    response = client_for(world, "admin").post(
        f"/api/projects/{project.id}/annotators/{annotator.id}/exclusion/", body, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) & {"excluded", "reason"}


def test_only_annotators_of_the_project_can_be_excluded(world):
    project, outsider = world["project"], world["users"]["outsider"]
    response = client_for(world, "admin").post(
        f"/api/projects/{project.id}/annotators/{outsider.id}/exclusion/", {"excluded": True}, format="json"
    )
    assert response.status_code == 404


def test_disagreements_list_where_the_champion_contradicts_the_majority_most_confident_first(make_project, make_user, sent_tasks):
    people = [make_user(f"p{index}") for index in range(3)]
    admin = make_user("chief", admin=True)
    project = make_project("Disagree", annotators=people, prompts=3, labels_per_item=3)
    # Everyone prefers A (model-good) on every item; the champion scores model-bad higher on items 2 and 3.
    for person in people:
        label_in_order(project, person, ["A", "A", "A"])
    make_champion(project, {"model-good": [1.0, 0.0, 0.0], "model-bad": [0.0, 0.5, 3.0]})
    client = APIClient()
    client.force_authenticate(user=admin)
    body = client.get(f"/api/projects/{project.id}/model-disagreements/").json()
    assert body["champion"]["version"] == 1 and body["labels_read"] == 9
    items = list(project.items.order_by("id").values_list("id", flat=True))
    assert [row["item_id"] for row in body["results"]] == [items[2], items[1]]
    top = body["results"][0]
    assert top["people_preferred"]["model_name"] == "model-good" and top["model_preferred"]["model_name"] == "model-bad"
    assert top["votes_for_people"] == 3 and top["votes"] == 3
    assert top["confidence"] == pytest.approx(1 / (1 + 2.718281828459045 ** -3.0))
    report = client.get(f"/api/projects/{project.id}/annotator-report/").json()
    assert report["has_champion"] is True
    assert [row["model_agreement"] for row in report["annotators"]] == [{"compared": 3, "agreed": 1, "rate": pytest.approx(1 / 3)}] * 3
    assert client.get(f"/api/projects/{project.id}/model-disagreements/?limit=0").status_code == 400
    assert client.get(f"/api/projects/{project.id}/model-disagreements/?limit=abc").status_code == 400


def test_the_report_without_a_champion_or_labels(make_project, make_user):
    admin = make_user("chief", admin=True)
    project = make_project("Empty")
    client = APIClient()
    client.force_authenticate(user=admin)
    report = client.get(f"/api/projects/{project.id}/annotator-report/").json()
    assert report["annotators"] == [] and report["has_champion"] is False
    assert client.get(f"/api/projects/{project.id}/model-disagreements/").json() == {
        "champion": None, "labels_read": 0, "results": []
    }


def test_the_quality_page_for_each_role(world):
    from django.test import Client

    statuses = []
    for role in ROLES:
        browser = Client()
        if role != "anonymous":
            browser.force_login(world["users"][role])
        statuses.append(browser.get(f"/projects/{world['project'].id}/quality/").status_code)
    assert statuses == [302, 404, 403, 200, 200]
    page = Client()
    page.force_login(world["users"]["reviewer"])
    html = page.get(f"/projects/{world['project'].id}/quality/").content.decode()
    assert 'id="quality-config"' in html and "<script>" not in html
    assert Client().get(f"/projects/{world['other'].id}/quality/").status_code == 302


def test_the_training_policy_form_records_exclusions_too(world):
    """Excluding through the policy form (PATCH training-policy) leaves the same record as the card's toggle."""
    project, annotator = world["project"], world["users"]["annotator"]
    admin = client_for(world, "admin")
    url = f"/api/projects/{project.id}/training-policy/"
    assert admin.patch(url, {"excluded_annotator_ids": [annotator.id]}, format="json").status_code == 200
    assert admin.patch(url, {"excluded_annotator_ids": [annotator.id]}, format="json").status_code == 200  # no change
    assert admin.patch(url, {"excluded_annotator_ids": []}, format="json").status_code == 200
    history = admin.get(f"/api/projects/{project.id}/exclusion-changes/").json()
    assert [(change["action"], change["changed_by"]) for change in history] == [("included", "root"), ("excluded", "root")]


def test_the_quick_annotator_report_has_the_tally_figures_and_leaves_the_rest_null(world):
    project = world["project"]
    admin = client_for(world, "admin")
    full = admin.get(f"/api/projects/{project.id}/annotator-report/").json()
    quick = admin.get(f"/api/projects/{project.id}/annotator-report/?details=false").json()
    assert (full["details"], quick["details"]) == (True, False)
    kept = ("annotator_id", "username", "labels", "comparisons", "agreement_rate", "accuracy", "excluded")
    assert [{key: row[key] for key in kept} for row in quick["annotators"]] == [
        {key: row[key] for key in kept} for row in full["annotators"]
    ]
    assert all(row[key] is None for row in quick["annotators"] for key in ("gold", "position_bias", "speed", "model_agreement"))
    assert full["annotators"][0]["gold"] is not None
    bad = admin.get(f"/api/projects/{project.id}/annotator-report/?details=maybe")
    assert bad.status_code == 400 and "details" in bad.json()["fields"]
