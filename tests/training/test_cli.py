"""`manage.py train_reward_model` trains in-process with a progress bar, through the same service."""
import pytest
from django.core.management import call_command

from tests.integration.test_training_loop import labelled_toy_project
from training.ml.model import build_tiny_model
from training.models import ModelVersion, TrainingRun


@pytest.mark.django_db
@pytest.mark.parametrize("processes", [1, 2], ids=["in-process", "torchrun-2-cpu-processes"])
def test_cli_trains_and_records_a_champion(django_user_model, settings, tmp_path, capsys, sent_tasks, processes):
    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.TRAINING_PROCESSES = processes  # 2: data-parallel over two gloo processes, as on a 2-GPU worker
    settings.MODEL_STORE_DIR = tmp_path / "models"
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")
    settings.REWARD_TRAINING = {"num_epochs": 2, "batch_size": 4, "learning_rate": 5e-4, "seed": 0, "max_length": 64}
    project = labelled_toy_project(django_user_model, name="CLI", prompts=8)

    call_command("train_reward_model", "CLI", "--wait")
    out = capsys.readouterr().out
    assert "[##############################] step" in out
    version = ModelVersion.objects.get(project=project)
    assert "Model v1: champion" in out and version.training_run.trigger == TrainingRun.Trigger.CLI
    assert (tmp_path / "models" / version.checkpoint_path / "reward_metadata.json").is_file()
