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
"""
import math
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from annotation.models import Label, Project, Response
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


def project_pair_records(project: Project, spec: PairSpec = PairSpec()) -> list[dict]:
    """Every training pair of the project as a JSON-ready dict, in a stable order.

    The keys match ``training.ml.data.PreferencePair.to_dict()`` plus ``label_id``
    (the newest label behind the pair; incremental runs select on it). One prompt's
    pairs share ``prompt_id`` so the split keeps them on one side.
    """
    labels = (
        Label.objects.filter(item__project=project, both_bad=False)
        .exclude(annotator_id__in=spec.excluded_annotator_ids)
        .select_related("item__prompt")
        .order_by("id")
        .only("id", "ranking", "strength", "annotator_id", "item_id", "item__prompt__id", "item__prompt__conversation")
    )
    votes_by_item = defaultdict(list)
    ties_by_item = defaultdict(list)
    prompts = {}
    for label in labels:
        prompts[label.item_id] = label.item.prompt
        for chosen, rejected, margin in pairs_from_ranking(label.ranking, label.strength):
            votes_by_item[label.item_id].append(
                Vote(chosen, rejected, margin, label.strength, label.id, label.annotator_id)
            )
        if spec.train_on_ties:
            for first, second in tied_pairs(label.ranking):
                ties_by_item[label.item_id].append((first, second, label.id))

    weights = annotator_vote_weights(project, spec) if spec.aggregation == "weighted" else None
    rows = []  # (label_id, prompt, chosen, rejected, margin, strength, tie, confidence)
    for item_id, votes in votes_by_item.items():
        if spec.aggregation == "per_label":
            kept = votes
        else:  # majority, or weighted (which is majority when no weights can be estimated)
            kept = aggregate_votes(votes, weights)
        rows.extend(
            (vote.label_id, prompts[item_id], vote.chosen, vote.rejected, vote.margin, vote.strength, False,
             vote.confidence)
            for vote in kept
        )
    for item_id, ties in ties_by_item.items():
        rows.extend((label_id, prompts[item_id], a, b, 0.0, None, True, 1.0) for a, b, label_id in ties)
    rows.sort(key=lambda row: (row[0], row[2], row[3]))

    texts = dict(
        Response.objects.filter(id__in={rid for row in rows for rid in row[2:4]}).values_list("id", "text")
    )
    return [
        {
            "prompt_id": str(prompt.id),
            "context": prompt.conversation,
            "chosen": texts[chosen],
            "rejected": texts[rejected],
            "margin": margin,
            "strength": strength,
            "tie": tie,
            "confidence": confidence,
            "label_id": label_id,
        }
        for label_id, prompt, chosen, rejected, margin, strength, tie, confidence in rows
    ]
