"""Training only the embedding rows the data uses: the same model as training them all,
and the model's own embedding back in place afterwards, whatever happens."""

import contextlib
import dataclasses

import pytest
import torch

import training.ml.trainer as trainer
from training.ml.data import encode_pairs
from training.ml.embeddings import CompactEmbedding, compact_input_embeddings
from training.ml.pooling import head_index
from training.ml.trainer import prepare_model, run_training_loop, train_reward_model


@contextlib.contextmanager
def whole_embedding(model, token_ids, *, weight_decay):
    yield False


def used_ids(tokenizer, pairs, max_length):
    encoded = encode_pairs(tokenizer, pairs, max_length)
    return sorted({token for pair in encoded for token in (*pair.chosen_ids, *pair.rejected_ids)})


def test_training_the_used_rows_gives_the_model_training_every_row_gives(tiny_config, toy_pairs, monkeypatch):
    compact = train_reward_model(toy_pairs, tiny_config).model.state_dict()
    monkeypatch.setattr(trainer, "compact_input_embeddings", whole_embedding)
    whole = train_reward_model(toy_pairs, tiny_config).model.state_dict()

    assert compact.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(compact[name], whole[name], rtol=1e-4, atol=1e-5, msg=name)


def test_rows_of_ids_the_data_never_uses_do_not_move_and_the_rest_train(tiny_config, toy_pairs):
    model, tokenizer = prepare_model(tiny_config, torch.device("cpu"))
    before = model.get_input_embeddings().weight.detach().clone()
    used = used_ids(tokenizer, toy_pairs, tiny_config.max_length)
    unused = sorted(set(range(len(before))) - set(used) - {tokenizer.pad_token_id})
    assert len(unused) > 10  # the toy pairs use a fraction of the tiny vocabulary

    encoded = encode_pairs(tokenizer, toy_pairs, tiny_config.max_length, head_index(model))
    run_training_loop(model, tokenizer, encoded, tiny_config, torch.device("cpu"))

    after = model.get_input_embeddings()
    assert type(after) is torch.nn.Embedding  # the model's own module, not the compact table
    assert torch.equal(after.weight[unused], before[unused])
    assert not torch.allclose(after.weight[used], before[used])


def test_the_embedding_is_back_in_place_when_training_stops_with_an_error(tiny_config, toy_pairs):
    model, tokenizer = prepare_model(tiny_config, torch.device("cpu"))
    embedding = model.get_input_embeddings()
    encoded = encode_pairs(tokenizer, toy_pairs, tiny_config.max_length, head_index(model))

    def interrupt(progress):
        raise RuntimeError("worker shutting down")

    with pytest.raises(RuntimeError, match="shutting down"):
        run_training_loop(model, tokenizer, encoded, tiny_config, torch.device("cpu"), progress=interrupt)

    assert model.get_input_embeddings() is embedding
    assert not any(isinstance(module, CompactEmbedding) for module in model.modules())


def test_an_id_outside_the_training_data_is_refused_not_read_from_another_row(tiny_model):
    model, tokenizer = tiny_model
    with compact_input_embeddings(model, [2, 3, 10], weight_decay=0.0) as compacted:
        assert compacted
        table = model.get_input_embeddings()
        assert table.weight.shape == (3, model.config.hidden_size)
        table(torch.tensor([2, 10]))  # ids it holds
        with pytest.raises(IndexError):
            table(torch.tensor([11]))


def tie_an_output_layer(model):
    model.tied_output = torch.nn.Linear(1, 1)
    model.tied_output.weight = model.get_input_embeddings().weight


@pytest.mark.parametrize(
    "change, weight_decay",
    [
        (lambda model: None, 0.01),
        (lambda model: model.get_input_embeddings().weight.requires_grad_(False), 0.0),
        (tie_an_output_layer, 0.0),
    ],
    ids=["weight-decay", "frozen", "tied-to-an-output-layer"],
)
def test_an_embedding_that_must_train_whole_is_left_whole(tiny_model, change, weight_decay):
    model, _ = tiny_model
    change(model)
    embedding = model.get_input_embeddings()
    with compact_input_embeddings(model, [2, 3, 10], weight_decay=weight_decay) as compacted:
        assert not compacted
        assert model.get_input_embeddings() is embedding


def test_weight_decay_trains_every_row(tiny_config, toy_pairs):
    config = dataclasses.replace(tiny_config, weight_decay=0.1, num_epochs=1)
    model, tokenizer = prepare_model(config, torch.device("cpu"))
    before = model.get_input_embeddings().weight.detach().clone()
    unused = sorted(set(range(len(before))) - set(used_ids(tokenizer, toy_pairs, config.max_length)))
    encoded = encode_pairs(tokenizer, toy_pairs, config.max_length, head_index(model))

    run_training_loop(model, tokenizer, encoded, config, torch.device("cpu"))

    # decay shrinks the rows no pair uses, as AdamW on the whole table does
    assert model.get_input_embeddings().weight[unused].norm() < before[unused].norm()
