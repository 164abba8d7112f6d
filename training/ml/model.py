"""Loading reward models, and a tiny random one for tests."""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    PreTrainedTokenizerBase,
)

from training.ml.pooling import PooledRewardModel, resolve_pooling, saved_criteria, saved_pooling


def resolve_device(name: str | torch.device) -> torch.device:
    """"auto" -> cuda when available, else cpu; anything else as torch reads it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_reward_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    pooling: str = "auto",
    criteria: Sequence[str] | None = None,
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """A reward model (one output per text) and its tokenizer.

    ``path`` is a local folder: a backbone (the scalar head is then freshly
    initialised from torch's global RNG, so seed before calling) or a
    checkpoint written by ``checkpoint.save_checkpoint``. ``pooling`` (see
    ``config.POOLINGS``) is resolved by ``pooling.resolve_pooling``: a
    checkpoint keeps the pooling it was trained with. cls_pooler gives
    transformers' AutoModelForSequenceClassification, exactly as before
    pooling was a setting (old checkpoints load and score unchanged); the
    other poolings give a ``pooling.PooledRewardModel``. Both are called
    alike: ``model(input_ids=, attention_mask=).logits`` is (N, 1). Weights
    are float32 whatever dtype the folder stores. Tokenizers without a pad
    token get one, because batches are padded.

    ``criteria``: the per-criterion heads to carry (see ``pooling``); ``None``
    (scoring) loads those the folder holds. A training run passes the
    project's: heads of criteria the folder already has keep their weights,
    new ones start fresh. Criteria need a pooled head: with cls_pooler they
    are a ValueError.
    """
    resolved = resolve_pooling(path, pooling)
    if criteria is None:
        criteria = saved_criteria(path)
    criteria = tuple(criteria)
    if criteria and resolved == "cls_pooler":
        raise ValueError(
            f"per-criterion heads need a pooled reward head (first_token, mean or last_token); {path} reads "
            "[CLS] through the pooler"
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    # transformers 5 keeps the dtype stored in the folder; training needs
    # fp32 master weights (bf16 is applied by autocast, not by the weights).
    model: torch.nn.Module
    if resolved == "cls_pooler":
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).float()
    else:
        model = PooledRewardModel(AutoModel.from_pretrained(path).float(), resolved, criteria)
        if saved_pooling(path) is not None:
            model.load_head(path)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            tokenizer.add_special_tokens({"pad_token": "[PAD]"})
            model.resize_token_embeddings(len(tokenizer))
    # Decoder classifiers read the reward at the last non-pad token, which
    # they find through config.pad_token_id.
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.to(resolve_device(device)), tokenizer


def pooling_of(model: torch.nn.Module) -> str:
    """The pooling a loaded reward model reads its reward with."""
    return getattr(model, "pooling", "cls_pooler")


_TINY_WORDS = """
the a an and or but not no yes is are was be to of in on for with about this that it
you i we they he she my your our what how why when where which who can will would should
please thanks thank hello hi sorry here there some any all more less very really just
good great helpful kind polite clear correct useful answer bad terrible rude wrong useless
mean unclear harmful question help explain tell me story poem code list idea
user assistant system
""".split()


def build_tiny_model(directory: str | os.PathLike) -> str:
    """Write a tiny randomly initialised BERT reward model into ``directory``.

    Hidden size 32, 2 layers, 2 heads; the WordPiece vocabulary holds the
    special tokens, letters, digits, punctuation and a few common words (so toy
    sentences get distinct ids, and any lowercase word still tokenizes via
    letter pieces). Weights come from a fixed seed without disturbing the
    caller's RNG. Takes well under a second; returns the folder as a string.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += characters + ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab += [word for word in dict.fromkeys(_TINY_WORDS) if word not in vocab]
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(vocab) + "\n", encoding="utf-8")

    # from_pretrained reads vocab.txt under transformers 4 and 5 alike; the
    # constructors differ (vocab_file= versus vocab=).
    tokenizer = BertTokenizerFast.from_pretrained(directory, model_max_length=512)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)
