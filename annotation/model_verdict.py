"""The reward model's verdict on an item, shown to its annotator after they submit a label.

Off unless the project allows it (``Project.reveal_model_verdict``), and never before the
label is stored: a verdict seen first would bias the judgement it is meant to be compared
with. The verdict speaks in the positions the annotator saw (A, B, ... in the label's
``display_order``), never in response ids or model names, so annotation stays blind.

The scores belong to training, which this app may not import: training hands over a
provider through ``response_scores_register`` from its ``AppConfig.ready``. Without one (an
install without training) there is no verdict.
"""
from collections.abc import Callable

from annotation.bradley_terry import win_probability
from annotation.models import Assignment, Label, Project

# ``provider(project, response_ids) -> (model version number, {response_id: score})``, or None
# when the project has no model whose scores can be shown. Scores are Bradley–Terry logits.
ResponseScores = Callable[[Project, list[int]], tuple[int, dict[int, float]] | None]

_response_scores: ResponseScores | None = None


def response_scores_register(provider: ResponseScores) -> None:
    global _response_scores
    _response_scores = provider


def verdict_from_scores(
    *,
    version: int,
    scores: dict[int, float],
    display_order: list[int],
    ranking: list[list[int]],
    makes_no_claim: bool,
) -> dict | None:
    """The verdict payload from a model version's ``scores``; None if a shown response lacks one. Pure.

    ``order``: positions best first by score (equal scores keep display order).
    ``probability``: the model's probability that its top response beats its runner-up,
    ``sigmoid(score gap)``. ``agrees``: whether the model's top response is in the label's
    first group (for a pairwise label: the response chosen); null when the label makes no
    claim to compare (``makes_no_claim``: a tie or "both bad") or when the model's top two
    scores are equal (the model makes none).
    """
    if len(display_order) < 2 or any(response_id not in scores for response_id in display_order):
        return None
    shown = list(zip(Assignment.Position.values, display_order))
    best_first = sorted(shown, key=lambda shown_response: -scores[shown_response[1]])
    (_, top_id), (_, runner_up_id) = best_first[0], best_first[1]
    gap = scores[top_id] - scores[runner_up_id]
    agrees = None if makes_no_claim or gap == 0 else top_id in ranking[0]
    return {
        "version": version,
        "order": [position for position, _ in best_first],
        "probability": win_probability(gap),
        "agrees": agrees,
    }


def model_verdict_for(*, project: Project, label: Label) -> dict | None:
    """The model's verdict on ``label``'s item, or None: not allowed, no model, or a shown response unscored.

    No query when the project does not reveal verdicts (the submit hot path); otherwise what
    the registered provider runs (``training.verdicts``: two or three).
    """
    if not project.reveal_model_verdict or _response_scores is None:
        return None
    found = _response_scores(project, list(label.display_order))
    if found is None:
        return None
    version, scores = found
    return verdict_from_scores(
        version=version,
        scores=scores,
        display_order=label.display_order,
        ranking=label.ranking,
        makes_no_claim=label.is_tie or label.both_bad,
    )
