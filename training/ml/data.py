"""Preference pairs and how a (conversation, response) becomes token ids.

No torch here: the web process writes snapshots with ``write_jsonl``, the
one writer of the content-hashed JSON lines files that training reads.
Tokenizers are duck-typed Hugging Face tokenizers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

ROLES = ("system", "user", "assistant")
_PLAIN_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}

Message = Mapping[str, str]


@dataclass(frozen=True)
class PreferencePair:
    """One human judgement: ``chosen`` was preferred to ``rejected`` as the
    next assistant turn after ``context``; or, with ``tie``, the two were
    judged equally good (then which is ``chosen`` means nothing).

    ``prompt_id`` groups pairs that share a prompt: the train/eval split never
    separates them, and batching keeps them next to each other.
    """

    prompt_id: str
    context: tuple[dict[str, str], ...]
    chosen: str
    rejected: str
    # Minimum reward gap asked of the model (>= 0); used only when
    # TrainConfig.use_margin.
    margin: float = 0.0
    # The annotator's preference strength, for accuracy-by-strength; None when unknown.
    strength: int | None = None
    # The two responses were judged equally good: training pulls their rewards
    # together (see loss.bradley_terry_loss) and evaluation reports them apart
    # from the preferences. A tie has no margin.
    tie: bool = False
    # Probability that ``chosen`` really is the better response, in [0.5, 1]:
    # below 1 when annotators disagreed and the pair comes from a weighted
    # vote (training.pairs, aggregation "weighted"); training then aims the
    # reward gap at that probability instead of at certainty.
    confidence: float = 1.0
    # The reward head this judgement trains: None for the overall preference, else a
    # criterion's key (the pair then comes from the annotators' ratings on it).
    criterion: str | None = None

    def __post_init__(self) -> None:
        context = tuple(_checked_message(message) for message in self.context)
        object.__setattr__(self, "context", context)
        if not isinstance(self.prompt_id, str) or not self.prompt_id:
            raise ValueError("prompt_id must be a non-empty string")
        if not isinstance(self.chosen, str) or not isinstance(self.rejected, str):
            raise ValueError("chosen and rejected must be strings")
        if not self.margin >= 0:  # also rejects NaN
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.tie and self.margin != 0:
            raise ValueError(f"a tie has no margin, got {self.margin}")
        if not 0.5 <= self.confidence <= 1:  # also rejects NaN
            raise ValueError(f"confidence must be in [0.5, 1], got {self.confidence}")
        if self.criterion is not None and (not isinstance(self.criterion, str) or not self.criterion):
            raise ValueError(f"criterion must be None or a non-empty string, got {self.criterion!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, one line of a snapshot file (``criterion`` only when set,
        so the overall pairs of a project without criteria write what they always did)."""
        criterion = {} if self.criterion is None else {"criterion": self.criterion}
        return {
            **criterion,
            "prompt_id": self.prompt_id,
            "context": [dict(message) for message in self.context],
            "chosen": self.chosen,
            "rejected": self.rejected,
            "margin": self.margin,
            "strength": self.strength,
            "tie": self.tie,
            "confidence": self.confidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreferencePair:
        """Inverse of ``to_dict``. Keys it does not know (a snapshot's
        ``label_id``) are ignored; a record without ``tie`` is a preference,
        one without ``confidence`` a certain one."""
        return cls(
            prompt_id=data["prompt_id"],
            context=tuple(data.get("context") or ()),
            chosen=data["chosen"],
            rejected=data["rejected"],
            margin=float(data.get("margin", 0.0)),
            strength=data.get("strength"),
            tie=bool(data.get("tie", False)),
            confidence=float(data.get("confidence", 1.0)),
            criterion=data.get("criterion"),
        )


def _checked_message(message: Message) -> dict[str, str]:
    role, content = message.get("role"), message.get("content")
    if role not in ROLES:
        raise ValueError(f"message role must be one of {ROLES}, got {role!r}")
    if not isinstance(content, str):
        raise ValueError(f"message content must be a string, got {type(content).__name__}")
    return {"role": role, "content": content}


def write_jsonl(records: Iterable[Mapping[str, Any]], handle: BinaryIO) -> str:
    """Write each record to the binary ``handle`` as one JSON line and return
    the sha256 hex digest of the bytes written: the content hash that names
    and verifies a frozen snapshot.

    Keys are sorted and text is written as UTF-8 rather than escaped, so the
    same records always give the same bytes and hash. Changing the format
    changes every hash, and snapshots written before would no longer verify.
    """
    digest = hashlib.sha256()
    for record in records:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        digest.update(line)
        handle.write(line)
    return digest.hexdigest()


def write_pairs_jsonl(pairs: Iterable[PreferencePair], path: str | Path) -> str:
    """Write the pairs to ``path`` with ``write_jsonl`` and return its hash."""
    with open(path, "wb") as handle:
        return write_jsonl((pair.to_dict() for pair in pairs), handle)


def read_pairs_jsonl(path: str | Path) -> list[PreferencePair]:
    with open(path, encoding="utf-8") as handle:
        return [PreferencePair.from_dict(json.loads(line)) for line in handle if line.strip()]


def format_conversation(tokenizer: Any, context: Sequence[Message], response: str) -> str:
    """Render ``context`` followed by the assistant ``response`` as one string.

    Uses the tokenizer's chat template when it has one, so a chat backbone sees
    the format it was trained on; otherwise a plain
    ``"User: ...\\n\\nAssistant: ..."`` rendering.
    """
    messages = [dict(message) for message in context]
    messages.append({"role": "assistant", "content": response})
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n\n".join(
        f"{_PLAIN_ROLE_NAMES[message['role']]}: {message['content']}" for message in messages
    )


