"""PostgreSQL's plans for the dashboard: its label reads go through the ``Label(item, created_at)``
index, one range per item of the project, not through the whole labels table.

A year of labels on a small project beside a bigger one is written in bulk and ANALYZEd; the
dashboard request's statements are then explained, as in ``tests/annotation/test_hot_path_plans.py``
(whose explaining helper this reuses). The index bounds the cost by the project's items and the
window's labels; within one project whose window holds a large share of its labels, PostgreSQL may
rightly prefer reading the table, which is then no bigger than the project.
"""
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import ComparisonItem, ComparisonItemResponse, Label, Prompt, Response
from annotation.services import project_create
from tests.annotation.test_hot_path_plans import _explained
from tests.real_services import require_postgresql

pytestmark = pytest.mark.django_db

ITEMS = 300
OTHER_ITEMS = 3000
ANNOTATORS = 30
LABELS_PER_ITEM = 3
LABELS = Label._meta.db_table


def _project_with_items(name: str, items_count: int, users):
    project = project_create(name=name, labels_per_item=LABELS_PER_ITEM, annotators=users)
    prompts = Prompt.objects.bulk_create(
        [Prompt(project=project, external_id=f"p{i}", conversation=[{"role": "user", "content": f"Q{i}"}]) for i in range(items_count)]
    )
    responses = Response.objects.bulk_create(
        [Response(prompt=prompt, text=f"answer {side}", html=f"<p>answer {side}</p>") for prompt in prompts for side in (0, 1)]
    )
    items = ComparisonItem.objects.bulk_create([ComparisonItem(project=project, prompt=prompt) for prompt in prompts])
    ComparisonItemResponse.objects.bulk_create(
        [ComparisonItemResponse(item=item, response=responses[2 * i + slot], slot=slot) for i, item in enumerate(items) for slot in (0, 1)]
    )
    return project, items, responses


@pytest.fixture
def year_of_labels():
    """The dashboard's project (900 labels) beside a bigger one (90,000), every label spread over a year."""
    require_postgresql("Checking the dashboard's query plans")
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"annotator{index}", password="!") for index in range(ANNOTATORS)]
    )
    project, items, responses = _project_with_items("Dashboard plans", ITEMS, users)
    labels = []
    for i, item in enumerate(items):
        order = [responses[2 * i].id, responses[2 * i + 1].id]
        for k in range(LABELS_PER_ITEM):
            labels.append(Label(item=item, annotator=users[(LABELS_PER_ITEM * i + k) % ANNOTATORS], client_id=uuid.uuid4(),
                                ranking=[[order[0]], [order[1]]], display_order=order))
    Label.objects.bulk_create(labels)
    other, _, _ = _project_with_items("A bigger project", OTHER_ITEMS, users)
    with connection.cursor() as cursor:
        # Every annotator labels every item of the other project: written in SQL, it takes a second.
        cursor.execute(
            f"""INSERT INTO {LABELS} (item_id, annotator_id, client_id, ranking, is_tie, both_bad, rationale, ratings,
                    flags, seconds_spent, display_order, review_status, created_at)
                SELECT item.id, u.id, gen_random_uuid(), '[[1], [2]]', false, false, '', '{{}}', '[]', 0, '[1, 2]',
                    'unreviewed', now()
                FROM annotation_comparisonitem item CROSS JOIN auth_user u
                WHERE item.project_id = %s AND u.id = ANY(%s)""",
            [other.id, [user.id for user in users]],
        )
        # created_at is auto_now_add, so it is moved afterwards: a 30-day window holds about a twelfth.
        cursor.execute(
            f"UPDATE {LABELS} SET created_at = now() - (id % 365) * interval '1 day' - (id % 24) * interval '1 hour'"
        )
        cursor.execute("ANALYZE")
    return project


def _label_reads_without_item(plan: dict) -> list[str]:
    """Reads of the labels table that are not a range of one item's labels (an ``item_id`` index condition)."""
    found = []
    if plan.get("Relation Name") == LABELS and "item_id" not in plan.get("Index Cond", ""):
        found.append(f"{plan['Node Type']} {plan.get('Index Cond', '')}")
    for child in plan.get("Plans", []):
        found += _label_reads_without_item(child)
    return found


def test_the_dashboard_reads_labels_through_the_index(year_of_labels, admin_user, api_client_for):
    with CaptureQueriesContext(connection) as queries:
        response = api_client_for(admin_user).get(f"/api/projects/{year_of_labels.id}/dashboard/")
    assert response.status_code == 200, response.content
    assert sum(row["total"] for row in response.json()["labels_per_day"]["annotators"]) > 0

    statements = [query["sql"] for query in queries.captured_queries]
    explained = _explained(statements)
    assert len([sql for sql, _ in explained if LABELS in sql]) >= 10  # per day, per hour, and one per week
    assert [(sql[:200], tables) for sql, tables in explained if tables] == []
    unbounded = []
    with connection.cursor() as cursor:
        for sql in statements:
            if LABELS in sql and sql.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                unbounded += [(sql[:120], read) for read in _label_reads_without_item(plan[0]["Plan"])]
    assert unbounded == []
