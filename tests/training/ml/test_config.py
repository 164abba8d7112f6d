"""TrainConfig: strict for a new run, tolerant for a checkpoint saved by older code."""
import pytest

from training.ml.config import TrainConfig

# What a checkpoint saved by an earlier version of this code stored: one field since
# removed ("length_window"), and none of the fields added later (pad_to_multiple_of, ...).
OLD_CHECKPOINT_CONFIG = {
    "backbone_path": "/models/minilm-that-moved",
    "max_length": 128,
    "batch_size": 8,
    "num_epochs": 3,
    "learning_rate": 5e-5,
    "seed": 0,
    "length_window": 50,
}


def test_a_new_run_refuses_an_unknown_setting():
    with pytest.raises(ValueError, match="length_window"):
        TrainConfig.from_dict(OLD_CHECKPOINT_CONFIG)


def test_an_old_checkpoints_config_still_loads_for_scoring():
    config = TrainConfig.from_saved(OLD_CHECKPOINT_CONFIG)
    assert (config.max_length, config.batch_size) == (128, 8)
    assert config.pad_to_multiple_of == TrainConfig(backbone_path="x").pad_to_multiple_of  # today's default
    # What it did before these settings existed, not today's defaults: [CLS] pooling, nothing frozen.
    assert (config.pooling, config.frozen_layers) == ("cls_pooler", 0)


def test_a_saved_config_without_a_backbone_still_loads():
    assert TrainConfig.from_saved({"max_length": 64}).max_length == 64
