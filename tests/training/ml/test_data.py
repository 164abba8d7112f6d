import hashlib

import pytest

from training.ml.data import (
    PreferencePair,
    encode_pairs,
    encode_scored_text,
    format_conversation,
    read_pairs_jsonl,
    write_jsonl,
    write_pairs_jsonl,
)

CONTEXT = (
    {"role": "system", "content": "be kind"},
    {"role": "user", "content": "tell me a story"},
)
TEMPLATE = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"


def test_plain_rendering_without_chat_template(tiny_model):
    _, tokenizer = tiny_model
    assert not tokenizer.chat_template
    text = format_conversation(tokenizer, CONTEXT, "here is one")
    assert text == "System: be kind\n\nUser: tell me a story\n\nAssistant: here is one"


def test_chat_template_is_used_when_present(tiny_model):
    _, tokenizer = tiny_model
    tokenizer.chat_template = TEMPLATE
    text = format_conversation(tokenizer, CONTEXT, "here is one")
    assert text == "<system> be kind\n<user> tell me a story\n<assistant> here is one\n"


def test_short_text_is_encoded_whole(tiny_model):
    _, tokenizer = tiny_model
    ids = encode_scored_text(tokenizer, CONTEXT, "here is one", max_length=64)
    assert ids == tokenizer(format_conversation(tokenizer, CONTEXT, "here is one"))["input_ids"]


def test_long_context_is_cut_from_the_left_keeping_cls_and_response(tiny_model):
    _, tokenizer = tiny_model
    context = [{"role": "user", "content": "tell me a story " * 50}]
    response = "here is a good helpful answer"
    ids = encode_scored_text(tokenizer, context, response, max_length=12)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    assert len(ids) == 12
    assert ids[0] == tokenizer.cls_token_id
    assert ids[-1] == tokenizer.sep_token_id
    assert ids[-1 - len(response_ids) : -1] == response_ids
    assert ids.count(tokenizer.cls_token_id) == 1


def test_a_conversation_longer_than_the_model_takes_raises_no_tokenizer_warning(tiny_model):
    """Cutting long texts is the plan here: transformers' "longer than the specified maximum"
    warning (once per tokenizer, in every worker's log) would only be noise."""
    _, tokenizer = tiny_model
    tokenizer.model_max_length = 16
    ids = encode_scored_text(tokenizer, [{"role": "user", "content": "tell me a story " * 50}], "an answer", max_length=12)
    assert len(ids) == 12
    assert "sequence-length-is-longer-than-the-specified-maximum" not in tokenizer.deprecation_warnings


def test_overlong_response_keeps_its_end(tiny_model):
    _, tokenizer = tiny_model
    response = "one " * 40 + "good answer"
    ids = encode_scored_text(tokenizer, CONTEXT, response, max_length=8)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens[-3:] == ["good", "answer", "[SEP]"] and len(ids) == 8


def test_template_that_renders_cls_itself_gets_no_second_one(tiny_model):
    _, tokenizer = tiny_model
    tokenizer.chat_template = "[CLS]" + TEMPLATE
    context = [{"role": "user", "content": "tell me a story " * 50}]
    ids = encode_scored_text(tokenizer, context, "good answer", max_length=10)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens.count("[CLS]") == 1
    assert tokens[-3:] == ["good", "answer", "[SEP]"] and len(ids) == 10


def test_encode_pairs_never_drops_long_pairs(tiny_model):
    _, tokenizer = tiny_model
    pairs = [
        PreferencePair("p", ({"role": "user", "content": "story " * 500},), "good answer", "bad answer"),
        PreferencePair("q", (), "good", "bad"),
    ]
    encoded = encode_pairs(tokenizer, pairs, max_length=16)
    assert [e.prompt_id for e in encoded] == ["p", "q"]
    assert len(encoded[0].chosen_ids) == 16 and encoded[0].length == 16
    assert tokenizer.decode(encoded[1].rejected_ids, skip_special_tokens=True) == "assistant : bad"


def test_pair_round_trips_through_dict_and_jsonl(tmp_path):
    pair = PreferencePair("p1", list(CONTEXT), "yes", "no", margin=1.5, strength=3)
    assert isinstance(pair.context, tuple)
    assert PreferencePair.from_dict(pair.to_dict()) == pair
    digest = write_pairs_jsonl([pair, pair], tmp_path / "a.jsonl")
    assert read_pairs_jsonl(tmp_path / "a.jsonl") == [pair, pair]
    assert write_pairs_jsonl([pair, pair], tmp_path / "b.jsonl") == digest
    assert write_pairs_jsonl([pair], tmp_path / "c.jsonl") != digest


def test_jsonl_lines_have_sorted_keys_and_plain_utf8_and_a_stable_hash(tmp_path):
    pairs = [
        PreferencePair("7", ({"role": "user", "content": 'Grüße, 世界 — "quoted"\n'},), "é", "b",
                       margin=0.25, strength=2, confidence=0.875),
        PreferencePair("8", (), "y", "x", tie=True),
    ]
    # The hash these pairs had before write_pairs_jsonl and the snapshots shared write_jsonl.
    assert write_pairs_jsonl(pairs, tmp_path / "pairs.jsonl") == (
        "471c88b14e4a61381f94e7e2ffc0e429f19ef465d70d076aa2ea35945624213d"
    )
    line = '{"a": null, "b": "é"}\n'.encode()
    with open(tmp_path / "records.jsonl", "wb") as handle:
        assert write_jsonl([{"b": "é", "a": None}], handle) == hashlib.sha256(line).hexdigest()
    assert (tmp_path / "records.jsonl").read_bytes() == line


def test_tie_round_trips_and_snapshot_extras_are_ignored():
    tie = PreferencePair("p1", CONTEXT, "one answer", "another answer", tie=True)
    assert tie.to_dict()["tie"] is True
    assert PreferencePair.from_dict(tie.to_dict()) == tie
    # What training/pairs.py writes: tie and label_id; older snapshots lack tie.
    record = {**tie.to_dict(), "label_id": 42}
    assert PreferencePair.from_dict(record) == tie
    del record["tie"]
    assert PreferencePair.from_dict(record).tie is False


def test_confidence_round_trips_and_defaults_to_certain():
    unsure = PreferencePair("p1", CONTEXT, "one answer", "another answer", confidence=0.7)
    assert PreferencePair.from_dict(unsure.to_dict()) == unsure
    record = unsure.to_dict()
    del record["confidence"]  # snapshots written before weighted aggregation
    assert PreferencePair.from_dict(record).confidence == 1.0


def test_encoded_pair_carries_the_tie_flag_and_confidence(tiny_model):
    _, tokenizer = tiny_model
    pairs = [
        PreferencePair("p", (), "good", "bad", confidence=0.6),
        PreferencePair("p", (), "kind", "clear", tie=True),
    ]
    encoded = encode_pairs(tokenizer, pairs, max_length=16)
    assert [e.tie for e in encoded] == [False, True]
    assert [e.confidence for e in encoded] == [0.6, 1.0]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"margin": -1.0},
        {"margin": 0.5, "tie": True},
        {"margin": float("nan")},
        {"confidence": 0.4},
        {"confidence": 1.5},
        {"confidence": float("nan")},
        {"context": ({"role": "robot", "content": "hi"},)},
        {"context": ({"role": "user", "content": None},)},
        {"prompt_id": ""},
    ],
)
def test_invalid_pairs_are_rejected(kwargs):
    fields = {"prompt_id": "p", "context": (), "chosen": "a", "rejected": "b", **kwargs}
    with pytest.raises(ValueError):
        PreferencePair(**fields)
