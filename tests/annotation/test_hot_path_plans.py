"""PostgreSQL's plans for the hot path: no query of next-item, submit or skip scans a big table.

A project of a few thousand items, two thirds of them already labelled by 30 annotators, is
written in bulk and ANALYZEd, so the planner sees realistic statistics. Then each request's
statements are captured and explained (``EXPLAIN (FORMAT JSON)``, which plans without running):
none may read the items, assignments, labels, responses or prompts tables with a Seq Scan
(or walk a whole index of one).
A sequential scan there means the request's cost grows with the project (the query counts are
pinned in ``test_hot_path_queries.py``).
"""
import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation.models import (
    AnnotatorProgress,
    Assignment,
    ComparisonItem,
    ComparisonItemResponse,
    Label,
    Project,
    ProjectProgress,
    Prompt,
    Response,
)
from annotation.services import project_create
from tests.real_services import require_postgresql

pytestmark = pytest.mark.django_db

ITEMS = 3000
LABELLED_ITEMS = 2000
LABELS_PER_ITEM = 3
ANNOTATORS = 30
BIG_TABLES = {model._meta.db_table for model in (ComparisonItem, Assignment, Label, ComparisonItemResponse, Response, Prompt)}


@pytest.fixture
def big_project():
    require_postgresql("Checking the hot path's query plans")
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"annotator{index}", password="!") for index in range(ANNOTATORS)]
    )
    project = project_create(name="Plans", labels_per_item=LABELS_PER_ITEM, annotators=users)
    project_create(name="Another project", labels_per_item=1, annotators=users)
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(project=project, external_id=f"p{i}", conversation=[{"role": "user", "content": f"Q{i}"}],
                   conversation_html=[f"<p>Q{i}</p>"])
            for i in range(ITEMS)
        ]
    )
    responses = Response.objects.bulk_create(
        [Response(prompt=prompt, text=f"answer {side}", html=f"<p>answer {side}</p>") for prompt in prompts for side in (0, 1)]
    )
    items = ComparisonItem.objects.bulk_create(
        [
            # Priorities as a rescoring would leave them, for the uncertainty order's walk.
            ComparisonItem(project=project, prompt=prompt, label_count=LABELS_PER_ITEM if i < LABELLED_ITEMS else 0,
                           model_priority=(i * 7919 % 1000) / 1000)
            for i, prompt in enumerate(prompts)
        ]
    )
    ComparisonItemResponse.objects.bulk_create(
        [
            ComparisonItemResponse(item=item, response=responses[2 * i + slot], slot=slot)
            for i, item in enumerate(items)
            for slot in (0, 1)
        ]
    )
    now = timezone.now()
    assignments, labels = [], []
    for i, item in enumerate(items[:LABELLED_ITEMS]):
        order = [responses[2 * i].id, responses[2 * i + 1].id]
        for k in range(LABELS_PER_ITEM):
            annotator = users[(LABELS_PER_ITEM * i + k) % ANNOTATORS]
            assignments.append(Assignment(item=item, annotator=annotator, status="submitted", display_order=order,
                                          expires_at=now - timedelta(hours=1), finished_at=now))
    Assignment.objects.bulk_create(assignments, batch_size=2000)
    for assignment in assignments:
        labels.append(Label(item_id=assignment.item_id, annotator_id=assignment.annotator_id, assignment=assignment,
                            client_id=uuid.uuid4(), ranking=[[assignment.display_order[0]], [assignment.display_order[1]]],
                            display_order=assignment.display_order))
    Label.objects.bulk_create(labels, batch_size=2000)
    AnnotatorProgress.objects.bulk_create(
        [AnnotatorProgress(project=project, annotator=user, done_total=LABELLED_ITEMS * LABELS_PER_ITEM // ANNOTATORS,
                           day=timezone.localdate()) for user in users]
    )
    ProjectProgress.objects.filter(project=project).update(unfinished_items=ITEMS - LABELLED_ITEMS)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project, users


def _seq_scans(plan: dict) -> list[str]:
    """Big tables read whole: a Seq Scan, or an index scan with no condition (a full index walk)."""
    found = []
    if plan.get("Relation Name") in BIG_TABLES:
        if plan["Node Type"] == "Seq Scan":
            found.append(plan["Relation Name"])
        elif plan["Node Type"] in ("Index Scan", "Index Only Scan") and "Index Cond" not in plan:
            found.append(f"{plan['Relation Name']} (whole index {plan['Index Name']})")
    for child in plan.get("Plans", []):
        found += _seq_scans(child)
    return found


def _explained(statements: list[str]) -> list[tuple[str, list[str]]]:
    """Each SELECT or UPDATE with the big tables it would scan sequentially."""
    results = []
    with connection.cursor() as cursor:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "(SELECT")):
                continue
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            results.append((sql, _seq_scans(plan[0]["Plan"])))
    return results


def _request(client, path: str, body=None) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(path, body or {}, format="json")
    assert response.status_code in (200, 201), response.content
    return response.json(), [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize(
    "selection_order,random_share",
    [("sequential", 0.0), ("uncertainty", 0.0), ("uncertainty", 1.0)],
    ids=["sequential", "uncertainty", "uncertainty-random-draw"],
)
def test_the_hot_path_reads_through_indexes(big_project, api_client_for, selection_order, random_share):
    project, users = big_project
    Project.objects.filter(id=project.id).update(selection_order=selection_order, uncertainty_random_share=random_share)
    client = api_client_for(users[0])
    statements = []

    body, sql = _request(client, f"/api/projects/{project.id}/next-item/")
    statements += sql
    assignment = body["assignment"]
    assert assignment is not None and body["progress"]["remaining"] == ITEMS - LABELLED_ITEMS
    body, sql = _request(client, f"/api/projects/{project.id}/next-item/", {"exclude": [assignment["id"]]})
    statements += sql
    prefetched = body["assignment"]
    _, sql = _request(client, f"/api/assignments/{assignment['id']}/submit/", {"choice": "A", "client_id": str(uuid.uuid4())})
    statements += sql
    _, sql = _request(client, f"/api/assignments/{prefetched['id']}/skip/")
    statements += sql

    explained = _explained(statements)
    assert len(explained) >= 12  # every request's reads and updates were seen
    scanning = [(sql[:200], tables) for sql, tables in explained if tables]
    assert scanning == []
