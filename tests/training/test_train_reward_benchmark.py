"""benchmarks/train_reward.py --recipe-vs-trl: how the per-seed runs become the verdicts."""
from pathlib import Path

import pytest

from benchmarks.train_reward import summarize_recipes


def result(accuracy: float, loss: float, ece: float, pairs: int, pairs_per_second: float) -> dict:
    return {
        "dev": {"accuracy": accuracy, "loss": loss, "ece": ece},
        "train_pairs": pairs,
        "pairs_per_second": pairs_per_second,
        "peak_rss_mib": 2000.0,
    }


def test_three_points_better_on_every_seed_passes_even_when_the_seeds_spread():
    runs = [
        {"ours": result(0.64, 0.65, 0.03, 1615, 10.0), "trl-documented": result(0.61, 0.66, 0.04, 1283, 5.0)},
        {"ours": result(0.70, 0.64, 0.02, 1615, 11.0), "trl-documented": result(0.67, 0.65, 0.05, 1283, 6.0)},
    ]

    summary = summarize_recipes(runs, accuracy_target=0.03)

    difference, half = summary["accuracy_difference"]
    assert difference == pytest.approx(0.03)
    assert half == pytest.approx(0.0, abs=1e-9)  # paired: the spread between seeds cancels
    assert summary["accurate_enough"] and summary["calibrated_enough"]
    assert summary["recipes"]["ours"]["pairs_per_second"] == pytest.approx(10.5)
    assert summary["recipes"]["trl-documented"]["train_pairs"] == 1283


def test_a_smaller_lead_or_a_worse_calibration_fails():
    runs = [
        {"ours": result(0.63, 0.70, 0.10, 1615, 10.0), "trl-documented": result(0.61, 0.66, 0.04, 1283, 5.0)},
    ]

    summary = summarize_recipes(runs, accuracy_target=0.03)

    assert not summary["accurate_enough"]  # +0.02
    assert not summary["calibrated_enough"]  # loss 0.70 > 0.66


def test_trl_models_are_judged_on_the_tokenisation_they_were_trained_on(tmp_path):
    """evaluate_as_trl_reads scores each side as TRL tokenised it: the text, its EOS, the
    tokenizer's own special tokens, cut from the left (first token kept) past max_length."""
    import torch

    from benchmarks.train_reward import evaluate_as_trl_reads
    from training.ml.data import PreferencePair, format_conversation
    from training.ml.model import build_tiny_model, load_reward_model

    torch.manual_seed(0)
    model, tokenizer = load_reward_model(build_tiny_model(tmp_path / "tiny"), pooling="cls_pooler")
    tokenizer.eos_token = tokenizer.sep_token  # as run_trl_documented does for BERT
    context = ({"role": "user", "content": "how do i bake bread " * 20},)
    pairs = [PreferencePair("p", context, "knead it and bake it", "no"),
             PreferencePair("q", context[:1], "yes", "use an oven")]

    def reward(response: str) -> float:
        ids = tokenizer(format_conversation(tokenizer, context, response) + tokenizer.eos_token)["input_ids"]
        assert ids[-2:] == [tokenizer.sep_token_id] * 2
        ids = ids[:1] + ids[-31:]  # max_length 32
        with torch.inference_mode():
            return model(input_ids=torch.tensor([ids])).logits[0, 0].item()

    metrics = evaluate_as_trl_reads(model, tokenizer, pairs, max_length=32)

    differences = torch.tensor([reward(pair.chosen) - reward(pair.rejected) for pair in pairs])
    assert metrics["pairs"] == 2
    assert metrics["loss"] == pytest.approx(-torch.nn.functional.logsigmoid(differences).mean().item(), abs=1e-6)


def test_the_frozen_layers_asked_for_reach_each_of_ours_runs():
    from benchmarks.train_reward import child_argv, parse_arguments

    args = parse_arguments(["--recipe-vs-trl", "--frozen-layers", "2", "--backbone", "/models/minilm"])
    argv = child_argv(args, "ours", 3, Path("/tmp/ours-3.json"))
    assert argv[argv.index("--frozen-layers") + 1] == "2"
    assert parse_arguments(argv).frozen_layers == 2
