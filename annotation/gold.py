"""Gold items: items with a known answer, mixed into annotators' queues to measure them.

An item is gold when ``ComparisonItem.gold_ranking`` is set: its response ids best first,
ties grouped, the same form as ``Label.ranking``. Admins mark and unmark items
(``item_gold_set`` / ``item_gold_clear``) or import them with a ``gold`` field
(``annotation.importing``).

How gold items differ from ordinary ones (``annotation.assignment``, ``annotation.progress``):

- They are not work to finish. They have no slots (every annotator may get each one once),
  never appear in the ordinary queue, and are left out of ``unfinished_items``,
  ``seen_unfinished`` and so of "remaining": a project is done when its ordinary items are,
  however many gold items it has, and gold items never run out for the next annotator.
- A claim deals one with probability ``Project.gold_rate`` (``gold_lease_drawn``), among the
  gold items that annotator has not seen; the payload is the same as any item's.
- Their labels are labels: they count in the annotator's done total, in agreement, and in
  training pairs like any other. A gold label that disagrees with the answer is a wrong
  label like any wrong label; leaving an unreliable annotator out of training is the admin's
  decision (``training.model_quality``), made with the gold accuracy in front of them.

Gold accuracy: the share of an annotator's gold labels (not "both bad") whose verdicts on
every response pair match the answer's (``annotation.preferences.verdicts``).
"""
import hashlib
from collections import defaultdict

from django.conf import settings
from django.db import transaction

from annotation.id_sets import in_ids
from annotation.models import Assignment, ComparisonItem, Label, Project
from annotation.preferences import verdicts
from annotation.progress import progress_recount
from annotation.selectors import project_get_for_admin, user_is_project_admin
from config.errors import ConflictError, DomainError, NotFoundError

# Ids of a gold answer: a ranking of an item covers at most nine responses.
MAX_GOLD_RESPONSES = len(Assignment.Position)


