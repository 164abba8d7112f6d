"""Reviewing labels: the reviewer's decisions (services) and the label browser's reads (selectors).

A reviewer (``Project.reviewers``) or an admin accepts, rejects or corrects a label, or reverts
the last decision. Every decision is a ``LabelReview`` row; ``Label.review_status`` (and
``corrected_ranking``) hold the latest outcome.

What each outcome means for the rest of the system:

- ``rejected``: the label no longer counts. ``ComparisonItem.label_count`` drops by one, the
  label's assignment becomes ``skipped`` (its slot frees up, but its annotator has still
  *seen* the item, so the claim never deals it to them again: one label per item and
  annotator), the progress counters follow (``annotation.progress``), the stored tallies
  treat it as deleted (``annotation.tallies``), and training and pair exports leave it out
  (``training.pairs``). The row itself stays, so the decision can be reverted.
- a revert (or an accept or correction) of a rejected label counts it again: the item may
  then hold more labels than ``labels_per_item`` if someone labelled it meanwhile. That is
  allowed; the claim only ever looks for items *short* of labels.
- ``corrected``: the label trains on ``corrected_ranking`` (response ids, best group first)
  instead of the annotator's ranking; it still counts toward the item.
"""
import itertools
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import F, Func, IntegerField, Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast

from annotation import selectors
from annotation.export import LabelFilters
from annotation.gold import gold_label_ids
from annotation.id_sets import in_ids
from annotation.kept_sets import kept_ids, label_ids_of_items
from annotation.models import (
    Assignment,
    ComparisonItem,
    ComparisonItemResponse,
    Label,
    LabelReview,
    Project,
)
from annotation.preferences import verdicts
from annotation.progress import label_count_add, progress_record
from annotation.submission import _ranking_from_positions
from annotation.tallies import label_row, label_tally_change_record
from config.errors import ConflictError, DomainError, NotFoundError

Decision, ReviewStatus = LabelReview.Decision, Label.ReviewStatus

REASON_MAX_LENGTH = 2000

# The label's status after each decision.
OUTCOME = {
    Decision.ACCEPT: ReviewStatus.ACCEPTED,
    Decision.REJECT: ReviewStatus.REJECTED,
    Decision.CORRECT: ReviewStatus.CORRECTED,
    Decision.REVERT: ReviewStatus.UNREVIEWED,
}
# A reviewer who rejects or overrides an annotator says why: the record is for the annotator too.
REASON_REQUIRED = frozenset({Decision.REJECT, Decision.CORRECT})


# ------------------------------------------------------------------ services


def _checked_correction(*, label: Label, corrected_ranking) -> list[list[int]]:
    """``corrected_ranking`` (positions as the annotator saw them, best first) as response ids.

    The same rule as a submitted ranking (``annotation.submission``): every shown response
    exactly once, at least two groups.
    """
    shape_ok = isinstance(corrected_ranking, list) and all(
        isinstance(group, list) and all(isinstance(position, str) for position in group) for group in corrected_ranking
    )
    if not shape_ok:
        message = 'must be a list of lists of positions, best first, e.g. [["B"], ["A"]]'
        raise DomainError(f"corrected_ranking: {message}", fields={"corrected_ranking": [message]})
    try:
        ranking = _ranking_from_positions(corrected_ranking, label.display_order)
    except DomainError as exc:
        message = "; ".join(exc.fields.get("ranking", [exc.message]))
        raise DomainError(f"corrected_ranking: {message}", fields={"corrected_ranking": [message]}) from None
    if ranking == label.ranking:
        raise DomainError(
            "corrected_ranking is what the annotator said: accept the label instead.",
            fields={"corrected_ranking": ["same as the annotator's ranking"]},
        )
    return ranking


