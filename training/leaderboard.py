"""The leaderboard of generating models: how people rank them, and what the champion reward model says.

Reads only. People's side is a Bradley–Terry fit (``annotation.bradley_terry``) of
model-vs-model comparisons taken from the project's labels; the reward side is the
mean champion score of each model's responses. Side by side, an admin sees where the
reward model agrees with the annotators.
"""
import functools
import math
from collections import Counter
from datetime import datetime

from django.db.models import Avg, Count, F, FloatField, Subquery

from annotation.bradley_terry import BradleyTerryResult, bradley_terry_from_counts
from annotation.models import Label, Project, Response
from annotation.preferences import preferred_pairs, tied_pairs
from annotation.tallies import model_comparison_cells
from training.ml.intervals import Z_95
from training.models import ModelVersion, ResponseScore
from training.selectors import champion_for, scores_version_for


def model_comparison_counts(project: Project) -> Counter:
    """``{(model_a, model_b, outcome): n}`` over every response pair a label orders across two models.

    Outcome 1.0 means ``model_a``'s response was preferred, 0.5 a tie (responses in one
    ranking group). "Both bad" labels say nothing about which is better and are left out;
    pairs of responses from the same model, or from a response without a model name, say
    nothing about models. Read from the project's stored tally (``annotation.tallies``),
    plus the labels not yet stored in it: two or three queries, whatever the number of labels. The
    same counts as
    ``_model_comparison_counts_from_labels``.
    """
    return model_comparison_cells(project_id=project.id)


def _model_comparison_counts_from_labels(project: Project) -> Counter:
    """``model_comparison_counts`` from every label and response name: the reference the tally is tested against.

    Two queries, however many labels; the labels stream in chunks and only the counts are kept.
    """
    model_of = dict(Response.objects.filter(prompt__project=project).exclude(model_name="").values_list("id", "model_name"))
    rankings = (
        Label.objects.filter(item__project=project, both_bad=False)
        .exclude(review_status=Label.ReviewStatus.REJECTED)  # out of the tallies, as if deleted (annotation.review)
        .order_by().values_list("ranking", flat=True)
    )
    counts: Counter = Counter()
    for ranking in rankings.iterator(chunk_size=5000):
        for pairs, outcome in ((preferred_pairs(ranking), 1.0), (tied_pairs(ranking), 0.5)):
            for first, second in pairs:
                model_a, model_b = model_of.get(first), model_of.get(second)
                if model_a and model_b and model_a != model_b:
                    counts[model_a, model_b, outcome] += 1
    return counts


def model_comparisons_for(project: Project) -> list[tuple[str, str, float]]:
    """The comparisons ``model_comparison_counts`` counts, one tuple each (for small projects and tests)."""
    return [cell for cell, n in model_comparison_counts(project).items() for _ in range(n)]


def model_rewards_for(project: Project, version: ModelVersion | None) -> dict[str, dict]:
    """``{model: {"mean", "ci", "n"}}`` over ``version``'s scores of the model's responses.

    ``ci`` is mean ± 1.96·sd/√n (sample sd), ``None`` below two scores. A scored version
    carries these (``ModelVersion.reward_summary``, written when its rescoring finished), so
    this reads no score; while a rescoring is under way it is computed from the scores so
    far (one query over them). A version scored before summaries were kept gets one here,
    once: the summary names the ``scored_at`` it describes, so a later rescoring is never
    answered with an old one.
    """
    if version is None:
        return {}
    summary = version.reward_summary
    if version.scored_at is not None and summary and datetime.fromisoformat(summary["scored_at"]) == version.scored_at:
        return summary["models"]
    rewards = _model_rewards_from_scores(project, version)
    if version.scored_at is not None:
        ModelVersion.objects.filter(id=version.id, scored_at=version.scored_at).update(
            reward_summary={"scored_at": version.scored_at.isoformat(), "models": rewards}
        )
    return rewards


def model_rewards_summary(version: ModelVersion) -> dict:
    """What ``ModelVersion.reward_summary`` holds for a version whose ``scored_at`` is set: its rewards per model."""
    return {"scored_at": version.scored_at.isoformat(), "models": _model_rewards_from_scores(version.project, version)}


