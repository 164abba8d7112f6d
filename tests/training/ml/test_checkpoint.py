import json

import pytest

from training.ml.checkpoint import load_checkpoint_metadata, save_checkpoint
from training.ml.model import load_reward_model
from training.ml.scoring import score_responses

ITEMS = [([{"role": "user", "content": "tell me a poem"}], "good answer"), ([], "rude")]
METADATA = {"config": {"seed": 3}, "data_sha256": "ab" * 32, "code_version": "abc123"}


def leftovers(folder):
    return [path.name for path in folder.iterdir() if path.name.startswith(".tmp-")]


def test_saved_checkpoint_loads_back_with_the_same_scores(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    target = save_checkpoint(model, tokenizer, tmp_path / "runs" / "v1", METADATA)
    assert target == tmp_path / "runs" / "v1"
    assert (target / "model.safetensors").is_file()
    assert load_checkpoint_metadata(target) == METADATA

    reloaded, reloaded_tokenizer = load_reward_model(target, "cpu")
    assert score_responses(reloaded, reloaded_tokenizer, ITEMS, max_length=32) == pytest.approx(
        score_responses(model, tokenizer, ITEMS, max_length=32), abs=1e-6
    )
    assert leftovers(tmp_path / "runs") == []


@pytest.mark.parametrize("existing_content", [True, False])
def test_an_existing_folder_is_never_overwritten(tiny_model, tmp_path, existing_content):
    model, tokenizer = tiny_model
    target = tmp_path / "v1"
    target.mkdir()
    if existing_content:
        (target / "reward_metadata.json").write_text(json.dumps({"old": True}))
    with pytest.raises(FileExistsError):
        save_checkpoint(model, tokenizer, target, METADATA)
    assert [p.name for p in target.iterdir()] == (["reward_metadata.json"] if existing_content else [])
    assert leftovers(tmp_path) == []


def test_a_failed_save_leaves_nothing_behind(tiny_model, tmp_path):
    model, tokenizer = tiny_model
    with pytest.raises(TypeError):
        save_checkpoint(model, tokenizer, tmp_path / "v1", {"not json": object()})

    def broken_save(directory, **kwargs):
        raise OSError("disk full")

    tokenizer.save_pretrained = broken_save
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, tokenizer, tmp_path / "v1", METADATA)
    assert list(tmp_path.iterdir()) == []
