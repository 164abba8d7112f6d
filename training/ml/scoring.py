"""Scoring responses with a trained reward model."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from training.ml.batching import pad_sequences, plan_passes
from training.ml.data import Message, encode_scored_texts
from training.ml.packed import packed_rewards, supports_packing

# On CUDA, batch widths are rounded up to a multiple of this: sorted by
# length, nearly every batch would otherwise have a new shape, and each new
# shape costs kernel planning (see TrainConfig.pad_to_multiple_of).
SHAPE_MULTIPLE = 16


def score_responses(
    model: Any, tokenizer: Any, items: Sequence[tuple[Sequence[Message], str]], **options: Any
) -> list[float]:
    """Overall reward of each (context, response), in the order of ``items``; ``options``
    (``max_length``, ``batch_size``, ``device``, ``packed``) as ``score_response_heads`` takes them."""
    return [row[0] for row in score_response_heads(model, tokenizer, items, **options)]


def score_response_heads(
    model: Any,
    tokenizer: Any,
    items: Sequence[tuple[Sequence[Message], str]],
    *,
    max_length: int,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    packed: bool | None = None,
) -> list[tuple[float, ...]]:
    """Every reward of each (context, response), in the order of ``items``: the overall
    reward, then one per criterion head (``model.head_index``); one backbone pass each.

    Encodes exactly as training does (left truncation to ``max_length``).
    Items are scored shortest first so each batch pads little; the results
    are put back in input order. ``device`` defaults to the model's. The
    model is run in eval mode without gradients and put back in the mode it
    was in; on CUDA under bf16 autocast where the GPU has it.

    ``packed``: run a BERT reward model through ``packed.packed_rewards``,
    as the trainer does on CPU (its linear layers over the real tokens only,
    and with [CLS] pooling the top layer for [CLS] alone). ``None`` packs
    where the trainer packs: on CPU, when ``packed.supports_packing``. True
    for a model that cannot be packed is a ValueError. The rewards are those
    of padded passes up to float rounding.
    """
    if not items:
        return []
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    can_pack = supports_packing(model, padding_side=tokenizer.padding_side)
    if packed is None:
        packed = can_pack and device.type == "cpu"
    elif packed and not can_pack:
        raise ValueError(f"{type(model).__name__} cannot be scored packed (see packed.supports_packing)")
    sequences = encode_scored_texts(tokenizer, items, max_length)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    scores: list[tuple[float, ...]] = [()] * len(sequences)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda" and torch.cuda.is_bf16_supported()
        else contextlib.nullcontext()
    )
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = [sequences[i] for i in chunk]
                input_ids, attention_mask = pad_sequences(
                    batch,
                    tokenizer.pad_token_id,
                    tokenizer.padding_side,
                    multiple_of=SHAPE_MULTIPLE if device.type == "cuda" and not packed else None,
                    max_width=max_length,
                )  # (N, T) each
                input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
                if packed:
                    # Sorted by length, a batch's texts are alike and the plan is
                    # mostly one pass; the padding it still has costs attention only.
                    rewards = packed_rewards(
                        model, input_ids, attention_mask, plan_passes([len(sequence) for sequence in batch])
                    )  # (N,)
                else:
                    rewards = model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)  # (N,)
                rewards = rewards.float()
                if rewards.dim() == 1:
                    rewards = rewards.unsqueeze(1)  # (N, 1): the overall head only
                for i, row in zip(chunk, rewards.tolist()):
                    scores[i] = tuple(row)
    finally:
        model.train(was_training)
    return scores