def _label_counting_change(*, label: Label, project: Project, delta: int) -> None:
    """The label starts (+1) or stops (-1) counting toward its item: counts, slot, progress, tallies.

    Caller holds the label's and its assignment's row locks; this takes the item's row lock
    (``label_count_add``), then the progress rows (``progress_record``), then the tally rows
    last (``label_tally_change_record``), the order ``label_delete`` uses.
    """
    count = label_count_add(item_id=label.item_id, delta=delta)
    wanted = project.labels_per_item
    was_open, now_open = count - delta < wanted, count < wanted
    if ComparisonItem.objects.filter(id=label.item_id, gold_ranking__isnull=False).exists():
        # A gold item is never unfinished work (annotation.gold): its labels leave the counters alone.
        was_open = now_open = False
    assignment = label.assignment
    if assignment is not None:
        if delta < 0:
            # Skipped, not deleted: the slot frees up for someone else, while the item stays
            # seen by this annotator, who already judged it (and may hold only one label of it).
            assignment.status = Assignment.Status.SKIPPED
            assignment.skip_reason = f"Label {label.id} was rejected by a reviewer."
        else:
            assignment.status = Assignment.Status.SUBMITTED
            assignment.skip_reason = ""
        assignment.save(update_fields=["status", "skip_reason"])
    progress_record(
        project=project,
        annotator_id=label.annotator_id,
        # done_total counts the labels an annotator made, rejected or not (the work was done),
        # as annotation.progress.annotator_counts recounts it.
        done=0,
        # The author's assignment is seen (submitted or skipped) before and after.
        seen=(now_open - was_open) if assignment is not None else 0,
        item_id=label.item_id,
        item_reopened=now_open - was_open,
    )
    # A rejected label acts on the tallies as a deleted one; a revert brings it back.
    label_tally_change_record(project_id=project.id, label=label_row(label), counts_now=delta > 0)


def label_review(
    *, label_id: int, reviewer, decision: str, reason: str = "", corrected_ranking=None
) -> tuple[Label, LabelReview | None]:
    """Record ``reviewer``'s ``decision`` on a label of a project they review. Returns ``(label, review)``.

    ``corrected_ranking`` (``correct`` only): positions as the annotator saw them, best first,
    e.g. ``[["B"], ["A"]]``. ``reason`` is required for reject and correct.

    Idempotent: a decision that would leave the label as it is (a double click, a retry)
    writes nothing and returns ``review=None``. Atomic; locks the label and its assignment in
    one statement, then the item row, the progress rows and the tally rows
    (``_label_counting_change``), as ``label_delete`` does. NotFoundError for a label outside
    the reviewer's projects (unknown and forbidden look alike).
    """
    if decision not in Decision.values:
        raise DomainError(f"decision must be one of {', '.join(Decision.values)}.", fields={"decision": ["unknown decision"]})
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise DomainError(f"reason: at most {REASON_MAX_LENGTH} characters.", fields={"reason": ["too long"]})
    if decision in REASON_REQUIRED and not reason:
        raise DomainError(f"reason: say why you {decision} this label.", fields={"reason": ["required for " + decision]})
    if decision != Decision.CORRECT and corrected_ranking is not None:
        raise DomainError(
            "corrected_ranking goes only with decision 'correct'.", fields={"corrected_ranking": ["only with correct"]}
        )
    if decision == Decision.CORRECT and corrected_ranking is None:
        raise DomainError("corrected_ranking is required to correct a label.", fields={"corrected_ranking": ["required"]})

    with transaction.atomic():
        # Label and assignment in one statement, as label_undo and label_delete lock them; a
        # label whose assignment row is gone (SET_NULL) has only itself to lock.
        scoped = Label.objects.filter(id=label_id, item__project__in=selectors.projects_for_reviewer(reviewer))
        label = (
            scoped.select_for_update(of=("self", "assignment")).select_related("assignment")
            .filter(assignment__isnull=False).first()
        ) or scoped.select_for_update(of=("self",)).filter(assignment__isnull=True).first()
        if label is None:
            raise NotFoundError("No such label for this reviewer.")
        project = Project.objects.get(items=label.item_id)
        if project.status == Project.Status.ARCHIVED:
            raise ConflictError("This project is archived: its labels are read-only.")
        ranking = _checked_correction(label=label, corrected_ranking=corrected_ranking) if decision == Decision.CORRECT else None
        status = OUTCOME[decision]
        if label.review_status == status and label.corrected_ranking == ranking:
            return label, None
        was_counted, now_counted = label.review_status != ReviewStatus.REJECTED, status != ReviewStatus.REJECTED
        label.review_status, label.corrected_ranking = status, ranking
        label.save(update_fields=["review_status", "corrected_ranking"])
        review = LabelReview.objects.create(
            label=label, reviewer=reviewer, decision=decision, reason=reason, corrected_ranking=ranking
        )
        if was_counted != now_counted:
            _label_counting_change(label=label, project=project, delta=1 if now_counted else -1)
    return label, review


