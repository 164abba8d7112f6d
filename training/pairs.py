"""From stored labels to training pairs (Django side, no torch).

What a label's ``ranking`` implies (every response in an earlier group beats
every response in a later one; responses in one group are tied) is
``annotation.preferences``. Ties are left out unless the project trains on them,
and "both bad" labels are always left out. The annotator's strength becomes a
Llama-2-style margin.

Items labelled by several annotators give one pair per label ("per_label"),
or one per response pair by vote: every label counts once ("majority"), or
each counts by its annotator's estimated accuracy ("weighted", see
``annotation.quality``), and the pair carries the probability that its side won.

``iter_pair_records`` is the one code path from labels to pairs: training sorts its output
(``project_pair_records``), the export streams it.

Per-criterion pairs (for the per-criterion reward heads): a label's ratings on one criterion
rank the responses it rated, best score first, equal scores tied; that ranking goes through
the same rules (aggregation, ties) as the overall one and gives pairs tagged with the
criterion's key. A "both bad" label still rates its responses, so it gives criterion pairs
though no overall one; a rejected label gives neither.
"""
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import NamedTuple

from django.db.models import BooleanField, Case, F, JSONField, PositiveSmallIntegerField, Q, Value, When
from django.db.models.functions import Coalesce

from annotation.export import LabelFilters, chunked
from annotation.models import ComparisonItem, Label, Project, Response
from annotation.preferences import preferred_pairs, tied_pairs
from annotation.quality import project_annotator_accuracies, vote_weight

# Margin added inside the loss, -logsigmoid(r_chosen - r_rejected - margin): a
# "much better" judgement asks the model for a wider reward gap. Unknown strength
# asks for none.
STRENGTH_MARGIN = {
    None: 0.0,
    Label.Strength.NEGLIGIBLY: 0.0,
    Label.Strength.SLIGHTLY: 0.25,
    Label.Strength.BETTER: 0.5,
    Label.Strength.MUCH: 1.0,
}

# Items per chunk: the labels cursor fetches this many rows at a time, and each chunk of
# items costs two more queries (their prompts, the texts of their responses).
CHUNK_ITEMS = 500


@dataclass(frozen=True)
class PairSpec:
    """Which labels become pairs, and how (see ``training.models.TrainingPolicy``)."""

    aggregation: str = "per_label"
    train_on_ties: bool = False
    excluded_annotator_ids: frozenset[int] = frozenset()


class Vote(NamedTuple):
    """One label's verdict on an ordered response pair, or several labels' once aggregated."""

    chosen: int
    rejected: int
    margin: float
    strength: int | None
    label_id: int
    annotator_id: int | None = None
    # Aggregated by weight: the probability that ``chosen`` is the better one.
    confidence: float = 1.0


def pairs_from_ranking(ranking: list[list[int]], strength: int | None = None) -> list[tuple[int, int, float]]:
    """``(chosen_id, rejected_id, margin)`` for every ordered pair a ranking implies (``preferred_pairs``)."""
    margin = STRENGTH_MARGIN[strength]
    return [(chosen, rejected, margin) for chosen, rejected in preferred_pairs(ranking)]


# The training side's name for the pairs a ranking ties; the rule is ``annotation.preferences.tied_pairs``.
ties_from_ranking = tied_pairs


def aggregate_votes(votes: list[Vote], weights: Mapping[int, float] | None = None) -> list[Vote]:
    """Collapse one item's votes into one vote per response pair.

    Without ``weights`` every vote counts once (majority). With ``weights``
    (annotator id -> weight, ``annotation.quality.vote_weight``: the log-odds
    that the annotator is right) a side's votes add up to the log-odds that it
    is the better response, and the kept vote's ``confidence`` is that
    probability, sigmoid(winning sum - losing sum); an annotator missing from
    ``weights`` counts as weight 1. A response pair whose sides weigh the same
    gives no vote: an even split, or only votes of annotators at chance (weight
    0). The kept vote carries the mean margin and the most common strength of
    the agreeing votes, and the newest label id.
    """
    by_pair = defaultdict(list)
    for vote in votes:
        by_pair[frozenset((vote.chosen, vote.rejected))].append(vote)
    kept = []
    for pair_votes in by_pair.values():
        support = defaultdict(float)
        for vote in pair_votes:
            support[vote.chosen] += 1.0 if weights is None else weights.get(vote.annotator_id, 1.0)
        (top, top_weight), *rest = sorted(support.items(), key=lambda side: -side[1])
        other_weight = rest[0][1] if rest else 0.0
        if math.isclose(top_weight, other_weight, abs_tol=1e-12):
            continue
        agreeing = [vote for vote in pair_votes if vote.chosen == top]
        kept.append(Vote(
            chosen=top,
            rejected=agreeing[0].rejected,
            margin=sum(vote.margin for vote in agreeing) / len(agreeing),
            strength=Counter(vote.strength for vote in agreeing).most_common(1)[0][0],
            label_id=max(vote.label_id for vote in agreeing),
            confidence=1.0 if weights is None else 1 / (1 + math.exp(other_weight - top_weight)),
        ))
    return sorted(kept, key=lambda vote: (vote.label_id, vote.chosen, vote.rejected))


