"""The annotation hot path costs a fixed number of queries, whatever the size of the project.

Each request is measured on a project where the annotator and others already have few labels,
then on one where they have many: the counts must be equal and equal to the pinned number
(savepoints included: the test's transaction turns each service's ``atomic`` into one). A
change that adds a query to next-item or submit, or makes one depend on the number of
labels, fails here rather than in a benchmark. The plans behind these queries are checked on
PostgreSQL in ``test_hot_path_plans.py``.
"""
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.assignment import assignment_claim_next
from annotation.models import AnnotatorProgress, Assignment, Label, Prompt, Response
from annotation.rendering import render_markdown
from annotation.services import label_delete, label_submit

pytestmark = pytest.mark.django_db

# Project (scoped to the user), open leases, candidates, lock the item (with its prompt),
# the item's assignments, its responses (ids to shuffle, texts and HTML to show), insert the
# lease, progress; and a savepoint and its release around the claim.
NEXT_ITEM_QUERIES = 10
# A lease already open comes back without a claim: project, open leases, responses, progress.
NEXT_ITEM_REUSED_LEASE_QUERIES = 4
# client_id look-up, lock the assignment (with item and project), insert the label, mark the
# assignment submitted, label_count + 1, the annotator's progress row, progress; savepoints.
SUBMIT_QUERIES = 9
# The submit that completes an item also finds the others who labelled or skipped it, locks
# their progress rows and updates them, and the project's count of unfinished items.
SUBMIT_COMPLETING_QUERIES = SUBMIT_QUERIES + 4
# Lock the assignment, mark it skipped, read label_count under the item's lock, the
# annotator's progress row, progress; savepoints.
SKIP_QUERIES = 7


def _label(project, user, count: int) -> None:
    for _ in range(count):
        lease = assignment_claim_next(project=project, annotator=user)
        label_submit(assignment_id=lease.id, annotator=user, client_id=uuid.uuid4(), choice="A")


@pytest.fixture
def project_with_labels(make_project, make_user):
    """A project where ``ann`` has labelled ``labels`` items and ``other`` one more (2 labels wanted)."""

    def make(labels: int):
        ann, other = make_user("ann"), make_user("other")
        project = make_project(annotators=[ann, other], prompts=labels + 20, labels_per_item=2)
        _label(project, ann, labels)
        _label(project, other, labels + 1)
        return project, ann

    return make