def _model_rewards_from_scores(project: Project, version: ModelVersion) -> dict[str, dict]:
    """``model_rewards_for`` from every score of the version: the summary's source, and the reference.

    Aggregated in the database, a row per model: a project of a million responses used to send
    a row per score (about 250 MB in the scoring worker, and in a web process whenever the
    leaderboard was read during a rescoring). The sample variance is the mean square deviation
    from the lowest score, less the squared mean deviation, times n/(n-1): the same SQL on
    PostgreSQL and SQLite (whose STDDEV_SAMP, Django's, holds every value and refuses a single
    one), and measured from a score, not from zero, so that scores far from zero keep their
    spread's digits.
    """
    scores = ResponseScore.objects.filter(model_version=version, response__prompt__project=project).exclude(
        response__model_name=""
    )
    # The version's lowest score: the first entry of its score index, the same row wherever
    # the expression repeats (each copy of this uncorrelated subquery is read once).
    lowest = ResponseScore.objects.filter(model_version=version).order_by("score", "response_id").values("score")[:1]
    shift = Subquery(lowest, output_field=FloatField())
    deviation = F("score") - shift
    rows = (
        scores.values("response__model_name")
        .annotate(n=Count("id"), mean=Avg("score"), mean_deviation=Avg(deviation), mean_square=Avg(deviation * deviation))
        .order_by()
    )
    result = {}
    for row in rows:
        n, mean, mean_deviation = row["n"], float(row["mean"]), float(row["mean_deviation"])
        ci = None
        if n >= 2:
            # Rounding can leave a tiny negative where every score is equal.
            variance = max(0.0, float(row["mean_square"]) - mean_deviation * mean_deviation) * n / (n - 1)
            half = Z_95 * math.sqrt(variance) / math.sqrt(n)
            ci = [mean - half, mean + half]
        result[row["response__model_name"]] = {"mean": mean, "ci": ci, "n": n}
    return result


@functools.lru_cache(maxsize=64)
def _fit(cells: tuple, bootstrap_rounds: int, seed: int) -> BradleyTerryResult:
    """The fit of ``cells`` (the counts' items, sorted), kept per process: the Results page asks
    again with unchanged counts on every refresh, and 200 bootstrap fits are most of its time.
    Read only: every caller gets the same arrays."""
    return bradley_terry_from_counts(Counter(dict(cells)), bootstrap_rounds=bootstrap_rounds, seed=seed)


def leaderboard_for(project: Project, *, bootstrap_rounds: int = 200, seed: int = 0) -> dict:
    """The board, rated models by rating (best first), then models with scores but no comparisons.

    Seeded, so the same labels give the same intervals on every load. Three queries when the
    champion's scores are summarised: the comparison tally, the labels above its watermark
    (their rows too, a fourth, for labels this process has not read before), the champion
    (with its summary), and none for scores; one more while a new champion is still scoring,
    for the previous one, whose complete scores are shown until then (``scores_version_for``).
    """
    counts = model_comparison_counts(project)
    fit = _fit(tuple(sorted(counts.items())), bootstrap_rounds, seed)
    champion = champion_for(project)
    shown = scores_version_for(project, champion=champion)  # the Results page's table reads the same version's scores
    rewards = model_rewards_for(project, shown)

    def reward_fields(model: str) -> dict:
        reward = rewards.get(model)
        return {
            "mean_reward": reward["mean"] if reward else None,
            "mean_reward_ci": reward["ci"] if reward else None,
            "scored_responses": reward["n"] if reward else 0,
        }

    rows = [
        {
            "model": model,
            "rating": float(fit.ratings[i]),
            "rating_ci": [float(fit.ci_low[i]), float(fit.ci_high[i])],
            "comparisons": int(fit.comparisons[i]),
            "wins": int(fit.wins[i]),
            "losses": int(fit.losses[i]),
            "ties": int(fit.ties[i]),
            **reward_fields(model),
        }
        for i, model in enumerate(fit.models)
    ]
    rows.sort(key=lambda row: (-row["rating"], row["model"]))
    unrated = sorted(set(rewards) - set(fit.models))
    rows += [
        {"model": model, "rating": None, "rating_ci": None, "comparisons": 0, "wins": 0, "losses": 0, "ties": 0, **reward_fields(model)}
        for model in unrated
    ]
    return {
        "models": rows,
        "win_rate": fit.win_rate(),
        "bootstrap_rounds": bootstrap_rounds,
        "champion_version": champion.version if champion else None,
        "scores_version": shown.version if shown else None,
        "comparisons": sum(counts.values()),
    }
