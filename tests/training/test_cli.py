"""`manage.py train_reward_model` trains in-process with a progress bar, through the same service."""
import pytest
from django.core.management import CommandError, call_command

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
    assert version.config["frozen_layers"] == 2  # the product's default, recorded with the version


@pytest.mark.django_db
def test_a_frozen_layer_count_the_backbone_cannot_honour_fails_the_run_saying_so(
    django_user_model, settings, tmp_path, sent_tasks
):
    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.MODEL_STORE_DIR = tmp_path / "models"
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")  # embeddings + 2 blocks
    settings.REWARD_TRAINING = {"num_epochs": 1, "batch_size": 4, "seed": 0, "max_length": 64, "frozen_layers": 4}
    labelled_toy_project(django_user_model, name="Frozen", prompts=8)

    # A sentence for the operator, not a traceback.
    with pytest.raises(CommandError, match=r"Training run \d+ failed: ValueError: frozen_layers 4 is more than"):
        call_command("train_reward_model", "Frozen", "--wait")
    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.FAILED
    assert "frozen_layers 4 is more than the backbone has: its embeddings and 2 transformer blocks" in run.error
    assert not ModelVersion.objects.exists()