def annotator_vote_weights(project: Project, spec: PairSpec) -> dict[int, float] | None:
    """Weights for ``aggregate_votes`` from the annotators' estimated accuracies; None when none can be estimated."""
    accuracies = project_annotator_accuracies(
        project_id=project.id, excluded_annotator_ids=spec.excluded_annotator_ids
    )
    if not accuracies or None in accuracies.values():
        return None
    return {annotator_id: vote_weight(accuracy) for annotator_id, accuracy in accuracies.items()}


class ItemPair(NamedTuple):
    """One pair of one item, before its texts are fetched."""

    label_id: int
    chosen: int
    rejected: int
    margin: float
    strength: int | None
    tie: bool
    confidence: float
    votes: int
    votes_total: int


LabelRow = tuple[int, int, list, int | None, int]  # (item_id, label id, ranking, strength, annotator_id)


def criterion_ranking(ratings: Mapping[str, Mapping[str, int]], key: str) -> list[list[int]]:
    """The ranking a label's ratings on criterion ``key`` imply: response ids grouped by score,
    best first (equal scores tied). Empty unless at least two responses were rated on it."""
    scores = {int(response_id): rated[key] for response_id, rated in (ratings or {}).items() if key in rated}
    if len(scores) < 2:
        return []
    by_score = defaultdict(list)
    for response_id, score in scores.items():
        by_score[score].append(response_id)
    return [sorted(by_score[score]) for score in sorted(by_score, reverse=True)]


def item_pairs(labels: Iterable[LabelRow], spec: PairSpec, weights: Mapping[int, float] | None) -> list[ItemPair]:
    """The pairs one item's labels give under ``spec``, ordered by (label_id, chosen, rejected).

    ``votes`` counts the labels that prefer ``chosen`` to ``rejected`` (1 per label under
    "per_label", and for a tie); ``votes_total`` the labels that compared the two
    responses at all: preferring either one, or tying them.
    """
    votes, ties = [], []
    agreeing = Counter()  # (chosen, rejected) -> labels preferring chosen
    compared = Counter()  # frozenset((a, b)) -> labels with a verdict on the pair
    for _item_id, label_id, ranking, strength, annotator_id in labels:
        for chosen, rejected, margin in pairs_from_ranking(ranking, strength):
            votes.append(Vote(chosen, rejected, margin, strength, label_id, annotator_id))
            agreeing[chosen, rejected] += 1
            compared[frozenset((chosen, rejected))] += 1
        for first, second in tied_pairs(ranking):
            compared[frozenset((first, second))] += 1
            if spec.train_on_ties:
                ties.append((first, second, label_id))

    per_label = spec.aggregation == "per_label"
    # majority, or weighted (which is majority when no weights can be estimated)
    kept = votes if per_label else aggregate_votes(votes, weights)
    pairs = [
        ItemPair(vote.label_id, vote.chosen, vote.rejected, vote.margin, vote.strength, False, vote.confidence,
                 1 if per_label else agreeing[vote.chosen, vote.rejected], compared[frozenset((vote.chosen, vote.rejected))])
        for vote in kept
    ]
    pairs += [
        ItemPair(label_id, first, second, 0.0, None, True, 1.0, 1, compared[frozenset((first, second))])
        for first, second, label_id in ties
    ]
    return sorted(pairs, key=lambda pair: (pair.label_id, pair.chosen, pair.rejected))


def trained_labels() -> Q:
    """Labels that give pairs: not rejected by a reviewer, and not "both bad" unless a reviewer corrected them.

    (``annotation.review``: a rejected label leaves training; a corrected one trains on its correction.)
    """
    return ~Q(review_status=Label.ReviewStatus.REJECTED) & (
        Q(both_bad=False) | Q(review_status=Label.ReviewStatus.CORRECTED)
    )


def trained_ranking_and_strength() -> dict:
    """Annotations ``trained_ranking`` (the reviewer's correction, else the annotator's ranking) and ``trained_strength``.

    A correction carries no strength: the annotator's "much better" was about another verdict.
    """
    return {
        "trained_ranking": Coalesce(F("corrected_ranking"), F("ranking"), output_field=JSONField()),
        "trained_strength": Case(
            When(review_status=Label.ReviewStatus.CORRECTED, then=Value(None)),
            default=F("strength"),
            output_field=PositiveSmallIntegerField(),
        ),
    }


