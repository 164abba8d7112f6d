"""Scoring responses with a trained reward model."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch

from training.ml.batching import pad_sequences
from training.ml.data import Message, encode_scored_texts

# On CUDA, batch widths are rounded up to a multiple of this: sorted by
# length, nearly every batch would otherwise have a new shape, and each new
# shape costs kernel planning (see TrainConfig.pad_to_multiple_of).
SHAPE_MULTIPLE = 16


def score_responses(
    model: Any,
    tokenizer: Any,
    items: Sequence[tuple[Sequence[Message], str]],
    *,
    max_length: int,
    batch_size: int = 32,
    device: str | torch.device | None = None,
) -> list[float]:
    """Reward of each (context, response), in the order of ``items``.

    Encodes exactly as training does (left truncation to ``max_length``).
    Items are scored shortest first so each batch pads little; the results
    are put back in input order. ``device`` defaults to the model's. The
    model is run in eval mode without gradients and put back in the mode it
    was in.
    """
    if not items:
        return []
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    sequences = encode_scored_texts(tokenizer, items, max_length)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    scores = [0.0] * len(sequences)
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
                input_ids, attention_mask = pad_sequences(
                    [sequences[i] for i in chunk],
                    tokenizer.pad_token_id,
                    tokenizer.padding_side,
                    multiple_of=SHAPE_MULTIPLE if device.type == "cuda" else None,
                    max_width=max_length,
                )  # (N, T) each
                logits = model(
                    input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)
                ).logits  # (N, 1)
                for i, value in zip(chunk, logits.squeeze(-1).float().tolist()):
                    scores[i] = value
    finally:
        model.train(was_training)
    return scores
