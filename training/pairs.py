"""From stored labels to training pairs (Django side, no torch).

A label's ``ranking`` is a list of groups, best first; every response in an
earlier group beats every response in a later group (InstructGPT: all implied
pairs). Responses in one group are tied: ties are left out unless the project
trains on them, and "both bad" labels are always left out. The annotator's
strength becomes a Llama-2-style margin.
"""
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass

from annotation.models import Label, Project, Response

# Margin added inside the loss, -logsigmoid(r_chosen - r_rejected - margin): a
# "much better" judgement asks the model for a wider reward gap. Unknown strength
# asks for none.
STRENGTH_MARGIN = {None: 0.0, 1: 0.0, 2: 0.25, 3: 0.5, 4: 1.0}


@dataclass(frozen=True)
class PairSpec:
    """Which labels become pairs, and how (see ``training.models.TrainingPolicy``)."""

    aggregation: str = "per_label"
    train_on_ties: bool = False
    excluded_annotator_ids: frozenset[int] = frozenset()


def pairs_from_ranking(ranking: list[list[int]], strength: int | None = None) -> list[tuple[int, int, float]]:
    """``(chosen_id, rejected_id, margin)`` for every ordered pair a ranking implies."""
    margin = STRENGTH_MARGIN[strength]
    pairs = []
    for better_index, worse_index in itertools.combinations(range(len(ranking)), 2):
        for chosen, rejected in itertools.product(ranking[better_index], ranking[worse_index]):
            pairs.append((chosen, rejected, margin))
    return pairs


def ties_from_ranking(ranking: list[list[int]]) -> list[tuple[int, int]]:
    """Every pair of responses that share a group (judged equally good)."""
    return [pair for group in ranking for pair in itertools.combinations(group, 2)]


def majority_pairs(votes: list[tuple[int, int, float, int | None, int]]) -> list[tuple[int, int, float, int | None, int]]:
    """Collapse one item's per-label pairs into one pair per response pair by majority vote.

    ``votes`` are ``(chosen, rejected, margin, strength, label_id)``. A response pair
    whose votes are split evenly gives no pair. The kept pair carries the mean margin
    and the most common strength of the agreeing votes, and the newest label id.
    """
    by_pair = defaultdict(list)
    for vote in votes:
        by_pair[frozenset(vote[:2])].append(vote)
    kept = []
    for pair_votes in by_pair.values():
        winners = Counter(vote[0] for vote in pair_votes)
        (top, top_count), *rest = winners.most_common()
        if rest and rest[0][1] == top_count:
            continue
        agreeing = [vote for vote in pair_votes if vote[0] == top]
        margin = sum(vote[2] for vote in agreeing) / len(agreeing)
        strength = Counter(vote[3] for vote in agreeing).most_common(1)[0][0]
        kept.append((top, agreeing[0][1], margin, strength, max(vote[4] for vote in agreeing)))
    return sorted(kept, key=lambda vote: (vote[4], vote[0], vote[1]))


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
        .only("id", "ranking", "strength", "item_id", "item__prompt__id", "item__prompt__conversation")
    )
    votes_by_item = defaultdict(list)
    ties_by_item = defaultdict(list)
    prompts = {}
    for label in labels:
        prompts[label.item_id] = label.item.prompt
        for chosen, rejected, margin in pairs_from_ranking(label.ranking, label.strength):
            votes_by_item[label.item_id].append((chosen, rejected, margin, label.strength, label.id))
        if spec.train_on_ties:
            for first, second in ties_from_ranking(label.ranking):
                ties_by_item[label.item_id].append((first, second, label.id))

    rows = []  # (label_id, prompt, chosen, rejected, margin, strength, tie)
    for item_id, votes in votes_by_item.items():
        kept = majority_pairs(votes) if spec.aggregation == "majority" else votes
        rows.extend((label_id, prompts[item_id], c, r, m, s, False) for c, r, m, s, label_id in kept)
    for item_id, ties in ties_by_item.items():
        rows.extend((label_id, prompts[item_id], a, b, 0.0, None, True) for a, b, label_id in ties)
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
            "label_id": label_id,
        }
        for label_id, prompt, chosen, rejected, margin, strength, tie in rows
    ]
