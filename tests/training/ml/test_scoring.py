import pytest

from training.ml.packed import packed_rewards
from training.ml.scoring import score_responses

ITEMS = [
    ([{"role": "user", "content": "tell me a story about a very long day " * 3}], "good answer"),
    ([], "bad"),
    ([{"role": "user", "content": "hi"}], "here is a kind and helpful poem"),
    ([{"role": "user", "content": "hello"}], "no"),
    ([{"role": "system", "content": "be kind"}, {"role": "user", "content": "code"}], "wrong"),
]


def test_scores_come_back_in_input_order(tiny_model):
    model, tokenizer = tiny_model
    batched = score_responses(model, tokenizer, ITEMS, max_length=32, batch_size=2)
    one_by_one = [score_responses(model, tokenizer, [item], max_length=32)[0] for item in ITEMS]
    assert batched == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(batched)) == len(ITEMS)


def test_scoring_restores_training_mode_and_handles_empty_input(tiny_model):
    model, tokenizer = tiny_model
    model.train()
    score_responses(model, tokenizer, ITEMS[:2], max_length=32)
    assert model.training
    assert score_responses(model, tokenizer, [], max_length=32) == []


def test_packed_scoring_gives_the_padded_forward_rewards(tiny_model):
    model, tokenizer = tiny_model
    packed = score_responses(model, tokenizer, ITEMS, max_length=32, batch_size=3, packed=True)
    padded = score_responses(model, tokenizer, ITEMS, max_length=32, batch_size=3, packed=False)
    assert packed == pytest.approx(padded, abs=1e-5)


def test_scoring_packs_on_cpu_where_the_trainer_packs(tiny_model, monkeypatch):
    from training.ml import scoring

    model, tokenizer = tiny_model
    calls = []
    monkeypatch.setattr(scoring, "packed_rewards", lambda *args: calls.append(args) or packed_rewards(*args))
    score_responses(model, tokenizer, ITEMS, max_length=32, batch_size=2)
    assert len(calls) == 3  # five items in batches of two, every one packed

    tokenizer.padding_side = "left"  # outside what the packed mirror covers: whole padded passes
    calls.clear()
    assert len(score_responses(model, tokenizer, ITEMS, max_length=32)) == len(ITEMS) and not calls
    with pytest.raises(ValueError, match="cannot be scored packed"):
        score_responses(model, tokenizer, ITEMS, max_length=32, packed=True)