def iter_pair_records(
    project: Project,
    spec: PairSpec = PairSpec(),
    *,
    filters: LabelFilters = LabelFilters(),
    chunk_size: int | None = None,
    criteria: tuple[str, ...] = (),
) -> Iterator[dict]:
    """Every pair of the project as a JSON-ready dict, in ascending item id, in constant memory.

    The keys match ``training.ml.data.PreferencePair.to_dict()`` plus ``label_id`` (the
    newest label behind the pair; incremental runs select on it), ``item_id``,
    ``chosen_id``/``rejected_id`` (response ids), ``votes`` and ``votes_total`` (see
    ``item_pairs``). One prompt's pairs share ``prompt_id`` so the split keeps them on one side.

    Labels are read ordered by (item_id, id) from a chunked cursor and aggregated one item
    at a time; vote weights are computed once, up front. Each ``chunk_size`` items (default
    ``CHUNK_ITEMS``) cost two queries (prompts, response texts), never one per row.
    ``filters`` narrows the labels that feed the pairs (training passes none), so vote
    counts are over the labels kept; ``agreement_below`` holds its item ids as a set.

    ``criteria``: also the pairs of each of these criteria (keys of ``Project.criteria``),
    after the item's overall pairs, each with ``"criterion"``; overall records have no such key.
    """
    chunk_size = chunk_size or CHUNK_ITEMS
    weights = annotator_vote_weights(project, spec) if spec.aggregation == "weighted" else None
    keep = filters.item_ids(project)
    labels = Label.objects.filter(item__project=project).exclude(annotator_id__in=spec.excluded_annotator_ids)
    columns = ("item_id", "id", "trained_ranking", "trained_strength", "annotator_id")
    if criteria:
        # Also the "both bad" labels, whose ratings still rank the responses on each criterion;
        # only the labels that give overall pairs feed the overall head.
        labels = labels.exclude(review_status=Label.ReviewStatus.REJECTED).annotate(
            gives_overall=Case(When(trained_labels(), then=Value(True)), default=Value(False), output_field=BooleanField())
        )
        columns += ("gives_overall", "ratings")
    else:
        labels = labels.filter(trained_labels())
    rows = (
        filters.labels(labels).annotate(**trained_ranking_and_strength()).order_by("item_id", "id").values_list(*columns)
    )

    def pairs_of(group) -> list[tuple[str | None, ItemPair]]:
        if not criteria:
            return [(None, pair) for pair in item_pairs(group, spec, weights)]
        group = list(group)
        tagged = [(None, pair) for pair in item_pairs([row[:5] for row in group if row[5]], spec, weights)]
        for key in criteria:
            rated = [(item_id, label_id, criterion_ranking(ratings, key), None, annotator_id)
                     for item_id, label_id, _, _, annotator_id, _, ratings in group]
            tagged += [(key, pair) for pair in item_pairs(rated, spec, weights)]
        return tagged

    items = (
        (item_id, pairs_of(group))
        for item_id, group in groupby(rows.iterator(chunk_size=chunk_size), key=itemgetter(0))
        if keep is None or item_id in keep
    )
    for chunk in chunked(items, chunk_size):
        prompts = {
            item_id: (prompt_id, conversation)
            for item_id, prompt_id, conversation in ComparisonItem.objects.filter(
                id__in=[item_id for item_id, _ in chunk]
            ).values_list("id", "prompt_id", "prompt__conversation")
        }
        response_ids = {rid for _, pairs in chunk for _, pair in pairs for rid in (pair.chosen, pair.rejected)}
        texts = dict(Response.objects.filter(id__in=response_ids).values_list("id", "text")) if response_ids else {}
        for item_id, pairs in chunk:
            prompt_id, conversation = prompts[item_id]
            for criterion, pair in pairs:
                yield {
                    **({} if criterion is None else {"criterion": criterion}),
                    "prompt_id": str(prompt_id),
                    "context": conversation,
                    "chosen": texts[pair.chosen],
                    "rejected": texts[pair.rejected],
                    "margin": pair.margin,
                    "strength": pair.strength,
                    "tie": pair.tie,
                    "confidence": pair.confidence,
                    "label_id": pair.label_id,
                    "item_id": item_id,
                    "chosen_id": pair.chosen,
                    "rejected_id": pair.rejected,
                    "votes": pair.votes,
                    "votes_total": pair.votes_total,
                }


def project_pair_records(project: Project, spec: PairSpec = PairSpec(), *, criteria: tuple[str, ...] = ()) -> list[dict]:
    """Every training pair of the project (``iter_pair_records``), ordered by (label_id,
    criterion, chosen_id, rejected_id), the overall pairs of a label before its criteria's.

    No two pairs share that key, so the order is total and a snapshot's bytes depend only
    on the labels. A list: training needs every pair at once to split and shuffle them.
    """
    return sorted(
        iter_pair_records(project, spec, criteria=criteria),
        key=lambda record: (
            record["label_id"], "criterion" in record, record.get("criterion", ""), record["chosen_id"], record["rejected_id"]
        ),
    )
