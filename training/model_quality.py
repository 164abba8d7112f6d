"""People against the champion reward model, and leaving an annotator's labels out of training.

Reads: how often each annotator's preferences agree with the champion's scores
(``annotator_model_agreement``), the items where the champion contradicts the people's
majority (``model_disagreements``), and the Results page's per-annotator report that puts
those beside the annotation side's statistics (``project_annotator_report``). Each reads the
project's newest ``MODEL_WINDOW`` labels (the report: ``REPORT_MODEL_WINDOW``) and the champion's scores of their responses: two
bounded queries whatever the size of the project.

"The champion's scores" are those of ``selectors.scores_version_for``, as everywhere the scores
are shown: while a newly promoted champion is still scoring, the previous champion's complete
set, so these figures and the Results page's table always speak of the same version, and never
of a partial set.

Writes: ``annotator_exclusion_set`` moves an annotator into or out of
``TrainingPolicy.excluded_annotators`` and records the change (who, when, why) as an
``AnnotatorExclusionChange``; the next training run reads the policy.

The champion "prefers" the response with the higher score; its confidence on a pair is the
Bradley–Terry probability ``sigmoid(score difference)``. Ties and "both bad" labels make no
claim the model could confirm, and are left out of agreement with the model.
"""
import itertools
from collections import Counter, defaultdict

from django.db import transaction
from django.db.models import Max

from annotation.bradley_terry import win_probability
from annotation.gold import gold_accuracy_counts
from annotation.id_sets import in_ids
from annotation.kept_sets import label_ids_of_items
from annotation.models import ComparisonItemResponse, Label, Project
from annotation.preferences import TIE, preferred_pairs, verdicts
from annotation.quality import project_annotator_quality
from annotation.statistics import position_counts, speed_outliers
from config.errors import NotFoundError
from training.models import AnnotatorExclusionChange, ModelVersion, ResponseScore, TrainingPolicy
from training.selectors import champion_for, scores_version_for, training_policy_for

# The newest labels read for agreement with the model and for disagreements.
MODEL_WINDOW = 20_000
# The Results page polls the annotator report: its agreement with the model reads fewer (the same as speed).
REPORT_MODEL_WINDOW = 5_000
MAX_DISAGREEMENTS = 200
PREVIEW_CHARS = 160


def _recent_labels(project: Project, window: int) -> list[tuple]:
    return list(
        Label.objects.filter(item__project=project, both_bad=False)
        .order_by("-id")
        .values_list("annotator_id", "item_id", "ranking")[:window]
    )


def _scores(version: ModelVersion, labels: list[tuple]) -> dict[int, float]:
    """The version's score of every response the labels rank: one query on the (response, version) key."""
    response_ids = {response_id for _, _, ranking in labels for group in ranking for response_id in group}
    return dict(
        ResponseScore.objects.filter(model_version=version, response_id__in=response_ids).values_list("response_id", "score")
    )


def annotator_model_agreement(*, project: Project, window: int = MODEL_WINDOW) -> dict[int, dict]:
    """Per annotator: ``{"compared": n, "agreed": n, "rate": share or None}`` against the champion.

    Every ordered pair a label prefers (``preferred_pairs``) whose two responses the champion
    scored differently is compared; it agrees when the preferred one scored higher. Empty
    without a champion.
    """
    champion = scores_version_for(project)  # the scores shown: see the module's docstring
    if champion is None:
        return {}
    labels = _recent_labels(project, window)
    scores = _scores(champion, labels)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for annotator_id, _, ranking in labels:
        for chosen, rejected in preferred_pairs(ranking):
            if chosen in scores and rejected in scores and scores[chosen] != scores[rejected]:
                counts[annotator_id][0] += 1
                counts[annotator_id][1] += scores[chosen] > scores[rejected]
    return {
        annotator_id: {"compared": compared, "agreed": agreed, "rate": agreed / compared if compared else None}
        for annotator_id, (compared, agreed) in counts.items()
    }


def human_majorities(labels: list[tuple]) -> dict[tuple[int, frozenset], tuple[int, int, int]]:
    """``{(item_id, pair): (winner, votes for it, votes in all)}`` where the people's majority picked a side.

    A majority is more than half of the labels covering the pair; a pair whose majority is
    a tie, or that has no majority, is left out.
    """
    votes: dict[tuple[int, frozenset], Counter] = defaultdict(Counter)
    for _, item_id, ranking in labels:
        for pair, winner in verdicts(ranking).items():
            votes[item_id, pair][winner] += 1
    majorities = {}
    for key, counter in votes.items():
        (winner, count), total = counter.most_common(1)[0], sum(counter.values())
        if winner != TIE and count * 2 > total:
            majorities[key] = (winner, count, total)
    return majorities