# ------------------------------------------------------------------ the majority rule


def disagrees_with_majority(ranking: list[list[int]], others: list[list[list[int]]]) -> bool:
    """Whether ``ranking`` says something else than the majority of ``others`` on a pair it covers.

    Per response pair (``annotation.preferences.verdicts``: a winner or a tie), the majority
    verdict is the one more of the other labels give than any other verdict; a pair without
    one (no other label, or an even split) is not a disagreement.
    """
    mine = verdicts(ranking)
    tallies: dict[frozenset, Counter] = defaultdict(Counter)
    for other in others:
        for pair, verdict in verdicts(other).items():
            if pair in mine:
                tallies[pair][verdict] += 1
    for pair, counts in tallies.items():
        (top, top_count), *rest = counts.most_common()
        if rest and rest[0][1] == top_count:
            continue
        if top != mine[pair]:
            return True
    return False


def item_disagreeing_label_ids(labels: list[tuple[int, list[list[int]]]]) -> list[int]:
    """The ids among one item's ``(label id, ranking)`` that ``disagrees_with_majority`` picks, each
    label judged against all the others.

    The same rule, computed in one pass: each ranking's verdicts once, tallied for the item, and
    the others' tally on a pair is the item's less the label's own verdict (the label-by-label
    rule recomputed every other label's verdicts for each label: the filter took 6.0 s at
    300,000 labels, 3.2 s this way).
    """
    judged = [(label_id, verdicts(ranking)) for label_id, ranking in labels]
    totals: dict[frozenset, Counter] = defaultdict(Counter)
    for _, mine in judged:
        for pair, verdict in mine.items():
            totals[pair][verdict] += 1
    found = []
    for label_id, mine in judged:
        for pair, verdict in mine.items():
            others = [(seen, count - (seen == verdict)) for seen, count in totals[pair].items()]
            ranked = sorted((entry for entry in others if entry[1] > 0), key=lambda entry: -entry[1])
            if not ranked or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
                continue  # no other label on the pair, or an even split: no majority
            if ranked[0][0] != verdict:
                found.append(label_id)
                break
    return found


def _effective_ranking(ranking, corrected_ranking):
    return corrected_ranking if corrected_ranking is not None else ranking


def project_disagreeing_label_ids(*, project: Project, chunk_size: int = 2000) -> set[int]:
    """Ids of the project's labels whose verdict differs from the majority over their item's other labels.

    Counted labels only (rejected ones are out) and not "both bad" (no verdict); a corrected label
    speaks with its correction. One streamed query in item order, one item's labels held at a
    time, like ``annotation.agreement.item_ids_below_agreement``.
    """
    return _disagreeing_label_ids(Label.objects.filter(item__project=project), chunk_size=chunk_size)


def items_disagreeing_label_ids(item_ids: set[int]) -> tuple[set[int], set[int]]:
    """``project_disagreeing_label_ids`` for those items alone, and every label they hold (what a
    kept answer patched with it covers: ``annotation.kept_sets.kept_ids``)."""
    return _disagreeing_label_ids(Label.objects.filter(in_ids("item_id", item_ids))), label_ids_of_items(item_ids)


def _disagreeing_label_ids(labels: QuerySet, *, chunk_size: int = 2000) -> set[int]:
    rows = (
        labels.filter(both_bad=False)
        .exclude(review_status=ReviewStatus.REJECTED)
        .order_by("item_id", "id")
        .values_list("item_id", "id", "ranking", "corrected_ranking")
    )
    found = set()
    for _item_id, group in itertools.groupby(rows.iterator(chunk_size=chunk_size), key=lambda row: row[0]):
        labels = [(label_id, _effective_ranking(ranking, corrected)) for _, label_id, ranking, corrected in group]
        if len(labels) >= 2:
            found.update(item_disagreeing_label_ids(labels))
    return found