def gold_lease_drawn(*, project: Project, annotator) -> bool:
    """Whether this claim should deal a gold item: true with probability ``project.gold_rate``.

    The draw is a hash of the secret key, the project, the annotator and how many leases the
    annotator has been dealt in the project, so it is the same on every run (a test can count
    on it) but no annotator can work out which of their next items will be gold. One count
    query; only projects with a gold rate pay it.
    """
    if project.gold_rate <= 0:
        return False
    dealt = Assignment.objects.filter(annotator=annotator, item__project=project).count()
    digest = hashlib.sha256(f"{settings.SECRET_KEY}:gold:{project.id}:{annotator.id}:{dealt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < project.gold_rate


def gold_ranking_check(*, item: ComparisonItem, ranking) -> list[list[int]]:
    """``ranking`` as a gold answer for ``item``: groups of its response ids, best first, each id once.

    Raises a DomainError naming the field ``ranking`` for anything else (strings, nesting,
    unknown or missing ids).
    """
    response_ids = set(item.slots.values_list("response_id", flat=True))

    def refuse(reason: str) -> DomainError:
        return DomainError(f"ranking {reason}.", fields={"ranking": [reason]})

    if not isinstance(ranking, list) or not ranking or len(ranking) > MAX_GOLD_RESPONSES:
        raise refuse("must be a non-empty list of groups of response ids, best first")
    seen: list[int] = []
    checked = []
    for group in ranking:
        if not isinstance(group, list) or not group or len(group) > MAX_GOLD_RESPONSES:
            raise refuse("must hold non-empty lists of response ids")
        for response_id in group:
            if isinstance(response_id, bool) or not isinstance(response_id, int):
                raise refuse("must hold response ids (integers)")
        seen += group
        checked.append(list(group))
    if len(seen) != len(set(seen)):
        raise refuse("names a response twice")
    if set(seen) != response_ids:
        raise refuse(f"must name exactly this item's responses: {sorted(response_ids)}")
    return checked


def _refuse_if_archived(project: Project) -> None:
    # An archived project is read-only (its labels, settings and imports too): changing which
    # items are gold would rewrite its finished counters and its annotators' gold accuracy.
    if project.status == Project.Status.ARCHIVED:
        raise ConflictError("This project is archived and read-only: unarchive it before changing its gold items.")


def item_gold_set(*, item: ComparisonItem, ranking) -> ComparisonItem:
    """Make ``item`` gold with the answer ``ranking`` (or change its answer). Atomic.

    Gold items leave the progress counters, so they are recounted for the project (a fixed
    number of aggregate queries, under the counter rows' locks: see ``progress_recount``).
    An archived project refuses (ConflictError).
    """
    _refuse_if_archived(item.project)
    checked = gold_ranking_check(item=item, ranking=ranking)
    with transaction.atomic():
        was_gold = ComparisonItem.objects.select_for_update().filter(id=item.id).values_list("gold_ranking", flat=True).first()
        ComparisonItem.objects.filter(id=item.id).update(gold_ranking=checked)
        if was_gold is None:
            progress_recount(project=item.project)
    item.gold_ranking = checked
    return item


def item_gold_clear(*, item: ComparisonItem) -> ComparisonItem:
    """Make ``item`` an ordinary item again (its labels stay); a no-op for an ordinary item.
    An archived project refuses (ConflictError)."""
    _refuse_if_archived(item.project)
    with transaction.atomic():
        was_gold = ComparisonItem.objects.select_for_update().filter(id=item.id).values_list("gold_ranking", flat=True).first()
        if was_gold is not None:
            ComparisonItem.objects.filter(id=item.id).update(gold_ranking=None)
            progress_recount(project=item.project)
    item.gold_ranking = None
    return item


def item_get_for_admin(*, user, item_id: int) -> ComparisonItem:
    """The item if ``user`` is an admin. Otherwise what ``project_get_for_admin`` answers for its
    project: PermissionDeniedError to the project's annotators, NotFoundError to everyone else
    (an item of a project one cannot see looks like a missing one)."""
    item = ComparisonItem.objects.select_related("project").filter(id=item_id).first()
    if item is None:
        raise NotFoundError("No such item for this user.")
    if not user_is_project_admin(user):
        try:
            project_get_for_admin(user=user, project_id=item.project_id)
        except NotFoundError:
            raise NotFoundError("No such item for this user.") from None
    return item


def label_matches_gold(ranking: list[list[int]], gold: list[list[int]]) -> bool:
    """Whether every verdict of ``ranking`` is the gold answer's on the same response pair."""
    answer = verdicts(gold)
    return all(answer.get(pair) == verdict for pair, verdict in verdicts(ranking).items())


def label_gold_verdict(*, ranking: list[list[int]], both_bad: bool, answer: list[list[int]] | None) -> bool | None:
    """Whether a label matches its item's gold ``answer``, as gold accuracy judges it (the
    annotator's own ranking); None on an ordinary item (no answer) and for "both bad" (no verdict)."""
    if answer is None or both_bad:
        return None
    return label_matches_gold(ranking, answer)


def _gold_label_verdicts(*, project_id: int):
    """``(label id, annotator id, matches the answer)`` for every label of the project's gold items
    but "both bad" ones (no verdict to check).

    Two queries: the project's gold items with their answers, then their labels through the
    labels' item index. Not one join: PostgreSQL then hashed every label of the project to
    find the few gold ones. The item table has no index on ``gold_ranking``, so the first
    query filters the project's items (tens of ms per 100,000). A label is judged on the
    annotator's own ranking, not a reviewer's correction: gold measures the annotator.
    """
    answers = dict(
        ComparisonItem.objects.filter(project_id=project_id, gold_ranking__isnull=False).values_list("id", "gold_ranking")
    )
    rows = Label.objects.filter(in_ids("item_id", answers), both_bad=False).values_list("id", "annotator_id", "item_id", "ranking")
    for label_id, annotator_id, item_id, ranking in rows.iterator(chunk_size=2000):
        yield label_id, annotator_id, label_matches_gold(ranking, answers[item_id])


def gold_accuracy_counts(*, project_id: int) -> dict[int, dict]:
    """Per annotator: ``{"labels": gold labels, "correct": n, "accuracy": share or None}``."""
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for _label_id, annotator_id, matches in _gold_label_verdicts(project_id=project_id):
        counts[annotator_id][0] += 1
        counts[annotator_id][1] += matches
    return {
        annotator_id: {"labels": labels, "correct": correct, "accuracy": correct / labels if labels else None}
        for annotator_id, (labels, correct) in counts.items()
    }


def gold_label_ids(*, project_id: int, matching: bool) -> set[int]:
    """Ids of the project's gold labels that match their item's answer (``matching``) or contradict
    it: the labels behind gold accuracy, right or wrong ("both bad" ones are neither)."""
    return {label_id for label_id, _annotator_id, matches in _gold_label_verdicts(project_id=project_id) if matches == matching}


def project_gold_summary(counts: dict[int, dict]) -> dict:
    labels = sum(row["labels"] for row in counts.values())
    correct = sum(row["correct"] for row in counts.values())
    return {"labels": labels, "correct": correct, "accuracy": correct / labels if labels else None}
