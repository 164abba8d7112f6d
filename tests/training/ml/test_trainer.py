import dataclasses

import pytest
import torch

from training.ml.batching import collate_pairs, plan_passes
from training.ml.checkpoint import save_checkpoint
from training.ml.data import PreferencePair, encode_pairs
from training.ml.evaluation import evaluate_reward_model
from training.ml.model import load_reward_model
from training.ml.scoring import score_responses
from training.ml.split import split_by_prompt
from training.ml.trainer import PairScorer, TrainingDiverged, TrainProgress, train_reward_model


def test_tiny_model_learns_the_toy_preference(tiny_model_path, tiny_config, toy_pairs):
    train, held_out = split_by_prompt(toy_pairs, 0.25, seed=0)
    assert len(train) >= 40 and len(held_out) >= 8
    initial, _ = load_reward_model(tiny_model_path)
    reports: list[TrainProgress] = []

    result = train_reward_model(train, tiny_config, progress=reports.append)

    losses = [row["loss"] for row in result.history]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3
    metrics = evaluate_reward_model(result.model, result.tokenizer, held_out, tiny_config)
    assert metrics["accuracy"] > 0.9
    trained = result.model.state_dict()
    changed = [name for name, value in initial.state_dict().items() if not torch.equal(value, trained[name])]
    assert "classifier.weight" in changed and any("encoder" in name for name in changed)
    assert result.train_pairs == len(train) and result.pairs_per_second > 0
    assert not result.model.training

    assert [r.step for r in reports] == list(range(1, reports[0].total_steps + 1))
    assert reports[-1].epoch == pytest.approx(tiny_config.num_epochs)
    assert reports[-1].eta_s == 0


def test_same_seed_same_result(tiny_config, toy_pairs):
    config = dataclasses.replace(tiny_config, num_epochs=2)
    first = train_reward_model(toy_pairs, config)
    second = train_reward_model(toy_pairs, config)
    assert [row["loss"] for row in first.history] == [row["loss"] for row in second.history]
    other = train_reward_model(toy_pairs, dataclasses.replace(config, seed=1))
    assert other.history[-1]["loss"] != first.history[-1]["loss"]


def test_gradient_accumulation_matches_a_larger_batch(tiny_config, toy_pairs):
    # 64 pairs: batch 8 x 1 and batch 4 x 2 see the same pairs per optimizer step.
    big = dataclasses.replace(tiny_config, num_epochs=1, batch_size=8)
    accumulated = dataclasses.replace(big, batch_size=4, gradient_accumulation_steps=2)
    big_losses = [row["loss"] for row in train_reward_model(toy_pairs, big).history]
    accumulated_losses = [row["loss"] for row in train_reward_model(toy_pairs, accumulated).history]
    assert accumulated_losses == pytest.approx(big_losses, abs=1e-4)


def test_warm_start_begins_from_the_given_checkpoint(tiny_config, toy_pairs, tmp_path):
    trained = train_reward_model(toy_pairs, tiny_config)
    checkpoint = save_checkpoint(trained.model, trained.tokenizer, tmp_path / "v1", {"seed": 0})
    items = [(pair.context, pair.chosen) for pair in toy_pairs[:4]]
    before = score_responses(trained.model, trained.tokenizer, items, max_length=32)

    # A vanishing learning rate leaves the warm-started weights where they were.
    nudge = dataclasses.replace(tiny_config, learning_rate=1e-12, num_epochs=1)
    warm = train_reward_model(toy_pairs, nudge, init_path=str(checkpoint))
    cold = train_reward_model(toy_pairs, nudge)
    assert score_responses(warm.model, warm.tokenizer, items, max_length=32) == pytest.approx(before, abs=1e-4)
    assert score_responses(cold.model, cold.tokenizer, items, max_length=32) != pytest.approx(before, abs=1e-4)


def test_learning_rate_warms_up_then_decays(tiny_config, toy_pairs):
    history = train_reward_model(toy_pairs, dataclasses.replace(tiny_config, num_epochs=3)).history
    rates = [row["learning_rate"] for row in history]
    peak = rates.index(max(rates))
    assert max(rates) == pytest.approx(tiny_config.learning_rate)
    assert rates[:peak] == sorted(rates[:peak]) and rates[0] > 0
    assert rates[peak:] == sorted(rates[peak:], reverse=True) and rates[-1] > 0


def test_no_pairs_is_a_clear_error(tiny_config):
    with pytest.raises(ValueError, match="zero preference pairs"):
        train_reward_model([], tiny_config)


def test_a_loss_that_stops_being_a_number_stops_training_with_the_reason(tiny_config, toy_pairs):
    reported = []
    config = dataclasses.replace(tiny_config, learning_rate=1e30, max_grad_norm=None)  # blows up at once
    with pytest.raises(TrainingDiverged, match=r"The loss became (nan|inf) at step \d+ .*lower learning rate"):
        train_reward_model(toy_pairs, config, progress=reported.append)
    assert all(torch.isfinite(torch.tensor(report.loss)) for report in reported)  # no NaN was ever reported


