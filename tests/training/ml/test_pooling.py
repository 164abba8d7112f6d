"""The reward head's pooling: each reduction, the choice per backbone, training,
checkpoints that keep their pooling, and old [CLS]-pooler checkpoints that score as they did."""

import dataclasses
import json
import shutil

import pytest
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, GPT2Config, GPT2Model

from training.ml.batching import collate_pairs, plan_passes
from training.ml.checkpoint import load_checkpoint_metadata, save_checkpoint
from training.ml.config import TrainConfig
from training.ml.data import PreferencePair, encode_pairs
from training.ml.evaluation import evaluate_reward_model
from training.ml.model import load_reward_model, pooling_of
from training.ml.packed import supports_packing
from training.ml.pooling import HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE, PooledRewardModel, pool, resolve_pooling
from training.ml.scoring import score_responses
from training.ml.split import split_by_prompt
from training.ml.trainer import PairScorer, train_reward_model

ITEMS = [
    ([{"role": "user", "content": "tell me a poem"}], "here is a good and very helpful answer"),
    ([], "rude"),
    ([{"role": "user", "content": "hi"}], "hello"),
]

# --- the reductions, on hand-built tensors ---------------------------------------------------------

# Two texts of hidden size 1: row 0 has 3 real tokens (10, 20, 30), row 1 has 2 (1, 2);
# 99 marks padding, which no pooling may read.
RIGHT = (torch.tensor([[[10.0], [20.0], [30.0], [99.0]], [[1.0], [2.0], [99.0], [99.0]]]),
         torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))
LEFT = (torch.tensor([[[99.0], [10.0], [20.0], [30.0]], [[99.0], [99.0], [1.0], [2.0]]]),
        torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]]))


@pytest.mark.parametrize("padded", [RIGHT, LEFT], ids=["right-padded", "left-padded"])
@pytest.mark.parametrize(
    "pooling, expected", [("first_token", [10.0, 1.0]), ("last_token", [30.0, 2.0]), ("mean", [20.0, 1.5])]
)
def test_each_pooling_reads_the_real_tokens_only(padded, pooling, expected):
    hidden, mask = padded
    assert pool(hidden, mask, pooling).squeeze(-1).tolist() == expected


def test_an_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling"):
        TrainConfig(backbone_path="x", pooling="max")
    with pytest.raises(ValueError):
        pool(*RIGHT, "cls_pooler")  # the pooler belongs to transformers' classifier, not to pool()


@pytest.mark.parametrize("pooling", ["first_token", "mean"])
def test_a_texts_reward_does_not_depend_on_its_batchs_padding(tiny_model_path, pooling):
    torch.manual_seed(0)
    model, tokenizer = load_reward_model(tiny_model_path, "cpu", pooling=pooling)
    model.eval()
    ids = tokenizer("a kind and helpful answer")["input_ids"]
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([ids])).logits.item()
        for extra in (1, 7):
            padded = torch.tensor([ids + [tokenizer.pad_token_id] * extra])
            mask = torch.tensor([[1] * len(ids) + [0] * extra])
            assert model(input_ids=padded, attention_mask=mask).logits.item() == pytest.approx(alone, abs=1e-6)


# --- "auto": chosen per folder -------------------------------------------------------------------


def sentence_transformers_folder(tiny_model_path, tmp_path, mode="pooling_mode_mean_tokens"):
    """The tiny model laid out as sentence-transformers ships MiniLM: modules.json naming a Pooling module."""
    folder = tmp_path / "st"
    shutil.copytree(tiny_model_path, folder)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    flags = ["pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens", "pooling_mode_lasttoken"]
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, **{flag: flag == mode for flag in flags}})
    )
    return folder


