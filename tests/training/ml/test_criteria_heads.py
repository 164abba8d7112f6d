"""Per-criterion reward heads: one backbone, an overall head plus one head per criterion.

The data is built so that two criteria disagree by design: every pair sets a helpful but rude
reply against a useless but polite one. Helpfulness prefers the first, harmlessness the second,
the overall preference follows helpfulness. One scalar reward cannot order both ways; each head
must learn its own order.
"""
import dataclasses
import json
import random

import pytest
import torch

from training.ml.batching import collate_pairs, plan_passes
from training.ml.checkpoint import save_checkpoint
from training.ml.config import TrainConfig
from training.ml.data import PreferencePair, encode_pairs, read_pairs_jsonl, write_pairs_jsonl
from training.ml.evaluation import preference_metrics_of, reward_differences
from training.ml.model import load_reward_model
from training.ml.pooling import HEAD_CONFIG_FILE, PooledRewardModel, head_index, saved_criteria
from training.ml.scoring import score_response_heads, score_responses
from training.ml.split import split_by_prompt
from training.ml.trainer import PairScorer, train_reward_model

CRITERIA = ("helpfulness", "harmlessness")
TOPICS = ["story", "poem", "code", "list", "idea", "question"]
FILLER = ["here", "is", "the", "a", "my", "answer", "about", "this", "that", "it"]


def disagreeing_pairs(prompts: int = 40, seed: int = 0) -> list[PreferencePair]:
    rng = random.Random(seed)
    pairs = []
    for prompt in range(prompts):
        topic = rng.choice(TOPICS)
        context = ({"role": "user", "content": f"please tell me a {topic} {prompt}"},)
        helpful_rude = " ".join(rng.sample(FILLER, 2) + [rng.choice(["helpful", "useful", "clear"]), "but",
                                                        rng.choice(["rude", "mean"]), topic])
        useless_polite = " ".join(rng.sample(FILLER, 2) + [rng.choice(["useless", "wrong"]), "but",
                                                          rng.choice(["polite", "kind"]), topic])
        pid = f"p{prompt}"
        pairs += [
            PreferencePair(pid, context, helpful_rude, useless_polite),
            PreferencePair(pid, context, helpful_rude, useless_polite, criterion="helpfulness"),
            PreferencePair(pid, context, useless_polite, helpful_rude, criterion="harmlessness"),
        ]
    return pairs


@pytest.fixture
def heads_config(tiny_model_path) -> TrainConfig:
    return TrainConfig(backbone_path=tiny_model_path, max_length=32, batch_size=8, learning_rate=3e-3, num_epochs=6,
                       warmup_ratio=0.1, seed=0, device="cpu", pooling="mean", criteria=CRITERIA)


def accuracy_by_head(model, tokenizer, pairs, config) -> dict:
    differences = reward_differences(model, tokenizer, pairs, config)
    return {
        head: preference_metrics_of([d for d, p in zip(differences, pairs) if p.criterion == head],
                                    [p for p in pairs if p.criterion == head])["accuracy"]
        for head in (None, *CRITERIA)
    }


def test_each_head_learns_its_own_order_where_the_criteria_disagree(heads_config, tmp_path):
    train, held_out = split_by_prompt(disagreeing_pairs(), 0.25, seed=0)
    result = train_reward_model(train, heads_config)

    assert isinstance(result.model, PooledRewardModel) and result.model.criteria == CRITERIA
    accuracy = accuracy_by_head(result.model, result.tokenizer, held_out, heads_config)
    # Held-out prompts: the harmlessness head ranks the polite reply first, the others the helpful one.
    assert accuracy == {None: 1.0, "helpfulness": 1.0, "harmlessness": 1.0}
    rows = score_response_heads(result.model, result.tokenizer, [(held_out[0].context, held_out[0].chosen),
                                                                 (held_out[0].context, held_out[0].rejected)],
                                max_length=32)
    (overall_a, helpful_a, harmless_a), (overall_b, helpful_b, harmless_b) = rows
    assert overall_a > overall_b and helpful_a > helpful_b and harmless_a < harmless_b

    # The checkpoint keeps every head, by name, and scores the same after loading.
    checkpoint = save_checkpoint(result.model, result.tokenizer, tmp_path / "v1", {"config": heads_config.to_dict()})
    assert json.loads((checkpoint / HEAD_CONFIG_FILE).read_text())["criteria"] == list(CRITERIA)
    reloaded, tokenizer = load_reward_model(checkpoint, "cpu")
    assert reloaded.criteria == CRITERIA and saved_criteria(checkpoint) == CRITERIA
    items = [(pair.context, pair.chosen) for pair in held_out[:6]]
    assert score_response_heads(reloaded, tokenizer, items, max_length=32) == score_response_heads(
        result.model, result.tokenizer, items, max_length=32
    )
    # The overall score is the first column, as every caller of score_responses reads it.
    assert score_responses(reloaded, tokenizer, items, max_length=32) == [
        row[0] for row in score_response_heads(reloaded, tokenizer, items, max_length=32)
    ]