def model_disagreements(*, project: Project, limit: int = 50, window: int = MODEL_WINDOW) -> dict:
    """Response pairs where the champion prefers the response the people's majority did not, most confident first.

    Returns ``{"champion": version or None, "labels_read": n, "results": [...]}``; each result has
    the item and prompt, the people's choice and the model's (response id, model name, text
    preview, score), the votes, and ``confidence``: the champion's probability for its side.
    """
    champion = scores_version_for(project)  # the scores shown: see the module's docstring
    if champion is None:
        return {"champion": None, "labels_read": 0, "results": []}
    labels = _recent_labels(project, window)
    scores = _scores(champion, labels)
    found = []
    for (item_id, pair), (winner, votes, total) in human_majorities(labels).items():
        (other,) = pair - {winner}
        if winner in scores and other in scores and scores[other] > scores[winner]:
            found.append((win_probability(scores[other] - scores[winner]), item_id, winner, other, votes, total))
    found.sort(key=lambda row: (-row[0], row[1], row[2]))
    found = found[:limit]
    shown = ComparisonItemResponse.objects.filter(item_id__in={row[1] for row in found}).values_list(
        "item_id", "item__prompt__external_id", "item__prompt__conversation", "response_id", "response__text",
        "response__model_name",
    )
    prompts, responses = {}, {}
    for item_id, external_id, conversation, response_id, text, model_name in shown:
        last = conversation[-1].get("content", "") if conversation and isinstance(conversation[-1], dict) else ""
        prompts[item_id] = (external_id, str(last)[:PREVIEW_CHARS])
        responses[response_id] = (str(text)[:PREVIEW_CHARS], model_name)

    def side(response_id: int) -> dict:
        text, model_name = responses.get(response_id, ("", ""))
        return {"response_id": response_id, "model_name": model_name, "text_preview": text, "score": scores[response_id]}

    results = [
        {
            "item_id": item_id,
            "prompt_external_id": prompts.get(item_id, ("", ""))[0],
            "prompt_preview": prompts.get(item_id, ("", ""))[1],
            "people_preferred": side(winner),
            "model_preferred": side(other),
            "votes_for_people": votes,
            "votes": total,
            "confidence": confidence,
        }
        for confidence, item_id, winner, other, votes, total in found
    ]
    return {"champion": champion, "labels_read": len(labels), "results": results}


def label_ids_disagreeing_with_champion(
    project: Project, *, item_ids: set[int] | None = None, chunk_size: int = 5000
) -> set[int]:
    """Ids of the project's labels (of ``item_ids`` only, if given) that prefer a response the
    champion scored lower: the label browser's filter.

    A label disagrees when any pair it orders (``preferred_pairs``; a corrected label speaks
    with its correction) has the rejected response scored above the chosen one. Ties and "both
    bad" labels claim no order and never disagree. Empty without a champion. Reads every label
    of the project once, in chunks, with the champion's scores of each chunk's responses.
    """
    champion = scores_version_for(project)  # the scores shown: see the module's docstring
    if champion is None:
        return set()
    labels = Label.objects.filter(item__project=project, both_bad=False)
    if item_ids is not None:
        labels = labels.filter(in_ids("item_id", item_ids))
    rows = (
        labels.order_by("id")
        .values_list("id", "ranking", "corrected_ranking").iterator(chunk_size=chunk_size)
    )
    found = set()
    while chunk := list(itertools.islice(rows, chunk_size)):
        pairs = {label_id: preferred_pairs(corrected or ranking) for label_id, ranking, corrected in chunk}
        wanted = {response_id for label_pairs in pairs.values() for pair in label_pairs for response_id in pair}
        scores = dict(
            ResponseScore.objects.filter(model_version=champion, response_id__in=wanted).values_list("response_id", "score")
        )
        for label_id, label_pairs in pairs.items():
            if any(chosen in scores and rejected in scores and scores[rejected] > scores[chosen]
                   for chosen, rejected in label_pairs):
                found.add(label_id)
    return found


def items_disagreeing_with_champion(project: Project, item_ids: set[int]) -> tuple[set[int], set[int]]:
    """``label_ids_disagreeing_with_champion`` for those items, and every label they hold: how the
    label browser brings its kept answer up to date after new labels (``annotation.kept_sets``)."""
    return label_ids_disagreeing_with_champion(project, item_ids=item_ids), label_ids_of_items(item_ids)


