"""Which items a label would teach the reward model most: ``ComparisonItem.model_priority``.

Written from the champion's scores when its rescoring completes (``training.pipeline``), so
the uncertainty selection order (``annotation.assignment``) reads one indexed column at claim
time and never a score. An item's priority is the larger of two figures, each from 0 to 1:

- **uncertainty**: for the two adjacent responses (in the champion's order) whose scores are
  closest, ``1 - |2·P - 1|`` with ``P = sigmoid(gap)``, the model's probability that the
  higher one wins (scores are Bradley–Terry logits). A coin toss is 1; a sure call is near 0.
- **disagreement**: where the people's majority on a pair (more than half of the item's labels)
  prefers the response the champion scored lower, the champion's probability for its own side.
  A confident model that contradicts people is worth another label, to find out which is wrong.

An item with a response the champion has not scored keeps priority 0, as every item has
before any model (the order is then sequential).

The scores are the overall head's, or, when the project's policy names a ``priority_head``,
that criterion's head (its per-criterion scores), with the people's majorities read from
their ratings on that criterion. A champion without that head orders by its overall scores.
"""

from annotation.bradley_terry import win_probability
from annotation.models import ComparisonItem, ComparisonItemResponse, Label
from annotation.services import item_priorities_store
from training.model_quality import human_majorities
from training.models import ModelVersion, ResponseScore, TrainingPolicy
from training.pairs import criterion_ranking

CHUNK_SIZE = 2000


def uncertainty(scores: list[float]) -> float:
    """``1 - |2·sigmoid(gap) - 1|`` for the closest adjacent pair of ``scores``; 0 below two scores."""
    if len(scores) < 2:
        return 0.0
    ordered = sorted(scores, reverse=True)
    gap = min(higher - lower for higher, lower in zip(ordered, ordered[1:]))
    return 1 - abs(2 * win_probability(gap) - 1)


def item_priority(scores: dict[int, float], majorities: dict[frozenset, tuple]) -> float:
    """The priority of one item from its responses' ``scores`` and the people's ``majorities``
    (``{pair: (winner, votes for it, votes)}``, as ``human_majorities`` gives them)."""
    priority = uncertainty(list(scores.values()))
    for pair, (winner, _, _) in majorities.items():
        (other,) = pair - {winner}
        if winner in scores and other in scores and scores[other] > scores[winner]:
            priority = max(priority, win_probability(scores[other] - scores[winner]))
    return priority


def priority_head_of(version: ModelVersion) -> str | None:
    """The criterion whose head orders ``version``'s project's items; None for the overall head."""
    head = TrainingPolicy.objects.filter(project_id=version.project_id).values_list("priority_head", flat=True).first()
    return head if head and head in ((version.config or {}).get("criteria") or []) else None


def item_priorities_refresh(version: ModelVersion, *, chunk_size: int = CHUNK_SIZE) -> int:
    """Store every item's priority of ``version``'s project from ``version``'s scores (its
    priority head's, ``priority_head_of``). Returns the items refreshed (each written unless
    its stored priority was already that one).

    Item by item in id chunks (keyset), each read in three queries (slots, scores, labels) and
    written in its own short transaction, so memory holds one chunk and a claim never waits
    on more than one chunk's row locks.
    """
    head = priority_head_of(version)
    refreshed, last_id = 0, 0
    while True:
        item_ids = list(
            ComparisonItem.objects.filter(project_id=version.project_id, id__gt=last_id)
            .order_by("id").values_list("id", flat=True)[:chunk_size]
        )
        if not item_ids:
            return refreshed
        last_id = item_ids[-1]
        responses_of: dict[int, list[int]] = {}
        for item_id, response_id in ComparisonItemResponse.objects.filter(item_id__in=item_ids).values_list(
            "item_id", "response_id"
        ):
            responses_of.setdefault(item_id, []).append(response_id)
        stored = ResponseScore.objects.filter(
            model_version=version, response_id__in=[r for ids in responses_of.values() for r in ids]
        )
        if head is None:
            scores = dict(stored.values_list("response_id", "score"))
            labels = [
                (annotator_id, item_id, corrected or ranking)
                for annotator_id, item_id, ranking, corrected in Label.objects.filter(item_id__in=item_ids, both_bad=False)
                .exclude(review_status=Label.ReviewStatus.REJECTED)
                .values_list("annotator_id", "item_id", "ranking", "corrected_ranking")
            ]
        else:
            scores = {
                response_id: by_criterion[head]
                for response_id, by_criterion in stored.values_list("response_id", "criterion_scores")
                if head in (by_criterion or {})
            }
            labels = [
                (annotator_id, item_id, criterion_ranking(ratings, head))
                for annotator_id, item_id, ratings in Label.objects.filter(item_id__in=item_ids)
                .exclude(review_status=Label.ReviewStatus.REJECTED)
                .values_list("annotator_id", "item_id", "ratings")
            ]
        majorities: dict[int, dict] = {}
        for (item_id, pair), verdict in human_majorities(labels).items():
            majorities.setdefault(item_id, {})[pair] = verdict
        priorities = {}
        for item_id in item_ids:
            response_ids = responses_of.get(item_id, [])
            if response_ids and all(response_id in scores for response_id in response_ids):
                item_scores = {response_id: scores[response_id] for response_id in response_ids}
                priorities[item_id] = item_priority(item_scores, majorities.get(item_id, {}))
            else:
                priorities[item_id] = 0.0
        item_priorities_store(priorities=priorities)
        refreshed += len(priorities)
