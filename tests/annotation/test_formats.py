"""Every preference format a project can ask for, through the API as a client sends it."""
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation.models import Assignment, ComparisonItem, Label
from annotation.services import project_create, project_import_jsonl

pytestmark = pytest.mark.django_db

CRITERIA = [
    {"key": "helpfulness", "label": "Helpfulness", "scale": 7, "required": True},
    {"key": "honesty", "scale": 5},
]


def ranking_line(external_id, count=4):
    return json.dumps({
        "external_id": external_id,
        "prompt": "Rank these.",
        "responses": [{"text": f"answer {index}", "model": f"m{index}"} for index in range(count)],
    })


@pytest.fixture
def claim(api_client_for, annotator):
    client = api_client_for(annotator)

    def do(project, **body):
        response = client.post(f"/api/projects/{project.id}/next-item/", body, format="json")
        assert response.status_code == 200, response.content
        return response.json()["assignment"]

    do.client = client
    return do


def post_submit(client, assignment_id, **body):
    body.setdefault("client_id", str(uuid.uuid4()))
    return client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")


def test_ranking_project_makes_one_item_per_prompt_and_stores_groups(claim, annotator):
    project = project_create(name="Rank", label_format="ranking", annotators=[annotator])
    project_import_jsonl(project=project, lines=[ranking_line("r1", 4)])
    assert ComparisonItem.objects.get().responses.count() == 4

    payload = claim(project)
    assert [r["position"] for r in payload["responses"]] == ["A", "B", "C", "D"]
    bad = post_submit(claim.client, payload["id"], ranking=[["A"], ["B"]])
    assert bad.status_code == 400 and "exactly once" in bad.json()["detail"]
    bad = post_submit(claim.client, payload["id"], choice="A")
    assert bad.status_code == 400 and bad.json()["fields"] == {"ranking": ["is required in a ranking project (best first, ties grouped)"]}

    ok = post_submit(claim.client, payload["id"], ranking=[["C"], ["A", "D"], ["B"]])
    assert ok.status_code == 201, ok.content
    order = Assignment.objects.get(id=payload["id"]).display_order
    assert Label.objects.get().ranking == [[order[2]], [order[0], order[3]], [order[1]]]


def test_both_bad_is_stored_and_takes_no_strength(claim, project):
    payload = claim(project)
    assert post_submit(claim.client, payload["id"], choice="both_bad", strength=2).status_code == 400
    assert post_submit(claim.client, payload["id"], choice="both_bad").status_code == 201
    label = Label.objects.get()
    assert (label.both_bad, label.is_tie, label.strength) == (True, False, None)


def test_criteria_ratings_are_checked_and_mapped_to_responses(claim, annotator):
    project = project_create(name="Rated", criteria=CRITERIA, annotators=[annotator])
    project_import_jsonl(project=project, lines=[ranking_line("p", 2)])
    payload = claim(project)

    missing = post_submit(claim.client, payload["id"], choice="A", ratings={"A": {"helpfulness": 5}})
    assert missing.status_code == 400 and missing.json()["fields"] == {"ratings.B.helpfulness": ["is required"]}
    out_of_scale = post_submit(claim.client, payload["id"], choice="A", ratings={"A": {"helpfulness": 8}, "B": {"helpfulness": 1}})
    assert out_of_scale.json()["fields"] == {"ratings.A.helpfulness": ["must be a whole number from 1 to 7"]}
    unknown = post_submit(claim.client, payload["id"], choice="A", ratings={"A": {"wit": 3}})
    assert "ratings.A.wit" in unknown.json()["fields"]

    ok = post_submit(claim.client, payload["id"], choice="A", ratings={"A": {"helpfulness": 6, "honesty": 5}, "B": {"helpfulness": 2}})
    assert ok.status_code == 201
    left, right = Assignment.objects.get(id=payload["id"]).display_order
    assert Label.objects.get().ratings == {str(left): {"helpfulness": 6, "honesty": 5}, str(right): {"helpfulness": 2}}


def test_required_rationale_and_flags(claim, annotator):
    project = project_create(name="Why", rationale_mode="required", annotators=[annotator])
    project_import_jsonl(project=project, lines=[ranking_line("p", 2)])
    payload = claim(project)
    missing = post_submit(claim.client, payload["id"], choice="B", rationale="   ")
    assert missing.status_code == 400 and "rationale" in missing.json()["fields"]
    bad_flag = post_submit(claim.client, payload["id"], choice="B", rationale="x", flags=[{"flag": "boring"}])
    assert bad_flag.status_code == 400

    ok = post_submit(
        claim.client, payload["id"], choice="B", rationale="B cites a source",
        flags=[{"flag": "factual_error", "position": "A"}, {"flag": "broken_prompt", "position": "B"}],
    )
    assert ok.status_code == 201, ok.content
    left = Assignment.objects.get(id=payload["id"]).display_order[0]
    assert Label.objects.get().flags == [
        {"flag": "factual_error", "response_id": left},
        {"flag": "broken_prompt", "response_id": None},  # a prompt-level flag is never tied to a response
    ]


def test_undo_reopens_the_item_within_the_window(claim, project, settings):
    payload = claim(project)
    label_id = post_submit(claim.client, payload["id"], choice="A").json()["label"]["id"]

    reopened = claim.client.post(f"/api/labels/{label_id}/undo/")
    assert reopened.status_code == 200
    body = reopened.json()
    assert body["assignment"]["id"] == payload["id"]
    assert [r["text"] for r in body["assignment"]["responses"]] == [r["text"] for r in payload["responses"]]
    assert not Label.objects.exists() and Assignment.objects.get(id=payload["id"]).status == "active"

    relabel = post_submit(claim.client, payload["id"], choice="B")
    assert relabel.status_code == 201
    Label.objects.update(created_at=timezone.now() - timedelta(seconds=settings.LABEL_UNDO_SECONDS + 1))
    late = claim.client.post(f"/api/labels/{relabel.json()['label']['id']}/undo/")
    assert late.status_code == 409 and "can be undone for" in late.json()["detail"]


def test_nobody_can_undo_someone_elses_label(claim, project, api_client_for, make_user):
    payload = claim(project)
    label_id = post_submit(claim.client, payload["id"], choice="A").json()["label"]["id"]
    stranger = make_user("stranger")
    project.annotators.add(stranger)
    assert api_client_for(stranger).post(f"/api/labels/{label_id}/undo/").status_code == 404


def test_prefetch_leases_a_second_item_and_no_more(claim, project):
    current = claim(project)
    assert claim(project)["id"] == current["id"]  # a reload gets the same lease back
    prefetched = claim(project, exclude=[current["id"]])
    assert prefetched["id"] != current["id"] and prefetched["item_id"] != current["item_id"]
    # The fixture project has 3 items: a third lease takes the last one, then the cap
    # (on screen + prefetched + one submit in flight) is reached anyway.
    third_lease = claim(project, exclude=[current["id"], prefetched["id"]])
    assert third_lease is not None
    assert claim(project, exclude=[current["id"], prefetched["id"], third_lease["id"]]) is None
    # Progress counts the items on screen and prefetched as still to do.
    assert claim.client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["progress"]["remaining"] == 3
    for lease in (prefetched, third_lease):
        claim.client.post(f"/api/assignments/{lease['id']}/skip/", {"reason": "test"}, format="json")

    assert post_submit(claim.client, current["id"], choice="A").status_code == 201
    assert claim(project) is None  # the other two were skipped: nothing left for this annotator
