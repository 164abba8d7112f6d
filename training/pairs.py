"""From stored labels to training pairs (Django side, no torch).

A label's ``ranking`` is a list of groups, best first; every response in an
earlier group beats every response in a later group (InstructGPT: all implied
pairs). Responses in one group are tied: ties are left out of Bradley-Terry
training. The annotator's strength becomes a Llama-2-style margin.
"""
import itertools

from annotation.models import Label, Project, Response

# Margin added inside the loss, -logsigmoid(r_chosen - r_rejected - margin): a
# "much better" judgement asks the model for a wider reward gap. Unknown strength
# asks for none.
STRENGTH_MARGIN = {None: 0.0, 1: 0.0, 2: 0.25, 3: 0.5, 4: 1.0}


def pairs_from_ranking(ranking: list[list[int]], strength: int | None = None) -> list[tuple[int, int, float]]:
    """``(chosen_id, rejected_id, margin)`` for every ordered pair a ranking implies."""
    margin = STRENGTH_MARGIN[strength]
    pairs = []
    for better_index, worse_index in itertools.combinations(range(len(ranking)), 2):
        for chosen, rejected in itertools.product(ranking[better_index], ranking[worse_index]):
            pairs.append((chosen, rejected, margin))
    return pairs


def project_pair_records(project: Project) -> list[dict]:
    """Every training pair of the project as a JSON-ready dict, in a stable order.

    The dict keys match ``training.ml.data.PreferencePair.to_dict()``; one prompt's
    pairs share ``prompt_id`` (the split keeps them on one side).
    """
    labels = (
        Label.objects.filter(item__project=project)
        .select_related("item__prompt")
        .order_by("id")
        .only("id", "ranking", "strength", "item__prompt__id", "item__prompt__conversation")
    )
    records = []
    implied = [(label, pairs_from_ranking(label.ranking, label.strength)) for label in labels]
    response_ids = {rid for _, pairs in implied for chosen, rejected, _ in pairs for rid in (chosen, rejected)}
    texts = dict(Response.objects.filter(id__in=response_ids).values_list("id", "text"))
    for label, pairs in implied:
        prompt = label.item.prompt
        for chosen, rejected, margin in pairs:
            records.append(
                {
                    "prompt_id": str(prompt.id),
                    "context": prompt.conversation,
                    "chosen": texts[chosen],
                    "rejected": texts[rejected],
                    "margin": margin,
                    "strength": label.strength,
                }
            )
    return records
