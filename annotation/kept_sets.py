"""The label browser's set filters: answers kept per process and brought up to date item by item.

Three filters select by a rule over every label of an item, which no index can answer: labels
that disagree with their item's majority (``annotation.review``), labels that disagree with the
reward model (training's rule, registered with ``annotation.review``) and items whose labels agree
less often than a threshold (``annotation.review_items``). Computed from scratch each reads every
ranking of the project: 3.2 s at 300,000 labels on the 2-core machine.

So each process keeps each answer with the state of the project's labels it was computed from
(``LabelsState``). A read that finds the same state returns the kept answer. A read that finds
labels only *added or reviewed* since recomputes just the items those labels belong to and
patches the answer (``kept_ids``' ``compute_items``): while annotators work, every page of a
filter costs a few small queries instead of a read of every ranking. Anything else recomputes
the whole answer:

- a label deleted or undone, or one that committed after a newer one had already been seen
  (ids are handed out at insert, not at commit): the labels the annotators have made
  (``AnnotatorProgress.done_total``) then differ from what the new ids account for;
- a change in what else the filter reads (``inputs``: for the reward model's, the version whose
  scores are shown and when its set was completed; for the agreement filter, the threshold);
- an answer patched for longer than ``FULL_READ_AFTER_SECONDS`` since its last full read: a
  deletion and a late commit in one interval cancel out in that count, and a review that
  commits late is not seen by the id bound, so a full read bounds how long either could leave
  the answer wrong.
"""
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Max, Sum

from annotation.id_sets import in_ids
from annotation.models import AnnotatorProgress, Label, LabelReview, Project

FULL_READ_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class LabelsState:
    """What changes whenever a label of the project is written, undone, deleted, rejected, corrected
    or reverted: the newest label id and review id anywhere (two primary-key lookups) and the labels
    the project's annotators have made (their progress rows: undo and deletion lower them), with
    the project's creation time (a database rolled back, as tests do, hands the same ids out again).
    A cascade around the services changes none of them until the next label anywhere; then an
    admin's deletion of a user shows in the labels made (their progress rows go too), and an
    item's leaves only ids of rows that are gone, which no page can show."""

    project_created_at: object
    newest_label: int
    newest_review: int
    labels_made: int


def labels_state(project: Project) -> LabelsState:
    return LabelsState(
        project_created_at=project.created_at,
        newest_label=Label.objects.aggregate(newest=Max("id"))["newest"] or 0,
        newest_review=LabelReview.objects.aggregate(newest=Max("id"))["newest"] or 0,
        labels_made=AnnotatorProgress.objects.filter(project=project).aggregate(made=Sum("done_total"))["made"] or 0,
    )


def items_changed_between(project: Project, before: LabelsState, after: LabelsState) -> set[int] | None:
    """The project's items whose labels were added or reviewed between two states; None when
    something else changed (see the module's docstring), which only a full read can follow.

    Two index range scans: the labels with ids in ``(before, after]`` (primary key) and the
    reviews likewise, each joined to its item for the project.
    """
    if after.project_created_at != before.project_created_at:
        return None
    if after.newest_label < before.newest_label or after.newest_review < before.newest_review:
        return None  # ids handed out again: a rolled-back database
    added = list(
        Label.objects.filter(item__project=project, id__gt=before.newest_label, id__lte=after.newest_label)
        .values_list("item_id", flat=True)
    )
    if after.labels_made - before.labels_made != len(added):
        return None  # a label deleted or undone, or one that committed out of id order
    reviewed = (
        LabelReview.objects.filter(label__item__project=project, id__gt=before.newest_review, id__lte=after.newest_review)
        .values_list("label__item_id", flat=True)
    )
    return set(added) | set(reviewed)


def label_ids_of_items(item_ids: Iterable[int]) -> set[int]:
    """Every label of those items, whatever its review status: what an answer over them covers."""
    return set(Label.objects.filter(in_ids("item_id", item_ids)).values_list("id", flat=True))


@dataclass(frozen=True)
class _Kept:
    labels: LabelsState
    inputs: tuple
    ids: frozenset[int]
    full_read_at: float  # time.monotonic() of the full read this answer descends from


# (filter name, project id) -> its answer. Per process: each web process keeps its own.
_kept: dict[tuple[str, int], _Kept] = {}


def kept_ids(
    name: str,
    project: Project,
    compute: Callable[[], set[int]],
    inputs: tuple = (),
    *,
    compute_items: Callable[[set[int]], tuple[set[int], set[int]]] | None = None,
) -> frozenset[int]:
    """The set filter ``name``'s answer for ``project`` (label or item ids).

    ``compute()`` reads the whole answer. It is called again only when the project's labels or
    ``inputs`` (what else the filter reads) changed, unless labels were only added or reviewed
    and ``compute_items`` is given: ``compute_items(item_ids)`` answers for those items alone,
    as ``(the ids it selects there, every id it could select there)``, and the kept answer
    loses the second and gains the first.
    """
    state = labels_state(project)
    kept = _kept.get((name, project.id))
    if kept is not None and kept.labels == state and kept.inputs == inputs:
        return kept.ids
    if (
        kept is not None
        and compute_items is not None
        and kept.inputs == inputs
        and time.monotonic() - kept.full_read_at < FULL_READ_AFTER_SECONDS
    ):
        changed = items_changed_between(project, kept.labels, state)
        if changed is not None:
            selected, covered = compute_items(changed) if changed else (set(), set())
            ids = (kept.ids - covered) | frozenset(selected)
            _kept[name, project.id] = _Kept(state, inputs, ids, kept.full_read_at)
            return ids
    read_at = time.monotonic()
    ids = frozenset(compute())
    _kept[name, project.id] = _Kept(state, inputs, ids, read_at)
    return ids
