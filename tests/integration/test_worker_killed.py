"""A worker killed mid-training: the run ends failed, the champion keeps serving, no checkpoint appears."""
import time
from pathlib import Path

import pytest

from tests.integration.conftest import wait_for
from tests.integration.test_training_loop import labelled_toy_project
from training import services
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.integration


def test_killing_the_worker_mid_training_leaves_the_champion_untouched(start_worker, settings, django_user_model):
    settings.RETRAIN_EVERY_N_LABELS = 0  # this test requests its runs itself
    settings.TRAINING_STALE_AFTER_SECONDS = 3
    project = labelled_toy_project(django_user_model, name="Killed")

    # An existing champion (v1), recorded the way a finished run records it.
    first, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=first.id)
    champion = services.training_run_complete(
        run_id=first.id, version=1, checkpoint_path="project-x/v1", metrics={"accuracy": 0.9},
        champion_metrics={}, promote=True, config={}, seed=0, code_version="test",
    )

    # A run long enough to be killed halfway: thousands of tiny steps.
    run, _ = services.training_run_request(project=project, trigger="manual")
    worker = start_worker(REWARD_EPOCHS="5000", TRAINING_HEARTBEAT_SECONDS="0.5")
    wait_for(
        lambda: (TrainingRun.objects.get(id=run.id).progress or {}).get("step", 0) > 0,
        timeout=120, what="training to make progress", log=worker.log,
    )
    worker.kill()

    time.sleep(settings.TRAINING_STALE_AFTER_SECONDS + 1)
    assert services.training_runs_fail_stale() == 1  # what celery beat runs every minute
    run.refresh_from_db()
    assert run.status == "failed" and "heartbeats" in run.error
    assert run.progress["step"] < run.progress["total_steps"]

    champion.refresh_from_db()
    assert champion.status == "champion"
    assert list(ModelVersion.objects.filter(project=project)) == [champion]
    store = Path(settings.MODEL_STORE_DIR)
    visible = [p for p in store.rglob("*") if p.is_dir() and not p.name.startswith(".tmp-")] if store.exists() else []
    assert not any(p.name == "v2" for p in visible)

    # The project can train again straight away.
    _, created = services.training_run_request(project=project, trigger="manual")
    assert created
