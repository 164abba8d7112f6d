"""The whole loop on real parts: labels in PostgreSQL -> Redis -> celery worker trains -> scores stored."""
import json
import math
import uuid
from pathlib import Path

import pytest

from annotation.assignment import assignment_claim_next
from annotation.models import Label, Response
from annotation.services import project_create, project_import_jsonl, label_submit
from tests.integration.conftest import BeatProcess, wait_for
from training.models import ModelVersion, ResponseScore, TrainingRun

pytestmark = pytest.mark.integration

GOOD = ["a good helpful answer", "a clear correct answer", "a polite useful answer", "a kind helpful answer"]
BAD = ["a bad rude answer", "a wrong useless answer", "a mean unclear answer", "a terrible harmful answer"]


def toy_project(django_user_model, *, name="Loop", prompts=12, annotators=1):
    """A project of ``prompts`` items, each a helpful response against a rude one; returns (project, annotators)."""
    people = [django_user_model.objects.create_user(f"{name}-annotator-{n}", password="x" * 12) for n in range(annotators)]
    project = project_create(name=name, labels_per_item=1, annotators=people)
    lines = [
        json.dumps({
            "external_id": f"p{index}",
            "conversation": [{"role": "user", "content": f"question {index} please help"}],
            "responses": [
                {"text": f"{GOOD[index % 4]} {index}", "model": "good-model"},
                {"text": f"{BAD[index % 4]} {index}", "model": "bad-model"},
            ],
        })
        for index in range(prompts)
    ]
    project_import_jsonl(project=project, lines=lines, source="loop.jsonl")
    return project, people


def label_good_side(project, annotator, *, limit=None) -> int:
    """Label like an annotator who always prefers the polite, helpful response. Returns how many."""
    done = 0
    while (limit is None or done < limit) and (assignment := assignment_claim_next(project=project, annotator=annotator)):
        good_position = next(
            position for position, response_id in zip("AB", assignment.display_order)
            if Response.objects.get(id=response_id).model_name == "good-model"
        )
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=good_position, client_id=uuid.uuid4())
        done += 1
    return done


def labelled_toy_project(django_user_model, *, name="Loop", prompts=12):
    """A project whose annotator labelled every item, always preferring the polite, helpful response."""
    project, (annotator,) = toy_project(django_user_model, name=name, prompts=prompts)
    label_good_side(project, annotator)
    return project


def test_labels_trigger_training_on_a_real_worker_and_scores_come_back(start_worker, start_process, settings, django_user_model):
    project = labelled_toy_project(django_user_model)
    assert Label.objects.filter(item__project=project).count() == 12
    assert not TrainingRun.objects.exists()  # a submit never touches training

    # Beat's reconciler sees 12 new labels (>= RETRAIN_EVERY_N_LABELS) and requests a run.
    start_process(BeatProcess, RETRAIN_EVERY_N_LABELS="12", TRAINING_RECONCILE_SECONDS="1")
    log = start_worker(RETRAIN_EVERY_N_LABELS="12").log
    wait_for(lambda: TrainingRun.objects.filter(project=project).exists(), timeout=60,
             what="the reconciler to request a run", log=log)
    run = TrainingRun.objects.get(project=project)
    assert run.trigger == TrainingRun.Trigger.LABEL_COUNT

    wait_for(lambda: TrainingRun.objects.get(id=run.id).status in {"succeeded", "failed"}, timeout=240,
             what="the worker to finish the training run", log=log)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.pairs == 12 and len(run.snapshot_sha256) == 64
    assert run.progress["step"] == run.progress["total_steps"] > 0

    version = ModelVersion.objects.get(project=project)
    assert version.status == "champion" and version.version == 1
    assert set(version.metrics) >= {"accuracy", "loss", "ece", "pairs", "accuracy_by_strength", "annotator_agreement"}
    assert version.data_sha256 == run.snapshot_sha256
    checkpoint = Path(settings.MODEL_STORE_DIR) / version.checkpoint_path
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "reward_metadata.json").is_file()

    wait_for(lambda: ResponseScore.objects.filter(model_version=version).count() == 24, timeout=120,
             what="the scoring task to store a score for every response", log=log)
    by_model = {"good-model": [], "bad-model": []}
    for model_name, score in ResponseScore.objects.filter(model_version=version).values_list("response__model_name", "score"):
        assert math.isfinite(score)
        by_model[model_name].append(score)
    # The reward model learned the annotator's preference (training is seeded, so this is deterministic).
    assert sum(by_model["good-model"]) / 12 > sum(by_model["bad-model"]) / 12
    version.refresh_from_db()
    assert version.scored_at is not None