def encode_scored_text(
    tokenizer: Any, context: Sequence[Message], response: str, max_length: int
) -> list[int]:
    """Token ids of the rendered conversation, at most ``max_length`` long.

    Too long texts are cut from the left: the oldest context goes first, and
    the final response, which is what is being scored, is kept (if it alone is
    longer than the budget, its end is kept). The tokenizer's own special
    tokens ([CLS] ... [SEP], or BOS) stay in place, because BERT-like models
    pool the reward from [CLS]. Nothing is ever dropped for being long.
    """
    return encode_scored_texts(tokenizer, [(context, response)], max_length)[0]


def encode_scored_texts(
    tokenizer: Any, items: Sequence[tuple[Sequence[Message], str]], max_length: int
) -> list[list[int]]:
    """``encode_scored_text`` for many items with one tokenizer call."""
    prefix, suffix = _special_affixes(tokenizer)
    texts = [format_conversation(tokenizer, context, response) for context, response in items]
    # verbose=False: a conversation longer than the model's maximum is expected here (it is
    # cut from the left below), so transformers' "longer than the specified maximum" warning
    # would only be noise in every worker's log.
    bodies = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    starts = {tokenizer.bos_token_id, tokenizer.cls_token_id} - {None}
    encoded = []
    for text, body in zip(texts, bodies):
        # A chat template may render BOS itself; then the tokenizer must not
        # add a second one, and that BOS is protected like one it added.
        head = [] if _starts_with_special_text(tokenizer, text) else list(prefix)
        if body and body[0] in starts:
            head, body = head + body[:1], body[1:]
        room = max_length - len(head) - len(suffix)
        if room < 1:
            raise ValueError(f"max_length={max_length} leaves no room next to special tokens")
        encoded.append(head + body[-room:] + list(suffix))
    return encoded


def _starts_with_special_text(tokenizer: Any, text: str) -> bool:
    marks = [tokenizer.bos_token, tokenizer.cls_token]
    return any(mark and text.startswith(mark) for mark in marks)


def _special_affixes(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (e.g. [CLS] / [SEP])."""
    bare = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError("could not locate the special tokens this tokenizer adds")


@dataclass(frozen=True)
class EncodedPair:
    """A pair after tokenisation; what batching and the trainer work on."""

    prompt_id: str
    chosen_ids: list[int]
    rejected_ids: list[int]
    margin: float
    strength: int | None
    tie: bool = False
    confidence: float = 1.0
    head: int = 0  # the column of the model's rewards this pair trains (model.head_index)

    @property
    def length(self) -> int:
        """Padded length this pair forces on its batch."""
        return max(len(self.chosen_ids), len(self.rejected_ids))


def pair_heads(pairs: Sequence[PreferencePair], heads: Mapping[str | None, int]) -> list[int]:
    """Each pair's reward column under ``heads`` (``pooling.head_index``); a criterion the model
    has no head for is a ValueError."""
    unknown = sorted({pair.criterion for pair in pairs if pair.criterion not in heads})
    if unknown:
        raise ValueError(f"pairs name criteria the model has no head for: {', '.join(unknown)}")
    return [heads[pair.criterion] for pair in pairs]


def encode_pairs(
    tokenizer: Any, pairs: Sequence[PreferencePair], max_length: int, heads: Mapping[str | None, int] | None = None
) -> list[EncodedPair]:
    """Tokenise every pair; ``heads`` (``model.head_index``) maps each pair's criterion to its
    reward column. Without it only overall pairs are allowed."""
    columns = pair_heads(pairs, heads if heads is not None else {None: 0})
    items = [(pair.context, pair.chosen) for pair in pairs]
    items += [(pair.context, pair.rejected) for pair in pairs]
    ids = encode_scored_texts(tokenizer, items, max_length)
    n = len(pairs)
    return [
        EncodedPair(
            pair.prompt_id, ids[i], ids[n + i], pair.margin, pair.strength, pair.tie, pair.confidence, columns[i],
        )
        for i, pair in enumerate(pairs)
    ]