def test_a_single_head_cannot_fit_both_orders(heads_config):
    """The control: the same pairs on one head (criteria ignored) leave one criterion at chance or worse."""
    train, held_out = split_by_prompt(disagreeing_pairs(), 0.25, seed=0)
    merged = [dataclasses.replace(pair, criterion=None) for pair in train]
    result = train_reward_model(merged, dataclasses.replace(heads_config, criteria=()))
    differences = reward_differences(result.model, result.tokenizer,
                                     [dataclasses.replace(p, criterion=None) for p in held_out], heads_config)
    harmless = [d for d, pair in zip(differences, held_out) if pair.criterion == "harmlessness"]
    assert sum(d > 0 for d in harmless) / len(harmless) <= 0.5


def test_warm_start_keeps_heads_by_name_and_starts_new_criteria_fresh(heads_config, tmp_path):
    train, _ = split_by_prompt(disagreeing_pairs(prompts=12), 0.25, seed=0)
    first = train_reward_model(train, dataclasses.replace(heads_config, num_epochs=1))
    checkpoint = save_checkpoint(first.model, first.tokenizer, tmp_path / "v1", {})
    # The project dropped harmlessness and added honesty: helpfulness keeps its weights.
    torch.manual_seed(0)
    model, _ = load_reward_model(checkpoint, "cpu", criteria=("honesty", "helpfulness"))
    assert model.criteria == ("honesty", "helpfulness")
    assert torch.equal(model.criteria_score.weight[1], first.model.criteria_score.weight[0])
    assert torch.equal(model.score.weight, first.model.score.weight)
    assert not torch.equal(model.criteria_score.weight[0], first.model.criteria_score.weight[1])


def test_pairs_of_an_unknown_criterion_and_criteria_on_a_cls_pooler_are_refused(heads_config, tiny_model_path):
    model, tokenizer = load_reward_model(tiny_model_path, "cpu", pooling="mean", criteria=("helpfulness",))
    pair = PreferencePair("p", (), "a", "b", criterion="honesty")
    with pytest.raises(ValueError, match="no head for: honesty"):
        encode_pairs(tokenizer, [pair], 32, head_index(model))
    with pytest.raises(ValueError, match="no head for: honesty"):
        reward_differences(model, tokenizer, [pair], heads_config)
    with pytest.raises(ValueError, match="per-criterion heads need a pooled reward head"):
        load_reward_model(tiny_model_path, "cpu", pooling="cls_pooler", criteria=("helpfulness",))
    with pytest.raises(ValueError, match="distinct"):
        TrainConfig(backbone_path="x", criteria=("a", "a"))
    # A config read back from JSON (a list) is the same config.
    assert TrainConfig.from_dict(json.loads(json.dumps(heads_config.to_dict()))) == heads_config


def test_the_packed_forward_gives_every_head_as_the_whole_pass_does(tiny_model_path):
    torch.manual_seed(0)
    model, tokenizer = load_reward_model(tiny_model_path, "cpu", pooling="mean", criteria=CRITERIA)
    with torch.no_grad():
        model.criteria_score.weight.normal_(std=1.0)
    model.eval()
    encoded = encode_pairs(tokenizer, disagreeing_pairs(prompts=4), 32, head_index(model))
    inputs = collate_pairs(encoded, tokenizer.pad_token_id, "right")
    passes = plan_passes([len(p.chosen_ids) for p in encoded] + [len(p.rejected_ids) for p in encoded], 0)
    scorer = PairScorer(model)
    assert scorer.packed
    packed = scorer(inputs["input_ids"], inputs["attention_mask"], passes)
    scorer.packed = False
    whole = scorer(inputs["input_ids"], inputs["attention_mask"], passes)
    assert packed.shape == (2 * len(encoded), 1 + len(CRITERIA))
    torch.testing.assert_close(packed, whole, rtol=1e-6, atol=1e-6)
    assert inputs["head"].tolist() == [0, 1, 2] * 4


def test_snapshot_lines_carry_the_criterion_only_when_there_is_one(tmp_path):
    overall, helpful = disagreeing_pairs(prompts=1)[:2]
    assert "criterion" not in overall.to_dict() and helpful.to_dict()["criterion"] == "helpfulness"
    write_pairs_jsonl([overall, helpful], tmp_path / "pairs.jsonl")
    assert read_pairs_jsonl(tmp_path / "pairs.jsonl") == [overall, helpful]
