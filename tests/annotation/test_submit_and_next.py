"""Submit or skip with ``next``: the judgement and the following lease in one round trip."""
import uuid

import pytest

from annotation.assignment import MAX_OPEN_LEASES
from annotation.models import Assignment, Label
from tests.annotation.test_hot_path_queries import (  # noqa: F401 (project_with_labels is a fixture)
    NEXT_ITEM_QUERIES,
    SKIP_QUERIES,
    SUBMIT_COMPLETING_QUERIES,
    SUBMIT_QUERIES,
    _count,
    project_with_labels,
)

pytestmark = pytest.mark.django_db

# The judgement's queries less its progress read, then next-item's (project, open leases,
# the claim, progress).
SUBMIT_AND_NEXT_QUERIES = SUBMIT_QUERIES - 1 + NEXT_ITEM_QUERIES
SKIP_AND_NEXT_QUERIES = SKIP_QUERIES - 1 + NEXT_ITEM_QUERIES


def lease(client, project, exclude=()):
    response = client.post(f"/api/projects/{project.id}/next-item/", {"exclude": list(exclude)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["assignment"]


def submit(client, assignment_id, **extra):
    body = {"choice": "A", "client_id": str(uuid.uuid4()), **extra}
    return client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")


def test_submit_with_next_stores_the_label_and_leases_the_following_item(api_client_for, make_project, annotator):
    project = make_project(annotators=[annotator], prompts=5, labels_per_item=1)
    client = api_client_for(annotator)
    first = lease(client, project)

    response = submit(client, first["id"], next={"exclude": []})

    assert response.status_code == 201, response.content
    body = response.json()
    assert Label.objects.filter(assignment_id=first["id"]).exists()
    following = body["next"]["assignment"]
    assert following["id"] != first["id"]
    assert Assignment.objects.get(id=following["id"]).status == Assignment.Status.ACTIVE
    # One progress figure, taken after both: the new lease is not "remaining" any less.
    assert body["progress"] == body["next"]["progress"] == {"done_today": 1, "done_total": 1, "remaining": 4}
    # The payload is next-item's (blind, in shown order, ready to render): asking next-item
    # now returns that open lease, exactly as the submit answered it.
    assert lease(client, project) == following
    assert "model_name" not in str(following)


def test_without_next_the_answer_has_no_next_field(api_client_for, project, annotator):
    client = api_client_for(annotator)
    response = submit(client, lease(client, project)["id"])
    assert response.status_code == 201
    assert "next" not in response.json()
    assert submit(client, lease(client, project)["id"], next=None).status_code == 201


def test_next_respects_exclude_the_lease_limit_and_reports_an_empty_queue(api_client_for, make_project, annotator):
    project = make_project(annotators=[annotator], prompts=MAX_OPEN_LEASES + 1, labels_per_item=1)
    client = api_client_for(annotator)
    held = [lease(client, project)]
    for _ in range(MAX_OPEN_LEASES - 1):
        held.append(lease(client, project, exclude=[a["id"] for a in held]))

    # The submitted lease frees a slot, so the page holding the limit still gets one more.
    body = submit(client, held[0]["id"], next={"exclude": [a["id"] for a in held[1:]]}).json()
    fresh = body["next"]["assignment"]
    assert fresh["id"] not in {a["id"] for a in held}

    # Without exclude, the page's own open lease comes back first (reload-safe), never a second claim.
    body = submit(client, held[1]["id"], next={"exclude": []}).json()
    assert body["next"]["assignment"]["id"] in {held[2]["id"], fresh["id"]}

    for assignment in (held[2], fresh):
        body = submit(client, assignment["id"], next={"exclude": [held[2]["id"], fresh["id"]]}).json()
    assert body["next"]["assignment"] is None
    assert body["progress"]["remaining"] == 0


def test_a_retried_submit_with_next_is_one_label_and_no_extra_lease(api_client_for, make_project, annotator):
    project = make_project(annotators=[annotator], prompts=4, labels_per_item=1)
    client = api_client_for(annotator)
    first = lease(client, project)
    body = {"choice": "B", "client_id": str(uuid.uuid4()), "next": {"exclude": []}}

    once = client.post(f"/api/assignments/{first['id']}/submit/", body, format="json")
    again = client.post(f"/api/assignments/{first['id']}/submit/", body, format="json")

    assert (once.status_code, again.status_code) == (201, 200)
    assert once.json()["label"]["id"] == again.json()["label"]["id"]
    # The retry is answered with the lease the first attempt took, not a second one.
    assert again.json()["next"]["assignment"]["id"] == once.json()["next"]["assignment"]["id"]
    assert Assignment.objects.filter(annotator=annotator, status=Assignment.Status.ACTIVE).count() == 1


def test_skip_with_next(api_client_for, make_project, annotator):
    project = make_project(annotators=[annotator], prompts=3, labels_per_item=1)
    client = api_client_for(annotator)
    first = lease(client, project)
    response = client.post(f"/api/assignments/{first['id']}/skip/", {"reason": "unclear", "next": {}}, format="json")
    assert response.status_code == 200, response.content
    following = response.json()["next"]["assignment"]
    assert following["id"] != first["id"]
    assert Assignment.objects.get(id=first["id"]).status == Assignment.Status.SKIPPED


def test_a_refused_submit_leases_nothing(api_client_for, make_project, annotator):
    project = make_project(annotators=[annotator], prompts=3, labels_per_item=1)
    client = api_client_for(annotator)
    first = lease(client, project)
    response = client.post(
        f"/api/assignments/{first['id']}/submit/",
        {"choice": "nonsense", "client_id": str(uuid.uuid4()), "next": {"exclude": []}},
        format="json",
    )
    assert response.status_code == 400
    assert Assignment.objects.filter(annotator=annotator).count() == 1


@pytest.mark.parametrize("bad_next", ["x", [1], {"exclude": "1"}, {"exclude": list(range(11))}])
def test_a_malformed_next_is_a_400_naming_the_field(api_client_for, project, annotator, bad_next):
    client = api_client_for(annotator)
    response = submit(client, lease(client, project)["id"], next=bad_next)
    assert response.status_code == 400
    assert "next" in response.json()["fields"]
    assert not Label.objects.exists()


def test_an_annotator_removed_from_the_project_keeps_the_label_but_gets_no_lease(
    api_client_for, make_project, annotator
):
    project = make_project(annotators=[annotator], prompts=3, labels_per_item=1)
    client = api_client_for(annotator)
    first = lease(client, project)
    project.annotators.remove(annotator)
    response = submit(client, first["id"], next={"exclude": []})
    # The label was stored, so the answer says so; there is just no next item to offer.
    assert response.status_code == 201
    assert "next" not in response.json()
    assert Label.objects.filter(assignment_id=first["id"]).exists()
    assert client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").status_code == 404
    assert Assignment.objects.filter(annotator=annotator, status=Assignment.Status.ACTIVE).count() == 0


@pytest.mark.parametrize("labels", [3, 40])
def test_submit_and_skip_with_next_cost_fixed_queries(project_with_labels, api_client_for, labels):
    project, ann = project_with_labels(labels)
    client = api_client_for(ann)
    with_next = {"next": {"exclude": []}}

    # ``other`` labelled the first item already: this label completes it.
    first = lease(client, project)
    count, response = _count(lambda: submit(client, first["id"], **with_next))
    assert response.status_code == 201
    assert count == SUBMIT_COMPLETING_QUERIES - 1 + NEXT_ITEM_QUERIES

    current = response.json()["next"]["assignment"]
    count, response = _count(lambda: submit(client, current["id"], **with_next))
    assert response.status_code == 201
    assert count == SUBMIT_AND_NEXT_QUERIES

    current = response.json()["next"]["assignment"]
    count, response = _count(lambda: client.post(f"/api/assignments/{current['id']}/skip/", with_next, format="json"))
    assert response.status_code == 200
    assert count == SKIP_AND_NEXT_QUERIES
