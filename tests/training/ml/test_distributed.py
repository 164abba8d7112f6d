"""Data-parallel training through torchrun: 2 CPU processes on gloo, the tiny model."""

import dataclasses

import pytest
import torch

from training.ml.distributed import train_distributed
from training.ml.model import load_reward_model
from training.ml.scoring import score_responses
from training.ml.trainer import TrainProgress, train_reward_model


@pytest.fixture
def ddp_config(tiny_config):
    # 64 pairs, batch 8 on each of 2 ranks: 4 optimizer steps an epoch.
    return dataclasses.replace(tiny_config, num_epochs=6)


def test_two_processes_train_like_one_with_accumulation(ddp_config, toy_pairs, toy_ties, tmp_path):
    # 84 pairs = 11 batches, the last of 4 pairs: an epoch's last step has a
    # batch for rank 0 only, and rank 1 must still join the all-reduce.
    pairs = toy_pairs + toy_ties[:20]
    reports: list[TrainProgress] = []
    result = train_distributed(pairs, ddp_config, nproc=2, output_dir=tmp_path / "a", progress=reports.append)

    losses = [row["loss"] for row in result.history]
    # Per-epoch means: a step's loss swings with its share of ties (>= log 2 each).
    assert sum(losses[-6:]) / 6 < 0.6 * sum(losses[:6]) / 6
    assert [r.step for r in reports] == list(range(1, len(result.history) + 1)) == [
        row["step"] for row in result.history
    ]
    assert reports[-1].total_steps == len(reports) == 6 * 6  # ceil(11 batches / 2 ranks) per epoch
    assert reports[-1].epoch == pytest.approx(6) and reports[-1].loss == pytest.approx(losses[-1])
    assert result.train_pairs == len(pairs) and result.pairs_per_second > 0
    assert not result.model.training

    # Rank r runs batch i when i % 2 == r and gradients are averaged over
    # pairs, so this is one process accumulating 2 batches per step.
    # Rounding differs (all-reduce vs local sums) and, at this learning rate,
    # grows from ~1e-7 at step 10 to ~1e-3 by step 20.
    single = train_reward_model(pairs, dataclasses.replace(ddp_config, gradient_accumulation_steps=2))
    assert losses[:12] == pytest.approx([row["loss"] for row in single.history][:12], abs=1e-5)
    assert losses == pytest.approx([row["loss"] for row in single.history], abs=5e-3)

    # What rank 0 saved loads on its own and scores as the returned model does.
    reloaded, tokenizer = load_reward_model(tmp_path / "a", "cpu")
    items = [(pair.context, pair.chosen) for pair in toy_pairs[:4]]
    scores = score_responses(result.model, result.tokenizer, items, max_length=32)
    assert score_responses(reloaded, tokenizer, items, max_length=32) == scores
    initial, _ = load_reward_model(ddp_config.backbone_path, "cpu")
    assert not torch.equal(initial.classifier.weight, reloaded.classifier.weight)

    # Same seed, same data, same number of processes: the same run.
    again = train_distributed(pairs, ddp_config, nproc=2, output_dir=tmp_path / "b")
    assert [row["loss"] for row in again.history] == losses
    assert score_responses(again.model, again.tokenizer, items, max_length=32) == scores


def test_a_failing_worker_raises_with_its_cause(tiny_config, toy_pairs, tmp_path):
    missing = tmp_path / "no-such-backbone"
    config = dataclasses.replace(tiny_config, backbone_path=str(missing))
    with pytest.raises(RuntimeError, match="distributed training failed") as failure:
        train_distributed(toy_pairs, config, nproc=2, output_dir=tmp_path / "out")
    assert "no-such-backbone" in str(failure.value)


@pytest.mark.parametrize("nproc", [0, -1])
def test_bad_arguments_fail_before_launching(tiny_config, toy_pairs, tmp_path, nproc):
    with pytest.raises(ValueError, match="nproc"):
        train_distributed(toy_pairs, tiny_config, nproc=nproc, output_dir=tmp_path)
    with pytest.raises(ValueError, match="zero preference pairs"):
        train_distributed([], tiny_config, nproc=2, output_dir=tmp_path)