def _count(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return len(queries.captured_queries), result


@pytest.mark.parametrize("labels", [3, 40])
def test_next_item_and_submit_cost_the_same_queries_whatever_the_labels(project_with_labels, api_client_for, labels):
    project, ann = project_with_labels(labels)
    client = api_client_for(ann)

    count, response = _count(lambda: client.post(f"/api/projects/{project.id}/next-item/", {}, format="json"))
    assert response.status_code == 200 and response.json()["assignment"] is not None
    assert count == NEXT_ITEM_QUERIES
    assignment_id = response.json()["assignment"]["id"]

    count, again = _count(lambda: client.post(f"/api/projects/{project.id}/next-item/", {}, format="json"))
    assert again.json()["assignment"]["id"] == assignment_id
    assert count == NEXT_ITEM_REUSED_LEASE_QUERIES

    def submit(assignment_id):
        body = {"choice": "A", "client_id": str(uuid.uuid4())}
        return _count(lambda: client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json"))

    # ``other`` labelled this item already: this label completes it.
    count, response = submit(assignment_id)
    assert response.status_code == 201
    assert count == SUBMIT_COMPLETING_QUERIES
    assert response.json()["progress"]["done_total"] == labels + 1

    lease = client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["assignment"]
    count, response = submit(lease["id"])
    assert response.status_code == 201
    assert count == SUBMIT_QUERIES

    lease = client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["assignment"]
    count, response = _count(lambda: client.post(f"/api/assignments/{lease['id']}/skip/", {}, format="json"))
    assert response.status_code == 200
    assert count == SKIP_QUERIES


def test_progress_matches_a_recount(project_with_labels, api_client_for):
    project, ann = project_with_labels(6)
    progress = api_client_for(ann).post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["progress"]
    done = Label.objects.filter(item__project=project, annotator=ann).count()
    finished_by_ann = set(
        Assignment.objects.filter(annotator=ann, status__in=["submitted", "skipped"]).values_list("item_id", flat=True)
    )
    unfinished_unseen = len(set(project.items.filter(label_count__lt=2).values_list("id", flat=True)) - finished_by_ann)
    assert progress == {"done_today": done, "done_total": done, "remaining": unfinished_unseen}


def test_done_today_starts_again_on_a_new_day(project_with_labels, api_client_for):
    project, ann = project_with_labels(4)
    AnnotatorProgress.objects.filter(project=project, annotator=ann).update(day=timezone.localdate() - timedelta(days=1))
    client = api_client_for(ann)
    assert client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["progress"]["done_today"] == 0
    lease = client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["assignment"]
    body = {"choice": "B", "client_id": str(uuid.uuid4())}
    progress = client.post(f"/api/assignments/{lease['id']}/submit/", body, format="json").json()["progress"]
    assert (progress["done_today"], progress["done_total"]) == (1, 5)


def test_undo_and_admin_delete_take_the_label_out_of_progress(project_with_labels, api_client_for):
    project, ann = project_with_labels(3)
    client = api_client_for(ann)
    last = Label.objects.filter(annotator=ann).latest("id")
    progress = client.post(f"/api/labels/{last.id}/undo/", {}, format="json").json()["progress"]
    assert (progress["done_today"], progress["done_total"]) == (2, 2)
    label_delete(label_id=Label.objects.filter(annotator=ann).latest("id").id)
    row = AnnotatorProgress.objects.get(project=project, annotator=ann)
    assert (row.done_today, row.done_total) == (1, 1)


def test_a_retried_submit_does_not_count_twice(project, annotator, api_client_for):
    client = api_client_for(annotator)
    lease = client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["assignment"]
    body = {"choice": "A", "client_id": str(uuid.uuid4())}
    assert client.post(f"/api/assignments/{lease['id']}/submit/", body, format="json").status_code == 201
    retry = client.post(f"/api/assignments/{lease['id']}/submit/", body, format="json")
    assert retry.status_code == 200 and retry.json()["progress"]["done_total"] == 1


def test_markdown_is_rendered_at_import_and_served_as_stored(project, annotator, api_client_for):
    prompt = Prompt.objects.filter(project=project).first()
    assert prompt.conversation_html == [render_markdown(m["content"]) for m in prompt.conversation]
    assert all(r.html == render_markdown(r.text) for r in Response.objects.filter(prompt__project=project))
    # What is served is the stored HTML, not a fresh rendering...
    Response.objects.filter(prompt__project=project).update(html="<p>stored</p>")
    lease = api_client_for(annotator).post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()
    assert {r["html"] for r in lease["assignment"]["responses"]} == {"<p>stored</p>"}


def test_rows_without_stored_html_are_rendered_when_shown(project, annotator, api_client_for):
    # ...and rows a bulk loader wrote without it are rendered, sanitised the same way.
    Prompt.objects.filter(project=project).update(conversation_html=None)
    Response.objects.filter(prompt__project=project).update(html=None)
    Response.objects.filter(prompt__project=project).update(text="<script>x()</script>**bold**")
    lease = api_client_for(annotator).post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()
    responses = lease["assignment"]["responses"]
    assert {r["html"] for r in responses} == {render_markdown("<script>x()</script>**bold**")}
    assert "<script>" not in responses[0]["html"]
    assert lease["assignment"]["conversation"][0]["html"] == render_markdown(lease["assignment"]["conversation"][0]["content"])


def test_counters_agree_with_a_recount_after_any_mix_of_events(make_project, make_user, admin_user):
    """Submits that complete items, skips, undos, deletions, a new import and a change of overlap."""
    import random

    from annotation import progress
    from annotation.selectors import annotator_progress
    from annotation.services import assignment_skip, label_undo, project_import_jsonl, project_update
    from tests.conftest import prompt_record

    users = [make_user(f"u{index}") for index in range(4)]
    project = make_project(annotators=users, prompts=12, labels_per_item=2)
    rng = random.Random(7)

    def check():
        project.refresh_from_db()
        for user in users:
            recount = progress.annotator_counts(project=project, annotator_id=user.id)
            expected = {
                "done_today": recount["done_today"],
                "done_total": recount["done_total"],
                "remaining": progress.unfinished_count(project=project) - recount["seen_unfinished"],
            }
            assert annotator_progress(project=project, annotator=user) == expected

    for step in range(80):
        user = rng.choice(users)
        action = rng.random()
        own_labels = list(Label.objects.filter(annotator=user, item__project=project, assignment__isnull=False))
        if action < 0.1 and own_labels:
            label_undo(label_id=rng.choice(own_labels).id, annotator=user)
        elif action < 0.17 and own_labels:
            label_delete(label_id=rng.choice(own_labels).id)
        else:
            lease = assignment_claim_next(project=project, annotator=user)
            if lease is None:
                continue
            if action < 0.35:
                assignment_skip(assignment_id=lease.id, annotator=user)
            else:
                label_submit(assignment_id=lease.id, annotator=user, client_id=uuid.uuid4(), choice="A")
        if step == 40:
            project_import_jsonl(project=project, lines=[prompt_record("late", "Q?", "good", "bad")], source="late.jsonl")
        if step == 60:
            project_update(project=project, labels_per_item=3)
        check()


@pytest.mark.parametrize("by_priority", [False, True], ids=["sequential", "uncertainty"])
def test_the_indexed_claim_picks_what_open_items_for_describes(make_project, make_user, by_priority):
    """The claim's SQL (one branch per label count) and the ORM's definition of "open" and of the order agree."""
    from datetime import timedelta as delta

    from annotation.assignment import CANDIDATES_PER_CLAIM, ORDERINGS, _indexed_candidate_ids, open_items_for
    from annotation.models import ComparisonItem
    from annotation.services import assignment_skip

    users = [make_user(f"v{index}") for index in range(5)]
    project = make_project(annotators=users, prompts=40, labels_per_item=3)
    for index, item in enumerate(ComparisonItem.objects.filter(project=project).order_by("id")):
        item.model_priority = (index * 37 % 11) / 10  # ties too, broken by id
        item.save(update_fields=["model_priority"])
    for index, user in enumerate(users):
        for step in range(6 + 3 * index):
            lease = assignment_claim_next(project=project, annotator=user)
            if step % 4 == 3:
                assignment_skip(assignment_id=lease.id, annotator=user)
            elif step % 5 != 4:  # every fifth lease is left open
                label_submit(assignment_id=lease.id, annotator=user, client_id=uuid.uuid4(), choice="A")
    Assignment.objects.filter(status="active", id__in=Assignment.objects.filter(status="active").values("id")[:3]).update(
        expires_at=timezone.now() - delta(minutes=1)
    )
    now = timezone.now()
    order = ORDERINGS["uncertainty" if by_priority else "sequential"]
    for user in users:
        expected = list(order(open_items_for(project=project, annotator=user, now=now)).values_list("id", flat=True))
        found = _indexed_candidate_ids(project=project, annotator=user, now=now, by_priority=by_priority)
        assert found == expected[:CANDIDATES_PER_CLAIM]


def test_an_integrity_repair_recounts_progress(project_with_labels):
    from annotation import progress
    from annotation.integrity import integrity_repair
    from annotation.selectors import annotator_progress

    project, ann = project_with_labels(5)
    Label.objects.filter(annotator=ann).order_by("id").first().delete()  # outside the services
    integrity_repair(project=project)
    recount = progress.annotator_counts(project=project, annotator_id=ann.id)
    assert annotator_progress(project=project, annotator=ann) == {
        "done_today": recount["done_today"],
        "done_total": 4,
        "remaining": progress.unfinished_count(project=project) - recount["seen_unfinished"],
    }