# ------------------------------------------------------------------ the label browser


# Label-set filters whose rule belongs to an app this one may not import (the reward model is
# training's): ``{name: (provider(project) -> ids of the project's labels the filter selects,
# inputs(project) -> what else the answer depends on, items_provider(project, item ids) -> the
# answer for those items and every label they hold, or None)}``, as ``kept_sets.kept_ids`` takes
# them; filled by that app's ``AppConfig.ready`` through ``label_id_set_register``.
LabelIdSet = tuple[
    Callable[[Project], set[int]],
    Callable[[Project], tuple],
    Callable[[Project, set[int]], tuple[set[int], set[int]]] | None,
]
LABEL_ID_SETS: dict[str, LabelIdSet] = {}
MODEL_DISAGREEMENT = "model_disagreement"


def label_id_set_register(
    name: str,
    provider: Callable[[Project], set[int]],
    inputs: Callable[[Project], tuple],
    items_provider: Callable[[Project, set[int]], tuple[set[int], set[int]]] | None = None,
) -> None:
    LABEL_ID_SETS[name] = (provider, inputs, items_provider)


class Outcome:
    """The outcome filter's values: a pairwise choice as shown (``Label.Choice``), or for rankings a tie or none."""

    PAIRWISE = tuple(Label.Choice.values)
    RANKING_TIE = "ranking_tie"
    RANKING_STRICT = "ranking_strict"
    RANKING = (RANKING_TIE, RANKING_STRICT)


class _JsonArrayLength(Func):
    output_field = IntegerField()
    function = "jsonb_array_length"

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, function="json_array_length", **extra)


# The label browser's ``gold`` filter: labels of gold items, of ordinary items, or the gold labels
# that match their item's answer or contradict it (what gold accuracy counts; "both bad" is neither).
GOLD_FILTERS = ("item", "ordinary", "right", "wrong")


@dataclass(frozen=True)
class BrowserFilters:
    """The label browser's filters; every one optional. ``common`` holds annotators and the date range."""

    common: LabelFilters = LabelFilters()
    outcome: str | None = None
    flag: str | None = None
    disagreement: bool | None = None
    model_disagreement: bool | None = None
    has_rationale: bool | None = None
    review_status: str | None = None
    gold: str | None = None
    skip_reason: str | None = None

    @classmethod
    def from_params(cls, params, *, label_format: str) -> "BrowserFilters":
        """Parse query parameters; a DomainError (400) names each bad one."""
        errors: dict[str, list[str]] = {}
        try:
            common = LabelFilters.from_params(params)
        except DomainError as exc:
            errors.update(exc.fields)
            common = LabelFilters()
        if common.agreement_below is not None:
            errors["agreement_below"] = ["not a filter of the label browser; use disagreement=true"]

        def choice(name: str, allowed) -> str | None:
            raw = (params.get(name) or "").strip()
            if raw and raw not in allowed:
                errors[name] = [f"one of {', '.join(allowed)}"]
                return None
            return raw or None

        def boolean(name: str) -> bool | None:
            raw = (params.get(name) or "").strip().lower()
            if raw in ("", "any"):
                return None
            if raw not in ("true", "false"):
                errors[name] = ["true or false"]
                return None
            return raw == "true"

        outcomes = Outcome.RANKING if label_format == Project.LabelFormat.RANKING else Outcome.PAIRWISE
        outcome = choice("outcome", outcomes)
        flag = choice("flag", Label.Flag.values)
        review_status = choice("review_status", ReviewStatus.values)
        gold = choice("gold", GOLD_FILTERS)
        disagreement = boolean("disagreement")
        model_disagreement = boolean(MODEL_DISAGREEMENT)
        has_rationale = boolean("has_rationale")
        skip_reason = (params.get("skip_reason") or "").strip()
        if len(skip_reason) > 200 or "\x00" in skip_reason:
            errors["skip_reason"] = ["at most 200 characters of text"]
        if errors:
            raise DomainError(f"Invalid filters: {', '.join(sorted(errors))}.", fields=errors)
        return cls(
            common=common, outcome=outcome, flag=flag, disagreement=disagreement,
            model_disagreement=model_disagreement, has_rationale=has_rationale,
            review_status=review_status, gold=gold, skip_reason=skip_reason or None,
        )


