"""Active learning: the uncertainty selection order leases what the reward model is least sure of.

Priorities come from the champion's scores at rescoring (``training.priorities``); a share of
the leases is drawn at random instead; without a model the order is the sequential one.
"""
import random
import uuid

import pytest

from annotation import assignment as assignment_module
from annotation.assignment import assignment_claim_next
from annotation.models import ComparisonItem, Response
from annotation.services import label_submit, project_update
from tests.labelling import make_champion
from training.priorities import item_priorities_refresh, item_priority, uncertainty

pytestmark = pytest.mark.django_db

# Per prompt, the champion's scores of (good answer, bad answer): the gap decides how sure it is.
GAPS = [6.0, 0.1, 3.0, 0.0, 8.0, 1.0, 0.5, 4.0]


@pytest.fixture
def scored_project(make_project, annotator, sent_tasks):
    """8 items whose champion score gaps are GAPS; the uncertainty order, no random share."""
    project = make_project(annotators=[annotator], prompts=len(GAPS))
    project_update(project=project, selection_order="uncertainty")
    project.uncertainty_random_share = 0.0
    project.save(update_fields=["uncertainty_random_share"])
    version = make_champion(project, {"model-good": GAPS, "model-bad": [0.0] * len(GAPS)})
    return project, version


def items_by_gap(project) -> dict[float, int]:
    items = ComparisonItem.objects.filter(project=project).order_by("id").values_list("id", flat=True)
    return dict(zip(GAPS, items))


def test_uncertainty_is_one_for_a_coin_toss_and_falls_with_the_gap():
    assert uncertainty([1.0, 1.0]) == 1.0
    assert uncertainty([0.0]) == 0.0
    assert uncertainty([2.0, 0.0]) == pytest.approx(1 - (2 / (1 + 2.718281828 ** -2) - 1))
    assert uncertainty([5.0, 0.0, 4.9]) == pytest.approx(uncertainty([0.1, 0.0]))  # the closest adjacent pair
    assert uncertainty([0.5, 0.0]) > uncertainty([3.0, 0.0]) > uncertainty([6.0, 0.0])


def test_a_majority_the_model_contradicts_outranks_a_sure_call():
    scores = {1: 4.0, 2: 0.0}  # sure that 1 beats 2
    assert item_priority(scores, {}) < 0.05
    contradicted = item_priority(scores, {frozenset({1, 2}): (2, 2, 3)})  # people: 2 beats 1
    assert contradicted == pytest.approx(1 / (1 + 2.718281828 ** -4))
    assert item_priority(scores, {frozenset({1, 2}): (1, 2, 3)}) == item_priority(scores, {})  # people agree


def test_with_a_known_model_the_least_certain_items_are_leased_first(scored_project, annotator):
    project, version = scored_project
    assert item_priorities_refresh(version) == len(GAPS)
    by_gap = items_by_gap(project)
    leased = []
    for _ in GAPS:
        lease = assignment_claim_next(project=project, annotator=annotator, ordering="uncertainty")
        leased.append(lease.item_id)
        label_submit(assignment_id=lease.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    assert leased == [by_gap[gap] for gap in sorted(GAPS)]  # the smallest gap (least sure) first
    assert assignment_claim_next(project=project, annotator=annotator, ordering="uncertainty") is None


def test_without_a_model_the_order_is_the_sequential_one(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=5)
    project.uncertainty_random_share = 0.0  # the random share is tested on its own below
    project.save(update_fields=["uncertainty_random_share"])
    leased = []
    for _ in range(5):
        lease = assignment_claim_next(project=project, annotator=annotator, ordering="uncertainty")
        leased.append(lease.item_id)
        label_submit(assignment_id=lease.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    assert leased == sorted(leased) == list(ComparisonItem.objects.filter(project=project).values_list("id", flat=True))


def test_unscored_items_wait_at_priority_zero(scored_project, annotator):
    project, version = scored_project
    Response.objects.filter(prompt__project=project, model_name="model-bad").order_by("id").first().scores.all().delete()
    item_priorities_refresh(version)
    first = ComparisonItem.objects.filter(project=project).order_by("id").first()
    first.refresh_from_db()
    assert first.model_priority == 0.0


def test_the_random_share_holds(scored_project, annotator, monkeypatch):
    project, version = scored_project
    item_priorities_refresh(version)
    project.uncertainty_random_share = 0.3
    project.save(update_fields=["uncertainty_random_share"])
    random.seed(7)
    draws = {"random": 0, "priority": 0}
    real_random_start = assignment_module._random_start_candidate_ids

    def counted(**kwargs):
        draws["random"] += 1
        return real_random_start(**kwargs)

    monkeypatch.setattr(assignment_module, "_random_start_candidate_ids", counted)
    firsts = []
    from django.utils import timezone

    for _ in range(1000):
        found = assignment_module._open_candidate_ids(project=project, annotator=annotator, now=timezone.now(), ordering="uncertainty")
        firsts.append(found[0])
    share = draws["random"] / 1000
    assert abs(share - 0.3) < 0.045  # 3 standard deviations of a binomial share at n = 1000
    # The priority path always starts at the least certain item; random draws start anywhere.
    least_certain = items_by_gap(project)[min(GAPS)]
    starts = set(firsts) - {least_certain}
    assert len(starts) == len(GAPS) - 1  # every other item came first at least once
    assert firsts.count(least_certain) == pytest.approx(1000 * (0.7 + 0.3 / len(GAPS)), abs=60)


def test_items_written_around_the_orm_start_with_priority_zero(make_project):
    """Bulk loaders COPY items without the column (benchmarks/export.py): the database fills it in."""
    from django.db import connection
    from django.utils import timezone

    project = make_project(prompts=1)
    prompt = project.prompts.get()
    table = ComparisonItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, prompt_id, label_count, created_at) VALUES (%s, %s, 0, %s)",
            [project.id, prompt.id, timezone.now()],
        )
    assert list(ComparisonItem.objects.filter(project=project).values_list("model_priority", flat=True)) == [0.0, 0.0]


def test_priorities_are_stored_exactly_and_only_where_they_changed(make_project, monkeypatch):
    from annotation import services

    monkeypatch.setattr(services, "PRIORITY_BATCH", 2)  # several batches, the last one short
    project = make_project(prompts=5)
    ids = list(ComparisonItem.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    priorities = {item_id: 1 / (index + 3) for index, item_id in enumerate(ids)}
    assert services.item_priorities_store(priorities=priorities) == 5
    stored = dict(ComparisonItem.objects.filter(project=project).values_list("id", "model_priority"))
    assert stored == priorities  # to the last bit

    # A refresh that changes one priority rewrites one row; a deleted item is not an error.
    ComparisonItem.objects.filter(id=ids[4]).delete()
    again = {**priorities, ids[1]: 0.75}
    assert services.item_priorities_store(priorities=again) == 1
    assert dict(ComparisonItem.objects.filter(project=project).values_list("id", "model_priority")) == {
        item_id: again[item_id] for item_id in ids[:4]
    }
    assert services.item_priorities_store(priorities={}) == 0