def test_tie_pairs_pull_tied_rewards_together(tiny_config, toy_pairs, toy_ties):
    train, held_out = split_by_prompt(toy_pairs + toy_ties, 0.25, seed=0)
    assert any(pair.tie for pair in train) and any(pair.tie for pair in held_out)
    config = dataclasses.replace(tiny_config, num_epochs=16)
    with_ties = train_reward_model(train, config)
    without_ties = train_reward_model([pair for pair in train if not pair.tie], config)
    metrics = evaluate_reward_model(with_ties.model, with_ties.tokenizer, held_out, config)
    baseline = evaluate_reward_model(without_ties.model, without_ties.tokenizer, held_out, config)
    assert metrics["tie_pairs"] == baseline["tie_pairs"] == sum(pair.tie for pair in held_out)
    assert metrics["pairs"] == len(held_out) - metrics["tie_pairs"]
    # Preferences alone leave plain responses far from good ones; ties close the gap.
    assert metrics["tie_mean_abs_gap"] < 0.1 * baseline["tie_mean_abs_gap"]
    assert metrics["accuracy"] > 0.9


def test_unsure_pairs_are_fitted_to_their_confidence_not_to_certainty(tiny_config, toy_pairs):
    # Without margins, so the fitted probability is sigmoid of the reward gap itself.
    pairs = [dataclasses.replace(pair, margin=0.0) for pair in toy_pairs]
    train, held_out = split_by_prompt(pairs, 0.25, seed=0)
    config = dataclasses.replace(tiny_config, num_epochs=16)
    certain = train_reward_model(train, config)
    unsure = train_reward_model([dataclasses.replace(pair, confidence=0.75) for pair in train], config)

    def mean_win_probability(result):
        items = [(pair.context, pair.chosen) for pair in train] + [(pair.context, pair.rejected) for pair in train]
        rewards = torch.tensor(score_responses(result.model, result.tokenizer, items, max_length=32))
        chosen, rejected = rewards.chunk(2)
        return torch.sigmoid(chosen - rejected).mean().item()

    # Both learn which side wins; the certain model heads for probability 1,
    # the unsure one stops where its predicted probability matches 0.75.
    for result in (certain, unsure):
        assert evaluate_reward_model(result.model, result.tokenizer, held_out, config)["accuracy"] > 0.9
    assert mean_win_probability(certain) > 0.95
    assert mean_win_probability(unsure) == pytest.approx(0.75, abs=0.03)


def scorer_case(tiny_model, padding_side):
    model, tokenizer = tiny_model
    tokenizer.padding_side = padding_side
    words = "here is a good and very helpful answer about the poem".split()
    pairs = [
        PreferencePair(f"p{k}", ({"role": "user", "content": "hi"},), " ".join(words[: 2 + k]), " ".join(words[k:]))
        for k in range(6)
    ]
    encoded = encode_pairs(tokenizer, pairs, max_length=32)
    inputs = collate_pairs(encoded, tokenizer.pad_token_id, padding_side)
    rows = [p.chosen_ids for p in encoded] + [p.rejected_ids for p in encoded]
    return model, inputs, rows, PairScorer(model, left_padded=padding_side == "left")


@pytest.mark.parametrize("packed", [True, False], ids=["packed-bert", "whole-passes"])
def test_scoring_in_several_passes_gives_one_pass_rewards_and_gradients(tiny_model, packed):
    model, inputs, rows, scorer = scorer_case(tiny_model, "right")
    assert scorer.packed  # a right-padded BERT: linear layers over the packed real tokens
    scorer.packed = packed
    model.train()
    for module in model.modules():  # as TrainConfig.disable_dropout, so both runs are deterministic
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "dropout_prob", None), float):  # transformers 4's SDPA attention reads this
            module.dropout_prob = 0.0
    passes = plan_passes([len(row) for row in rows], pass_cost_tokens=0)
    assert len(passes) > 2
    watched = {
        "word embeddings": model.bert.embeddings.word_embeddings.weight,
        "position embeddings": model.bert.embeddings.position_embeddings.weight,
        "first query": model.bert.encoder.layer[0].attention.self.query.weight,
        "last feed-forward": model.bert.encoder.layer[-1].output.dense.weight,
        "pooler": model.bert.pooler.dense.weight,
        "head": model.classifier.weight,
    }

    def rewards_and_gradients(passes):
        model.zero_grad(set_to_none=True)
        rewards = scorer(inputs["input_ids"], inputs["attention_mask"], passes)  # (2B,)
        (rewards * torch.arange(1.0, 13.0)).sum().backward()
        return rewards.detach(), {name: weight.grad.clone() for name, weight in watched.items()}

    one_rewards, one_gradients = rewards_and_gradients(None)
    split_rewards, split_gradients = rewards_and_gradients(passes)
    assert split_rewards.shape == (12,)
    assert torch.allclose(split_rewards, one_rewards, atol=1e-5)
    for name, gradient in one_gradients.items():
        assert torch.allclose(split_gradients[name], gradient, atol=1e-4), name


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_each_pass_is_cut_to_its_own_rows_tokens(tiny_model, padding_side):
    # Free passes group rows of equal length only, so no pass holds padding:
    # every reward is that of its text scored alone.
    model, inputs, rows, scorer = scorer_case(tiny_model, padding_side)
    with torch.no_grad():
        rewards = scorer(inputs["input_ids"], inputs["attention_mask"], plan_passes([len(r) for r in rows], 0))
        alone = [model(input_ids=torch.tensor([row])).logits.item() for row in rows]
    assert rewards.tolist() == pytest.approx(alone, abs=1e-5)
