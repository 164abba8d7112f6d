"""Batch order and dynamic padding for reward-model training and scoring."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch

from training.ml.data import EncodedPair

# Pairs per mega-chunk = batch_size * this; sorting by length inside a chunk
# cuts padding while the chunk boundaries keep batches random. 50 is HF's
# LengthGroupedSampler default.
MEGA_CHUNK_BATCHES = 50

# What one more forward pass costs, in padded tokens, when ``plan_passes``
# weighs it against the padding it saves. Measured for MiniLM-L6 on 2 CPU
# cores, batch 8 of HH-RLHF at max_length 256: whole passes trained fastest
# at 64 to 128; with packed BERT (only attention goes by passes) anything from
# 16 to 256 was within 2 %.
PASS_COST_TOKENS = 128


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    pad_token_id: int,
    padding_side: str = "right",
    *,
    multiple_of: int | None = None,
    max_width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence of this batch, not to max_length.

    With ``multiple_of`` the width is rounded up to a multiple of it, but not
    beyond ``max_width`` (nor below the longest sequence), so that a run sees
    few distinct shapes. Returns input_ids and attention_mask, both (N, T) int64.
    """
    longest = max(len(sequence) for sequence in sequences)
    width = longest
    if multiple_of:
        width = -(-longest // multiple_of) * multiple_of
        if max_width is not None:
            width = max(longest, min(width, max_width))
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        span = slice(width - len(sequence), width) if padding_side == "left" else slice(0, len(sequence))
        input_ids[row, span] = torch.tensor(sequence, dtype=torch.long)
        attention_mask[row, span] = 1
    return input_ids, attention_mask


def collate_pairs(
    batch: Sequence[EncodedPair],
    pad_token_id: int,
    padding_side: str = "right",
    *,
    multiple_of: int | None = None,
    max_width: int | None = None,
) -> dict[str, torch.Tensor]:
    """Stack a batch of B pairs so ONE forward pass scores chosen and rejected.

    Returns input_ids (2B, T) and attention_mask (2B, T), rows 0..B-1 chosen
    and rows B..2B-1 rejected, margin (B,) float32, tie (B,) bool,
    confidence (B,) float32 and head (B,) int64 (the reward column each pair trains).
    Padding as in ``pad_sequences``.
    """
    sequences = [pair.chosen_ids for pair in batch] + [pair.rejected_ids for pair in batch]
    input_ids, attention_mask = pad_sequences(
        sequences, pad_token_id, padding_side, multiple_of=multiple_of, max_width=max_width
    )
    margin = torch.tensor([pair.margin for pair in batch], dtype=torch.float32)
    tie = torch.tensor([pair.tie for pair in batch], dtype=torch.bool)
    confidence = torch.tensor([pair.confidence for pair in batch], dtype=torch.float32)
    head = torch.tensor([pair.head for pair in batch], dtype=torch.int64)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "margin": margin,
        "tie": tie,
        "confidence": confidence,
        "head": head,
    }


def batch_order(
    pairs: Sequence[EncodedPair],
    batch_size: int,
    *,
    seed: int,
    group_by_length: bool,
    batches_per_step: int = 1,
) -> list[list[int]]:
    """Indices into ``pairs``, cut into batches of at most ``batch_size``.

    Prompts are shuffled as units, so one prompt's pairs stay adjacent (they
    share context, hence length) and only split where a batch boundary falls.
    With ``group_by_length`` the prompts inside each mega-chunk are sorted
    longest first, as HF's LengthGroupedSampler does, and cut into batches.
    Unlike HF's sampler, the optimizer steps (runs of ``batches_per_step``
    batches: gradient accumulation x processes) are then shuffled, so an
    epoch does not run from long to short pairs (on a small data set one
    chunk is the whole epoch, and the decaying learning rate would meet only
    the short ones); the step holding the longest batch goes first, that
    batch leading, so an out-of-memory failure shows at step 1 rather than
    hours in, and a short last step stays last. Shuffling whole steps keeps
    the pairs of each step those of a run with ``batches_per_step`` times
    larger batches. Deterministic for a given seed.
    """
    rng = random.Random(seed)
    units: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        units.setdefault(pair.prompt_id, []).append(index)
    order = list(units.values())
    rng.shuffle(order)

    if group_by_length:
        def unit_length(unit: list[int]) -> int:
            return max(pairs[index].length for index in unit)

        chunks, chunk, chunk_pairs = [], [], 0
        for unit in order:
            chunk.append(unit)
            chunk_pairs += len(unit)
            if chunk_pairs >= batch_size * MEGA_CHUNK_BATCHES:
                chunks.append(chunk)
                chunk, chunk_pairs = [], 0
        if chunk:
            chunks.append(chunk)
        chunks = [sorted(chunk, key=unit_length, reverse=True) for chunk in chunks]
        order = [unit for chunk in chunks for unit in chunk]

    flat = [index for unit in order for index in unit]
    batches = [flat[start : start + batch_size] for start in range(0, len(flat), batch_size)]
    if not group_by_length:
        return batches

    def width(batch: list[int]) -> int:
        return max(pairs[index].length for index in batch)

    steps = [batches[start : start + batches_per_step] for start in range(0, len(batches), batches_per_step)]
    short_last = [steps.pop()] if len(steps[-1]) < batches_per_step else []
    rng.shuffle(steps)
    steps += short_last
    first = max(range(len(steps)), key=lambda i: max(width(batch) for batch in steps[i]))
    steps[0], steps[first] = steps[first], steps[0]
    lead = max(range(len(steps[0])), key=lambda i: width(steps[0][i]))
    steps[0][0], steps[0][lead] = steps[0][lead], steps[0][0]
    return [batch for step in steps for batch in step]


def plan_passes(lengths: Sequence[int], pass_cost_tokens: int = PASS_COST_TOKENS) -> list[tuple[list[int], int]]:
    """Split a batch's rows into forward passes that pad less than one pass would.

    ``lengths`` are the rows' token counts. Rows are sorted longest first and
    cut into runs; each run becomes one pass, (row indices, width = its
    longest row). The cut minimises padded tokens (rows x width, summed over
    passes) + ``pass_cost_tokens`` per pass, exactly (dynamic programming over
    the sorted rows; fine for the tens of rows of a batch). The passes cover
    every row once; equal lengths never need a second pass.
    """
    order = sorted(range(len(lengths)), key=lambda row: (-lengths[row], row))
    n = len(order)
    # best[j]: cheapest cost of the first j sorted rows; cut[j]: where its last pass starts.
    best, cut = [0.0] + [math.inf] * n, [0] * (n + 1)
    for j in range(1, n + 1):
        for i in range(j):
            cost = best[i] + (j - i) * lengths[order[i]] + pass_cost_tokens
            if cost < best[j]:
                best[j], cut[j] = cost, i
    passes, j = [], n
    while j > 0:
        i = cut[j]
        passes.append((order[i:j], lengths[order[i]]))
        j = i
    return passes[::-1]