def _outcome_filter(labels: QuerySet, outcome: str) -> QuerySet:
    # "A" and "B" are positions as the annotator saw them: the winner is the first response shown or the second.
    if outcome == Label.Choice.BOTH_BAD:
        return labels.filter(both_bad=True)
    if outcome == Label.Choice.TIE:
        return labels.filter(is_tie=True)
    if outcome in (Label.Choice.A, Label.Choice.B):
        decided = labels.filter(is_tie=False, both_bad=False)
        first_shown_won = Q(ranking__0__0=F("display_order__0"))
        return decided.filter(first_shown_won) if outcome == Label.Choice.A else decided.exclude(first_shown_won)
    # A ranking with a tie has fewer groups than responses.
    labels = labels.annotate(_groups=_JsonArrayLength("ranking"), _shown=_JsonArrayLength("display_order"))
    return labels.filter(_groups__lt=F("_shown")) if outcome == Outcome.RANKING_TIE else labels.filter(_groups=F("_shown"))


def _flag_filter(labels: QuerySet, flag: str) -> QuerySet:
    if connection.vendor == "postgresql":
        return labels.filter(flags__contains=[{"flag": flag}])  # jsonb @>, an index can serve it
    # SQLite has no JSON containment; the stored list's text holds each entry as '"flag": "<value>"'.
    return labels.annotate(_flags_text=Cast("flags", TextField())).filter(_flags_text__contains=f'"flag": "{flag}"')


def review_labels(*, project: Project, filters: BrowserFilters) -> QuerySet:
    """The project's labels ``filters`` selects, oldest first, with what a browser row shows joined in.

    Call only for a project the user may review (``selectors.project_get_for_reviewer``). The
    disagreement filters read the project's labels once (``project_disagreeing_label_ids``; for
    the reward model, the provider registered as ``MODEL_DISAGREEMENT``), their answers kept and,
    after new labels and reviews, patched item by item (``annotation.kept_sets``), and ``gold`` right or
    wrong the gold items' labels (``annotation.gold.gold_label_ids``); every other filter is a
    condition on the label row or its item.
    """
    labels = filters.common.labels(Label.objects.filter(item__project=project))
    if filters.outcome:
        labels = _outcome_filter(labels, filters.outcome)
    if filters.flag:
        labels = _flag_filter(labels, filters.flag)
    if filters.has_rationale is not None:
        labels = labels.exclude(rationale="") if filters.has_rationale else labels.filter(rationale="")
    if filters.review_status:
        labels = labels.filter(review_status=filters.review_status)
    if filters.gold in ("item", "ordinary"):
        labels = labels.filter(item__gold_ranking__isnull=filters.gold == "ordinary")
    elif filters.gold:
        labels = labels.filter(in_ids("id", gold_label_ids(project_id=project.id, matching=filters.gold == "right")))
    if filters.disagreement is not None:
        ids = kept_ids(
            "disagreement", project, lambda: project_disagreeing_label_ids(project=project),
            compute_items=items_disagreeing_label_ids,
        )
        labels = labels.filter(in_ids("id", ids)) if filters.disagreement else labels.exclude(in_ids("id", ids))
    if filters.model_disagreement is not None:
        provider, inputs, items_provider = LABEL_ID_SETS[MODEL_DISAGREEMENT]
        ids = kept_ids(
            MODEL_DISAGREEMENT, project, lambda: provider(project), inputs(project),
            compute_items=(lambda item_ids: items_provider(project, item_ids)) if items_provider else None,
        )
        labels = labels.filter(in_ids("id", ids)) if filters.model_disagreement else labels.exclude(in_ids("id", ids))
    return labels.select_related("annotator", "item__prompt").order_by("id")


