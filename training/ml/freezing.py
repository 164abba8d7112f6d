"""Keeping the bottom of the backbone as pretrained (``TrainConfig.frozen_layers``).

Counted from the input up, the way the text flows: 1 freezes the embeddings
(token, position and type tables and their LayerNorm), 2 also the first
transformer block, and so on. A frozen part keeps its pretrained weights,
takes no optimizer state and, because nothing below it needs a gradient,
costs no backward pass: freezing the embeddings and the first of MiniLM-L6's
six blocks skips about a sixth of a training step on CPU (docs/benchmarks.md,
"The reward recipe").
"""

from __future__ import annotations

from typing import Any

import torch


def freeze_lower_layers(model: torch.nn.Module, count: int) -> None:
    """Stop the embeddings and the lowest ``count - 1`` transformer blocks of
    ``model``'s backbone from training (``count`` 0 changes nothing).

    Raises ValueError when ``count`` is more than the backbone has (its
    embeddings plus every block), or when the backbone's block stack cannot
    be found, rather than training something else than was asked.
    """
    if count < 0:
        raise ValueError(f"frozen_layers must be >= 0, got {count}")
    if count == 0:
        return
    backbone = _backbone(model)
    embeddings, blocks = _bottom_up(backbone)
    if count > 1 + len(blocks):
        raise ValueError(
            f"frozen_layers {count} is more than the backbone has: its embeddings and "
            f"{len(blocks)} transformer blocks ({1 + len(blocks)} at most)"
        )
    for part in [*embeddings, *blocks[: count - 1]]:
        part.requires_grad_(False)


def _backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer under the reward head: PooledRewardModel's ``backbone``,
    or a transformers sequence classifier's ``base_model``."""
    backbone = getattr(model, "backbone", None)
    if isinstance(backbone, torch.nn.Module):
        return backbone
    base = getattr(model, "base_model", None)
    if isinstance(base, torch.nn.Module):
        return base
    raise ValueError(f"frozen_layers: cannot find the backbone of a {type(model).__name__}")


def _bottom_up(backbone: Any) -> tuple[list[torch.nn.Module], list[torch.nn.Module]]:
    """(the embedding parts, the transformer blocks in order) of a transformers base model.

    The blocks are the first ModuleList as long as the config's layer count
    (BERT's ``encoder.layer``, GPT-2's ``h``, Llama's ``layers``); the
    embeddings are the base model's children registered before the child that
    holds them (BERT's ``embeddings``; GPT-2's ``wte`` and ``wpe``; Llama's
    ``embed_tokens``), which is the order every transformers model runs them in.
    """
    layer_count = getattr(backbone.config, "num_hidden_layers", None)
    path = next(
        (
            name
            for name, module in backbone.named_modules()
            if name and isinstance(module, torch.nn.ModuleList) and len(module) == layer_count
        ),
        None,
    )
    if path is None:
        raise ValueError(
            f"frozen_layers: cannot find the {layer_count} transformer blocks of a "
            f"{type(backbone).__name__}; set REWARD_FROZEN_LAYERS=0 to train it whole"
        )
    holder = path.split(".")[0]
    embeddings = []
    for name, child in backbone.named_children():
        if name == holder:
            break
        embeddings.append(child)
    return embeddings, list(backbone.get_submodule(path))
