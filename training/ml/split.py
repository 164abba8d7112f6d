"""Train/eval split by prompt, so no prompt is both learned and graded."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")  # anything with a ``prompt_id`` attribute, e.g. PreferencePair


def split_by_prompt(pairs: Sequence[T], eval_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Return (train, eval), each keeping the input order.

    A prompt goes to eval when sha256(seed, prompt_id) maps below
    ``eval_fraction``. The decision depends on nothing but the prompt and the
    seed, so a prompt stays on its side as the dataset grows between
    snapshots; eval scores of successive runs are then not contaminated by
    prompts an earlier run trained on. With 0 < eval_fraction and at least two
    distinct prompts, neither half is empty (the nearest prompt is moved
    across when the hash leaves one side bare). eval_fraction == 0 puts
    everything in train.
    """
    if not 0 <= eval_fraction < 1:
        raise ValueError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    position = {}
    for pair in pairs:
        if pair.prompt_id not in position:
            digest = hashlib.sha256(f"{seed}\0{pair.prompt_id}".encode()).digest()
            position[pair.prompt_id] = int.from_bytes(digest[:8], "big") / 2**64
    in_eval = {prompt_id for prompt_id, u in position.items() if u < eval_fraction}
    if eval_fraction > 0 and len(position) >= 2:
        if not in_eval:
            in_eval = {min(position, key=position.get)}
        elif len(in_eval) == len(position):
            in_eval.remove(max(position, key=position.get))
    train = [pair for pair in pairs if pair.prompt_id not in in_eval]
    evaluation = [pair for pair in pairs if pair.prompt_id in in_eval]
    return train, evaluation