def champion_scores_state(project: Project) -> tuple:
    """What ``label_ids_disagreeing_with_champion`` reads besides the labels, for keeping its answer
    (``annotation.kept_sets.kept_ids``): the version whose scores are shown and when its set was
    last completed (a top-up after an import completes it again). A version still scoring its
    first set also gives the newest score stored anywhere, since its scores arrive chunk by chunk;
    a complete one does not, so another project's rescoring leaves this answer kept."""
    version = scores_version_for(project)  # the scores shown: see the module's docstring
    if version is None:
        return (None, None, None)
    if version.scored_at is None:
        return version.id, None, ResponseScore.objects.aggregate(newest=Max("id"))["newest"]
    return version.id, version.scored_at, None


def project_annotator_report(*, project: Project, details: bool = True) -> dict:
    """The Results page's Annotators card: per annotator, every quality figure in one row.

    ``annotation.quality`` (stored tallies: labels, agreement, estimated accuracy), gold
    accuracy (``annotation.gold``), position bias and speed outliers (``annotation.statistics``),
    agreement with the champion (here) and whether their labels are left out of training.

    ``details=False`` leaves out gold, position bias, speed and model agreement (None): they
    read bounded windows of labels (about a second at 500,000 labels), while the rest comes
    from the tallies in milliseconds, so the page shows the card at once and fills them in.
    """
    quality = project_annotator_quality(project_id=project.id)
    if details:
        gold = gold_accuracy_counts(project_id=project.id)
        positions = position_counts(project=project)
        speed = speed_outliers(project=project)
        model = annotator_model_agreement(project=project, window=REPORT_MODEL_WINDOW)
    policy = training_policy_for(project)
    excluded = set(policy.excluded_annotators.values_list("id", flat=True)) if policy.pk else set()
    rows = []
    for row in quality["annotators"]:
        annotator_id = row["annotator_id"]
        figures = {"gold": None, "position_bias": None, "speed": None, "model_agreement": None}
        if details:
            position = positions.get(annotator_id)
            figures = {
                "gold": gold.get(annotator_id, {"labels": 0, "correct": 0, "accuracy": None}),
                "position_bias": position.as_dict() if position else None,
                "speed": speed.get(annotator_id, {"timed": 0, "too_fast": 0}),
                "model_agreement": model.get(annotator_id, {"compared": 0, "agreed": 0, "rate": None}),
            }
        rows.append({**row, **figures, "excluded": annotator_id in excluded})
    return {
        "agreement_rate": quality["agreement_rate"],
        "comparisons": quality["comparisons"],
        "pool_accuracy": quality["pool_accuracy"],
        "has_champion": champion_for(project) is not None,
        "details": details,
        "annotators": rows,
    }


def annotator_exclusion_set(
    *, project: Project, annotator_id: int, excluded: bool, changed_by, reason: str = ""
) -> AnnotatorExclusionChange | None:
    """Leave ``annotator_id``'s labels out of ``project``'s training (``excluded``) or let them back in.

    Idempotent: asking for the state the annotator is already in records nothing and returns
    None; otherwise returns the recorded change. The annotator must be a member of the
    project or have labelled in it (NotFoundError otherwise). Atomic; the policy row is
    locked, so two admins toggling at once record two changes in the order they happened.
    """
    if not (
        project.annotators.filter(id=annotator_id).exists()
        or Label.objects.filter(item__project=project, annotator_id=annotator_id).exists()
    ):
        raise NotFoundError("No such annotator in this project.")
    with transaction.atomic():
        policy = training_policy_for(project)
        if policy.pk is None:
            policy.save()
        TrainingPolicy.objects.select_for_update().filter(pk=policy.pk).values_list("pk").first()
        now_excluded = policy.excluded_annotators.filter(id=annotator_id).exists()
        if now_excluded == excluded:
            return None
        if excluded:
            policy.excluded_annotators.add(annotator_id)
        else:
            policy.excluded_annotators.remove(annotator_id)
        return AnnotatorExclusionChange.objects.create(
            project=project,
            annotator_id=annotator_id,
            action=AnnotatorExclusionChange.Action.EXCLUDED if excluded else AnnotatorExclusionChange.Action.INCLUDED,
            changed_by=changed_by,
            reason=reason,
        )


def exclusion_changes_for(*, project: Project, limit: int = 100):
    """The project's exclusion history, newest first, with the people named (one query)."""
    return AnnotatorExclusionChange.objects.filter(project=project).select_related("annotator", "changed_by")[:limit]