# What annotation.services.label_delete writes on the assignment of a label it deleted: not an annotator's skip.
LABEL_DELETED_REASON = r"^Label [0-9]+ was deleted by an administrator\.$"


def review_skips(*, project: Project, filters: BrowserFilters) -> QuerySet:
    """The project's skips (annotators passing on an item), oldest first: annotator, date range, reason.

    An assignment skipped because its label was rejected or deleted is not a skip by its annotator.
    """
    skips = filters.common.labels(
        Assignment.objects.filter(item__project=project, status=Assignment.Status.SKIPPED, label__isnull=True),
        time_field="finished_at",
    ).exclude(skip_reason__regex=LABEL_DELETED_REASON)
    if filters.skip_reason:
        skips = skips.filter(skip_reason__icontains=filters.skip_reason)
    return skips.select_related("annotator", "item__prompt").order_by("id")


def responses_by_item(item_ids, *, with_model_names: bool = True) -> dict[int, dict[int, dict]]:
    """``{item_id: {response_id: {id, model_name, text, html}}}`` for the items, in one query.

    ``with_model_names=False`` leaves every ``model_name`` blank (``selectors.user_sees_model_names``).
    """
    rows = ComparisonItemResponse.objects.filter(item_id__in=set(item_ids)).values_list(
        "item_id", "response_id", "response__model_name", "response__text", "response__html"
    )
    found: dict[int, dict[int, dict]] = {}
    for item_id, response_id, model_name, text, html in rows:
        found.setdefault(item_id, {})[response_id] = {
            "id": response_id, "model_name": model_name if with_model_names else "", "text": text,
            "html": selectors._html(html, text),
        }
    return found


def conversation_html(prompt) -> list[dict]:
    """The prompt's messages with their sanitised HTML (rendered at import, or now for older rows)."""
    stored = prompt.conversation_html or [None] * len(prompt.conversation)
    return [
        {"role": message.get("role", ""), "content": message.get("content", ""), "html": selectors._html(html, message.get("content", ""))}
        for message, html in zip(prompt.conversation, stored, strict=True)
    ]


def review_item_check(*, project: Project, item_id: int) -> None:
    """NotFoundError unless the item belongs to ``project`` (an id of another project's item looks unknown)."""
    if not ComparisonItem.objects.filter(project=project, id=item_id).exists():
        raise NotFoundError("No such item in this project.")


def review_item_get(*, project: Project, item_id: int) -> ComparisonItem:
    """The project's item with its prompt, labels (with annotators) and their reviews (with reviewers).

    Three queries whatever the number of labels. NotFoundError for an item of another project.
    """
    item = ComparisonItem.objects.filter(project=project, id=item_id).select_related("prompt").first()
    if item is None:
        raise NotFoundError("No such item in this project.")
    item.review_labels = list(
        Label.objects.filter(item=item)
        .select_related("annotator")
        .prefetch_related(Prefetch("reviews", queryset=LabelReview.objects.select_related("reviewer").order_by("id")))
        .order_by("id")
    )
    return item


def label_outcome(*, label_format: str, ranking, display_order, is_tie: bool, both_bad: bool) -> str:
    """The label's value of the outcome filter: ``A``/``B``/``tie``/``both_bad``, or a ranking's tie or none."""
    if label_format == Project.LabelFormat.RANKING:
        return Outcome.RANKING_TIE if len(ranking) < len(display_order) else Outcome.RANKING_STRICT
    if both_bad:
        return Label.Choice.BOTH_BAD.value
    if is_tie:
        return Label.Choice.TIE.value
    return Label.Choice.A.value if ranking[0][0] == display_order[0] else Label.Choice.B.value


def shown_responses(*, display_order, ranking, responses: dict[int, dict]) -> list[dict]:
    """The responses as the annotator saw them, left to right, each with its position and rank (1 = best group)."""
    rank_of = {response_id: index + 1 for index, group in enumerate(ranking or []) for response_id in group}
    positions = Assignment.Position.values
    return [
        {**responses[response_id], "position": positions[index], "rank": rank_of.get(response_id)}
        for index, response_id in enumerate(display_order)
        if response_id in responses
    ]
