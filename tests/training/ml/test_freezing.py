"""TrainConfig.frozen_layers: the embeddings and the lowest blocks keep their pretrained
weights through training, the rest trains, and a count the backbone cannot honour is refused."""

import dataclasses

import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2Model

from training.ml.config import TrainConfig
from training.ml.freezing import freeze_lower_layers
from training.ml.model import load_reward_model
from training.ml.trainer import PairScorer, train_reward_model


def weights(model):
    return {name: parameter.detach().clone() for name, parameter in model.named_parameters()}


def frozen_names(model):
    return sorted(name for name, parameter in model.named_parameters() if not parameter.requires_grad)


@pytest.mark.parametrize("pooling", ["cls_pooler", "mean"])
def test_the_frozen_bottom_keeps_its_weights_and_the_rest_trains(tiny_config, toy_pairs, pooling):
    config = dataclasses.replace(tiny_config, frozen_layers=2, num_epochs=2, pooling=pooling)
    before = weights(load_reward_model(tiny_config.backbone_path, "cpu", pooling=pooling)[0])
    result = train_reward_model(toy_pairs, config)
    after = weights(result.model)

    assert before.keys() == after.keys()
    embeddings_and_first_block = [name for name in after if ".embeddings." in name or ".layer.0." in name]
    assert len(embeddings_and_first_block) == 5 + 16  # 3 tables + LayerNorm (2), and one BERT block's 16
    for name in embeddings_and_first_block:
        assert torch.equal(after[name], before[name]), name
    # The block above them and the reward head did train (not the head's bias: a shift
    # common to both rewards of a pair gets no gradient from the pairwise loss).
    for name in after:
        if name.endswith(".weight") and (".layer.1.attention.self.query." in name or name.startswith(("classifier.", "score."))):
            assert not torch.equal(after[name], before[name]), name


def test_a_frozen_bottom_still_learns_the_toy_preferences(tiny_config, toy_pairs):
    from training.ml.evaluation import evaluate_reward_model

    result = train_reward_model(toy_pairs, dataclasses.replace(tiny_config, frozen_layers=2))
    assert evaluate_reward_model(result.model, result.tokenizer, toy_pairs, tiny_config)["accuracy"] >= 0.9


def test_frozen_layers_count_from_the_input_up(tiny_model):
    model, _ = tiny_model
    freeze_lower_layers(model, 1)
    assert {name.split(".")[1] for name in frozen_names(model)} == {"embeddings"}
    freeze_lower_layers(model, 3)  # the tiny BERT's embeddings and both its blocks: only the head trains
    assert sorted(name for name, p in model.named_parameters() if p.requires_grad) == [
        "bert.pooler.dense.bias", "bert.pooler.dense.weight", "classifier.bias", "classifier.weight",
    ]  # fmt: skip


def test_zero_changes_nothing(tiny_model):
    model, _ = tiny_model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    freeze_lower_layers(model, 0)
    assert [name for name, p in model.named_parameters() if p.requires_grad] == trainable


def test_a_decoder_freezes_its_token_and_position_tables_then_its_first_block(tiny_model_path, tmp_path):
    folder = tmp_path / "gpt2"
    GPT2Model(GPT2Config(vocab_size=200, n_embd=32, n_layer=2, n_head=2, n_positions=128)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_path).save_pretrained(folder)
    model, _ = load_reward_model(folder, "cpu")  # auto: a decoder, read at its last token
    freeze_lower_layers(model, 2)
    assert {name.rsplit(".", 1)[0] for name in frozen_names(model) if not name.startswith("backbone.h.0.")} == {
        "backbone.wte", "backbone.wpe",
    }  # fmt: skip
    assert any(name.startswith("backbone.h.0.") for name in frozen_names(model))
    assert not any(name.startswith(("backbone.h.1.", "backbone.ln_f.", "score.")) for name in frozen_names(model))


def test_more_than_the_backbone_has_is_refused(tiny_model):
    model, _ = tiny_model
    with pytest.raises(ValueError, match=r"frozen_layers 4 is more than the backbone has: its embeddings and 2"):
        freeze_lower_layers(model, 4)
    assert frozen_names(model) == []  # refused before anything froze


def test_a_backbone_whose_blocks_cannot_be_found_is_refused_not_trained_whole(tiny_model):
    model, _ = tiny_model
    model.bert.encoder.layer = torch.nn.Sequential(*model.bert.encoder.layer)  # no longer a ModuleList
    with pytest.raises(ValueError, match="cannot find the 2 transformer blocks of a BertModel"):
        freeze_lower_layers(model, 2)


def test_a_negative_count_is_refused_by_the_config(tiny_model_path):
    with pytest.raises(ValueError, match="frozen_layers must be >= 0, got -1"):
        TrainConfig(backbone_path=tiny_model_path, frozen_layers=-1)


def test_the_packed_forward_gives_the_trainable_parts_the_gradients_whole_passes_give(tiny_model):
    # Packing must not care what is frozen: same rewards, same gradients on what trains, none on the rest.
    model, tokenizer = tiny_model
    freeze_lower_layers(model, 2)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    texts = ["no", "simmer it for nine minutes", "put the egg in cold water and bring it to the boil", "boil it"]
    inputs = tokenizer(texts, padding=True, return_tensors="pt")
    lengths = inputs["attention_mask"].sum(dim=1).tolist()
    scorer = PairScorer(model)
    assert scorer.packed

    def gradients(passes):
        model.zero_grad(set_to_none=True)
        scorer(inputs["input_ids"], inputs["attention_mask"], passes).sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    whole = gradients(None)
    packed = gradients([(list(range(len(texts))), max(lengths))])
    assert whole.keys() == packed.keys()
    assert not any(".embeddings." in name or ".layer.0." in name for name in whole)
    for name, gradient in whole.items():
        torch.testing.assert_close(packed[name], gradient, rtol=1e-4, atol=1e-6, msg=name)


def test_two_processes_train_a_frozen_bottom_like_one(tiny_config, toy_pairs, tmp_path):
    # DistributedDataParallel must neither wait for gradients the frozen parts never get
    # nor move them: each rank freezes the same parts, and the run equals one process's.
    from training.ml.distributed import train_distributed

    config = dataclasses.replace(tiny_config, frozen_layers=2, num_epochs=2)
    result = train_distributed(toy_pairs, config, nproc=2, output_dir=tmp_path / "ddp")
    single = train_reward_model(toy_pairs, dataclasses.replace(config, gradient_accumulation_steps=2))
    assert [row["loss"] for row in result.history] == pytest.approx([row["loss"] for row in single.history], abs=1e-5)
    before = weights(load_reward_model(tiny_config.backbone_path, "cpu")[0])
    saved = weights(load_reward_model(tmp_path / "ddp", "cpu")[0])
    assert torch.equal(saved["bert.embeddings.word_embeddings.weight"], before["bert.embeddings.word_embeddings.weight"])
    assert torch.equal(saved["bert.encoder.layer.0.output.dense.weight"], before["bert.encoder.layer.0.output.dense.weight"])
    assert not torch.equal(saved["bert.encoder.layer.1.output.dense.weight"], before["bert.encoder.layer.1.output.dense.weight"])
