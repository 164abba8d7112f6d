"""An incremental project: its first model trains on everything, later ones warm-start on the new labels."""
import json

import pytest
from django.conf import settings

from annotation.services import project_import_jsonl
from tests.integration.test_training_loop import BAD, GOOD, label_good_side, toy_project
from training import pipeline, services
from training.ml.data import PreferencePair
from training.ml.model import build_tiny_model
from training.ml.split import split_by_prompt
from training.models import ModelVersion, TrainingPolicy, TrainingRun
from training.pipeline import EVALUATION_SET_SALT
from training.snapshots import snapshot_read

pytestmark = pytest.mark.django_db


def more_prompts(project, first: int, count: int) -> None:
    lines = [
        json.dumps({
            "external_id": f"late-{index}",
            "conversation": [{"role": "user", "content": f"question {index} please help"}],
            "responses": [{"text": f"{GOOD[index % 4]} {index}", "model": "good-model"},
                          {"text": f"{BAD[index % 4]} {index}", "model": "bad-model"}],
        })
        for index in range(first, first + count)
    ]
    project_import_jsonl(project=project, lines=lines, source="late.jsonl")


def train_now(project) -> TrainingRun:
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    pipeline.execute_training_run(run.id)
    return TrainingRun.objects.select_related("model_version").get(id=run.id)


def test_the_first_run_trains_in_full_and_says_so_then_runs_warm_start(
    django_user_model, settings, tmp_path, sent_tasks
):
    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.MODEL_STORE_DIR = tmp_path / "models"
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")
    settings.REWARD_TRAINING = {"num_epochs": 1, "batch_size": 4, "learning_rate": 5e-4, "seed": 0, "max_length": 64}
    settings.REWARD_EVAL_FRACTION = 0.25
    # Enough prompts that the held-out split (a hash of each prompt id, which depends on what ran
    # before) leaves both the old and the new labels pairs to train on, whatever the ids.
    project, (annotator,) = toy_project(django_user_model, name="Incremental", prompts=40)
    services.training_policy_update(project=project, mode="incremental", replay_ratio=1.0,
                                    when_evaluation_insufficient="promote_if_not_worse", promotion_tolerance=1.0)
    label_good_side(project, annotator)

    first = train_now(project)
    # No champion to start from: a full run, recorded as one (it was requested as incremental).
    assert first.status == "succeeded", first.error
    assert (first.mode, first.model_version.metrics["mode"]) == ("full", "full")
    assert first.model_version.metrics["train_pairs"] == len(pipeline_train_pairs(first))

    more_prompts(project, 100, 12)
    assert label_good_side(project, annotator) == 12
    second = train_now(project)
    assert second.status == "succeeded", second.error
    assert (second.mode, second.model_version.metrics["mode"]) == ("incremental", "incremental")
    new_train_pairs = second.model_version.metrics["train_pairs"]
    # The new labels' training pairs plus as many replayed old ones (replay_ratio 1), never all of them.
    assert 0 < new_train_pairs <= 2 * 12 < len(pipeline_train_pairs(second))
    assert ModelVersion.objects.get(training_run=second).status == "champion"
    assert TrainingPolicy.objects.get(project=project).mode == "incremental"


def pipeline_train_pairs(run: TrainingRun) -> list:
    """The run's training split, read back from its snapshot as the pipeline reads it."""
    pairs = [PreferencePair.from_dict(record) for record in snapshot_read(run.snapshot_path, run.snapshot_sha256)]
    return split_by_prompt(pairs, settings.REWARD_EVAL_FRACTION, EVALUATION_SET_SALT)[0]