def tiny_decoder_folder(tiny_model_path, tmp_path):
    """A 2-layer GPT-2 base model, with the tiny BERT's tokenizer (any tokenizer will do)."""
    folder = tmp_path / "gpt2"
    config = GPT2Config(vocab_size=200, n_embd=32, n_layer=2, n_head=2, n_positions=128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        GPT2Model(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(folder)
    return folder


def test_auto_keeps_the_classifier_of_an_unknown_encoder(tiny_model_path):
    # The tiny BERT: no sentence-transformers files, a BertForSequenceClassification.
    assert resolve_pooling(tiny_model_path) == "cls_pooler"
    model, _ = load_reward_model(tiny_model_path, "cpu")
    assert isinstance(model, BertForSequenceClassification)


@pytest.mark.parametrize(
    "mode, expected",
    [("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "first_token"),
     ("pooling_mode_lasttoken", "last_token"), ("pooling_mode_max_tokens", "cls_pooler")],
)
def test_auto_follows_a_sentence_transformers_pooling(tiny_model_path, tmp_path, mode, expected):
    folder = sentence_transformers_folder(tiny_model_path, tmp_path, mode)
    assert resolve_pooling(folder) == expected
    assert resolve_pooling(folder, "first_token") == "first_token"  # an explicit choice wins on a backbone


@pytest.mark.parametrize(
    "config",
    [{"model_type": "llama", "architectures": ["LlamaModel"]},
     {"model_type": "some_new_lm", "architectures": ["SomeNewLMForCausalLM"]},
     {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]},
     {"model_type": "bert", "is_decoder": True}],
    ids=["llama-base", "causal-lm-architecture", "gpt2-lm-head", "is-decoder"],
)
def test_auto_reads_a_decoder_at_its_last_token(tmp_path, config):
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert resolve_pooling(tmp_path) == "last_token"


def test_a_decoder_backbone_scores_at_its_last_real_token(tiny_model_path, tmp_path):
    folder = tiny_decoder_folder(tiny_model_path, tmp_path)
    torch.manual_seed(0)
    model, tokenizer = load_reward_model(folder, "cpu")
    assert isinstance(model, PooledRewardModel) and model.pooling == "last_token"
    assert not supports_packing(model, padding_side="right")  # decoders go by whole passes
    batched = score_responses(model, tokenizer, ITEMS, max_length=32, batch_size=3)
    alone = [score_responses(model, tokenizer, [item], max_length=32)[0] for item in ITEMS]
    assert batched == pytest.approx(alone, abs=1e-5) and len(set(batched)) == len(ITEMS)


# --- training and checkpoints --------------------------------------------------------------------


def test_training_with_mean_pooling_learns_the_toy_preference(tiny_model_path, tiny_config, toy_pairs, tmp_path):
    train, held_out = split_by_prompt(toy_pairs, 0.25, seed=0)
    config = dataclasses.replace(tiny_config, pooling="mean")
    torch.manual_seed(config.seed)
    initial, _ = load_reward_model(tiny_model_path, "cpu", pooling="mean")

    result = train_reward_model(train, config)

    assert result.pooling == "mean" and isinstance(result.model, PooledRewardModel)
    losses = [row["loss"] for row in result.history]
    assert sum(losses[-3:]) / 3 < 0.5 * sum(losses[:3]) / 3
    assert evaluate_reward_model(result.model, result.tokenizer, held_out, config)["accuracy"] > 0.9
    trained = result.model.state_dict()
    changed = {name for name, value in initial.state_dict().items() if not torch.equal(value, trained[name])}
    assert {"score.weight", "backbone.encoder.layer.1.output.dense.weight"} <= changed
    assert not any("pooler" in name for name in changed)  # BERT's pooler reaches no mean-pooled reward

    # The checkpoint keeps the pooling, the head and the scores.
    checkpoint = save_checkpoint(result.model, result.tokenizer, tmp_path / "v1", {"config": config.to_dict()})
    assert (checkpoint / HEAD_WEIGHTS_FILE).is_file() and (checkpoint / "model.safetensors").is_file()
    assert json.loads((checkpoint / HEAD_CONFIG_FILE).read_text())["pooling"] == "mean"
    reloaded, tokenizer = load_reward_model(checkpoint, "cpu")
    assert pooling_of(reloaded) == "mean"
    assert score_responses(reloaded, tokenizer, ITEMS, max_length=32) == score_responses(
        result.model, result.tokenizer, ITEMS, max_length=32
    )
    # Warm-starting keeps it too; asking for another pooling is an error, not a silently new head.
    assert train_reward_model(train[:8], dataclasses.replace(config, pooling="auto", num_epochs=1),
                              init_path=str(checkpoint)).pooling == "mean"
    with pytest.raises(ValueError, match="trained with pooling 'mean'"):
        load_reward_model(checkpoint, "cpu", pooling="cls_pooler")


def test_training_auto_on_a_sentence_transformers_backbone_records_mean(tiny_model_path, tiny_config, toy_pairs, tmp_path):
    folder = sentence_transformers_folder(tiny_model_path, tmp_path)
    config = dataclasses.replace(tiny_config, backbone_path=str(folder), num_epochs=1)
    assert config.pooling == "auto"
    assert train_reward_model(toy_pairs[:16], config).pooling == "mean"


def test_an_old_checkpoint_loads_and_scores_exactly_as_before(tiny_model_path, tmp_path):
    # Saved the way every checkpoint was before pooling was a setting: transformers'
    # BertForSequenceClassification, metadata whose config has no "pooling".
    plain = BertForSequenceClassification.from_pretrained(tiny_model_path, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    old_config = {key: value for key, value in TrainConfig(backbone_path=tiny_model_path).to_dict().items()
                  if key != "pooling"}
    checkpoint = save_checkpoint(plain, tokenizer, tmp_path / "old", {"config": old_config, "seed": 0})
    assert not (checkpoint / HEAD_CONFIG_FILE).exists()

    model, loaded_tokenizer = load_reward_model(checkpoint, "cpu")
    assert type(model) is BertForSequenceClassification and pooling_of(model) == "cls_pooler"
    reference = BertForSequenceClassification.from_pretrained(checkpoint, num_labels=1)
    assert score_responses(model, loaded_tokenizer, ITEMS, max_length=32) == score_responses(
        reference, tokenizer, ITEMS, max_length=32
    )  # bit for bit
    assert TrainConfig.from_saved(load_checkpoint_metadata(checkpoint)["config"]).pooling == "cls_pooler"
    # Even where "auto" would pick another pooling for the backbone, the checkpoint's own wins.
    shutil.copy(sentence_transformers_folder(tiny_model_path, tmp_path) / "modules.json", checkpoint / "modules.json")
    assert resolve_pooling(checkpoint) == "cls_pooler"
    with pytest.raises(ValueError, match="trained with pooling 'cls_pooler'"):
        load_reward_model(checkpoint, "cpu", pooling="mean")


# --- the packed forward --------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls_pooler", "first_token", "mean"])
def test_packed_and_whole_pass_rewards_and_gradients_agree(tiny_model_path, pooling):
    torch.manual_seed(0)
    model, tokenizer = load_reward_model(tiny_model_path, "cpu", pooling=pooling)
    with torch.no_grad():  # a head far from zero, so that a row mix-up shows in the rewards
        (model.classifier if pooling == "cls_pooler" else model.score).weight.normal_(std=1.0)
    model.train()
    for module in model.modules():  # as TrainConfig.disable_dropout, so both runs are deterministic
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    words = "here is a good and very helpful answer about the poem".split()
    pairs = [
        PreferencePair(f"p{k}", ({"role": "user", "content": "hi"},), " ".join(words[: 2 + k]), " ".join(words[k:]))
        for k in range(6)
    ]
    encoded = encode_pairs(tokenizer, pairs, max_length=32)
    inputs = collate_pairs(encoded, tokenizer.pad_token_id, "right")
    passes = plan_passes([len(p.chosen_ids) for p in encoded] + [len(p.rejected_ids) for p in encoded], 0)
    scorer = PairScorer(model)
    assert scorer.packed

    def rewards_and_gradients(packed):
        scorer.packed = packed
        model.zero_grad(set_to_none=True)
        rewards = scorer(inputs["input_ids"], inputs["attention_mask"], passes)  # (12,)
        (rewards * torch.arange(1.0, 13.0)).sum().backward()
        return rewards.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    packed_rewards, packed_gradients = rewards_and_gradients(True)
    whole_rewards, whole_gradients = rewards_and_gradients(False)
    # Random BERTs give every text nearly the same [CLS]; still 100 x the tolerance apart.
    assert whole_rewards.std() > 1e-4
    torch.testing.assert_close(packed_rewards, whole_rewards, rtol=1e-6, atol=1e-6)
    assert packed_gradients.keys() == whole_gradients.keys()
    for name, gradient in whole_gradients.items():
        # Relative to each tensor's largest entry, as in test_packed.
        scale = gradient.abs().max().item()
        torch.testing.assert_close(packed_gradients[name], gradient, rtol=0, atol=1e-4 * scale + 1e-7, msg=name)


def test_two_processes_train_a_mean_pooled_model(tiny_config, toy_pairs, tmp_path):
    # DistributedDataParallel waits for a gradient of every trainable
    # parameter; BERT's pooler gets none under mean pooling, so it is frozen.
    from training.ml.distributed import train_distributed

    config = dataclasses.replace(tiny_config, pooling="mean", num_epochs=1)
    result = train_distributed(toy_pairs[:32], config, nproc=2, output_dir=tmp_path / "ddp")
    assert result.pooling == "mean" and len(result.history) == 2
    reloaded, tokenizer = load_reward_model(tmp_path / "ddp", "cpu")
    assert pooling_of(reloaded) == "mean"
    assert score_responses(reloaded, tokenizer, ITEMS, max_length=32) == score_responses(
        result.model, result.tokenizer, ITEMS, max_length=32
    )
