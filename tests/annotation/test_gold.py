"""Gold items: marking, importing, the claim's mix, the counters and gold accuracy."""
import hashlib
import json
import uuid

import pytest
from django.conf import settings

from annotation import gold
from annotation.assignment import assignment_claim_next
from annotation.models import Assignment, ComparisonItem, ProjectProgress
from annotation.progress import progress_recount
from annotation.selectors import annotator_progress, assignment_payload
from annotation.services import label_submit, label_undo, project_create, project_import_jsonl
from config.errors import DomainError

pytestmark = pytest.mark.django_db


def responses_of(item):
    return list(item.slots.order_by("slot").values_list("response_id", flat=True))


def make_gold(project, count):
    """The project's first ``count`` items become gold, the first response best."""
    items = list(ComparisonItem.objects.filter(project=project).order_by("id")[:count])
    for item in items:
        first, second = responses_of(item)
        gold.item_gold_set(item=item, ranking=[[first], [second]])
    return items


def draw(project, user, dealt: int) -> bool:
    """``gold_lease_drawn``'s rule, written out: a hash of the secret key, project, annotator and leases dealt."""
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:gold:{project.id}:{user.id}:{dealt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < project.gold_rate


def counters_match_a_recount(project, annotators):
    stored = ProjectProgress.objects.get(project=project).unfinished_items
    seen = [annotator_progress(project=project, annotator=user) for user in annotators]
    progress_recount(project=project)
    assert ProjectProgress.objects.get(project=project).unfinished_items == stored
    assert [annotator_progress(project=project, annotator=user) for user in annotators] == seen
    return stored


def test_a_gold_answer_must_name_exactly_the_items_responses(project):
    item = project.items.first()
    first, second = responses_of(item)
    for bad in ([[first]], [[first], [first, second]], [[first], [second + 1000]], "A", [["x"], [second]], [[]], [[True], [second]]):
        with pytest.raises(DomainError) as refused:
            gold.item_gold_set(item=item, ranking=bad)
        assert "ranking" in refused.value.fields
    assert gold.item_gold_set(item=item, ranking=[[second], [first]]).gold_ranking == [[second], [first]]
    assert gold.item_gold_set(item=item, ranking=[[first, second]]).gold_ranking == [[first, second]]  # a tie


def test_gold_items_leave_the_counters_and_come_back_when_unmarked(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=4)
    assert ProjectProgress.objects.get(project=project).unfinished_items == 4
    items = make_gold(project, 1)
    assert ProjectProgress.objects.get(project=project).unfinished_items == 3
    assert annotator_progress(project=project, annotator=annotator)["remaining"] == 3
    gold.item_gold_clear(item=items[0])
    assert ProjectProgress.objects.get(project=project).unfinished_items == 4


def test_ordinary_claims_never_deal_a_gold_item_and_the_project_ends_with_its_ordinary_items(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=4)  # gold_rate 0
    gold_ids = {item.id for item in make_gold(project, 2)}
    dealt = []
    while (lease := assignment_claim_next(project=project, annotator=annotator)) is not None:
        dealt.append(lease.item_id)
        label_submit(assignment_id=lease.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    assert len(dealt) == 2 and not set(dealt) & gold_ids
    assert annotator_progress(project=project, annotator=annotator)["remaining"] == 0


def test_the_claim_mixes_gold_in_at_the_gold_rate_each_once_and_reproducibly(make_project, make_user):
    users = [make_user(f"ann{index}") for index in range(2)]
    project = make_project(annotators=users, prompts=200)
    gold_ids = {item.id for item in make_gold(project, 100)}
    project.gold_rate = 0.25
    project.save(update_fields=["gold_rate"])

    def run(user, claims):
        dealt = []
        for _ in range(claims):
            lease = assignment_claim_next(project=project, annotator=user)
            dealt.append(lease.item_id)
            label_submit(assignment_id=lease.id, annotator=user, choice="A", client_id=uuid.uuid4())
        return dealt

    first = run(users[0], 80)
    gold_dealt = [item_id for item_id in first if item_id in gold_ids]
    # 80 draws at 0.25: 20 expected; the draw is a hash, so the count is the same on every run.
    assert 8 <= len(gold_dealt) <= 32
    assert len(set(gold_dealt)) == len(gold_dealt)  # never the same gold item twice
    # Reproducible: the k-th lease is gold exactly when the documented hash of k says so.
    expected = [draw(project, users[0], dealt) for dealt in range(80)]
    assert [item_id in gold_ids for item_id in first] == expected
    # A second annotator gets gold items the first one already labelled: gold has no slots.
    second = run(users[1], 30)
    assert {item_id for item_id in second if item_id in gold_ids} & set(gold_dealt)
    # Labelling gold left the counters exact.
    assert counters_match_a_recount(project, users) == 100 - sum(1 for item_id in first + second if item_id not in gold_ids)


def test_the_draw_is_reproducible(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=1)
    project.gold_rate = 0.5
    draws = [gold.gold_lease_drawn(project=project, annotator=annotator) for _ in range(3)]
    assert draws == [draws[0]] * 3  # nothing dealt in between: the same draw
    project.gold_rate = 0.0
    assert gold.gold_lease_drawn(project=project, annotator=annotator) is False
    project.gold_rate = 1.0
    assert gold.gold_lease_drawn(project=project, annotator=annotator) is True


def test_a_gold_lease_looks_like_any_other(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=2)
    (gold_item,) = make_gold(project, 1)
    project.gold_rate = 1.0
    project.save(update_fields=["gold_rate"])
    gold_lease = assignment_claim_next(project=project, annotator=annotator)
    assert gold_lease.item_id == gold_item.id
    ordinary = assignment_claim_next(project=project, annotator=annotator, exclude_ids=[gold_lease.id])
    assert ordinary.item_id != gold_item.id  # every gold item seen: an ordinary one instead
    payloads = [assignment_payload(Assignment.objects.select_related("item__prompt").get(id=lease.id)) for lease in (gold_lease, ordinary)]
    assert payloads[0].keys() == payloads[1].keys()
    assert [r.keys() for r in payloads[0]["responses"]] == [r.keys() for r in payloads[1]["responses"]]
    assert "gold" not in json.dumps(payloads[0], default=str)


def test_undo_and_skip_of_a_gold_item_keep_the_counters_exact(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=3)
    make_gold(project, 2)
    project.gold_rate = 1.0
    project.save(update_fields=["gold_rate"])
    lease = assignment_claim_next(project=project, annotator=annotator)
    label, _ = label_submit(assignment_id=lease.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    label_undo(label_id=label.id, annotator=annotator)
    from annotation.services import assignment_skip

    assignment_skip(assignment_id=lease.id, annotator=annotator)
    assert counters_match_a_recount(project, [annotator]) == 1
    assert annotator_progress(project=project, annotator=annotator)["remaining"] == 1


def test_gold_accuracy_is_the_share_of_gold_labels_matching_the_answer(make_project, make_user):
    good, bad = make_user("good"), make_user("bad")
    project = make_project(annotators=[good, bad], prompts=4)
    items = make_gold(project, 3)
    project.gold_rate = 1.0
    project.save(update_fields=["gold_rate"])
    for user, wrong in ((good, 0), (bad, 2)):
        for index in range(3):
            lease = assignment_claim_next(project=project, annotator=user)
            lease.display_order = responses_of(lease.item)  # A is the gold winner
            lease.save()
            choice = "B" if index < wrong else "A"
            label_submit(assignment_id=lease.id, annotator=user, choice=choice, client_id=uuid.uuid4())
    counts = gold.gold_accuracy_counts(project_id=project.id)
    assert counts[good.id] == {"labels": 3, "correct": 3, "accuracy": 1.0}
    assert counts[bad.id] == {"labels": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)}
    assert gold.project_gold_summary(counts) == {"labels": 6, "correct": 4, "accuracy": pytest.approx(4 / 6)}
    assert {lease.item_id for lease in Assignment.objects.filter(annotator=good)} == {item.id for item in items}


def test_a_tie_on_a_gold_pair_matches_only_a_tie():
    assert gold.label_matches_gold([[1, 2]], [[1, 2]])
    assert not gold.label_matches_gold([[1], [2]], [[1, 2]])
    assert gold.label_matches_gold([[3], [1, 2]], [[3], [1, 2]])
    assert not gold.label_matches_gold([[3], [2], [1]], [[3], [1, 2]])


def test_import_carries_gold_answers_by_response_index(admin_user):
    project = project_create(name="Gold import")
    line = {
        "external_id": "g-1",
        "prompt": "Which is best?",
        "responses": [{"text": "worst"}, {"text": "best"}, {"text": "middle"}],
        "gold": [1, 2, 0],
    }
    plain = {"external_id": "p-1", "prompt": "Anything?", "responses": [{"text": "x"}, {"text": "y"}]}
    project_import_jsonl(project=project, lines=[json.dumps(line), json.dumps(plain)], source="gold.jsonl")
    items = ComparisonItem.objects.filter(project=project, prompt__external_id="g-1")
    ids = {text: response_id for response_id, text in project.prompts.get(external_id="g-1").responses.values_list("id", "text")}
    answers = sorted(item.gold_ranking for item in items)
    assert answers == sorted([
        [[ids["best"]], [ids["worst"]]], [[ids["best"]], [ids["middle"]]], [[ids["middle"]], [ids["worst"]]],
    ])
    assert ComparisonItem.objects.filter(project=project, gold_ranking__isnull=True).count() == 1
    assert ProjectProgress.objects.get(project=project).unfinished_items == 1  # gold items are not work


@pytest.mark.parametrize("bad", [[0], [0, 0], [0, 5], ["0", 1], [[0], []], {"a": 1}, [True, 0], [[[0]], [1]]])
def test_import_refuses_a_bad_gold_field_naming_it(bad):
    from annotation.importing import ImportValidationError, parse_jsonl

    line = {"prompt": "Q?", "responses": [{"text": "x"}, {"text": "y"}], "gold": bad}
    with pytest.raises(ImportValidationError) as refused:
        parse_jsonl([json.dumps(line)])
    assert refused.value.errors[0].field == "gold"


@pytest.mark.parametrize("then", ["submit", "undo", "skip", "clear"])
def test_an_item_made_gold_while_annotators_hold_it_keeps_the_counters_exact(make_project, make_user, then):
    """The item page makes gold in one click, leases out or not: whatever the lease does next, and
    whether the item is made ordinary again afterwards, the counters equal a recount."""
    from annotation.services import assignment_skip

    first, second = make_user("first"), make_user("second")
    project = make_project(annotators=[first, second], prompts=2, labels_per_item=2)
    done = assignment_claim_next(project=project, annotator=first)
    label, _ = label_submit(assignment_id=done.id, annotator=first, choice="A", client_id=uuid.uuid4())
    held = assignment_claim_next(project=project, annotator=second)
    assert held.item_id == done.item_id  # one label of two on it: the second annotator holds it now
    item = ComparisonItem.objects.get(id=held.item_id)
    gold.item_gold_set(item=item, ranking=[[response] for response in responses_of(item)])
    counters_match_a_recount(project, [first, second])
    if then == "submit":
        label_submit(assignment_id=held.id, annotator=second, choice="B", client_id=uuid.uuid4())
    elif then == "undo":
        label_undo(label_id=label.id, annotator=first)
    elif then == "skip":
        assignment_skip(assignment_id=held.id, annotator=second)
    counters_match_a_recount(project, [first, second])
    gold.item_gold_clear(item=item)
    counters_match_a_recount(project, [first, second])
