"""Typed configuration for one reward-model training run.

Importing this module is cheap (no torch): the web process builds and stores
configs without paying for the ML stack.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# How the reward head reads a text's hidden states (TrainConfig.pooling).
# "cls_pooler": transformers' own AutoModelForSequenceClassification head -- for
#   BERT, the [CLS] token through BERT's pooler (dense + tanh), then a linear
#   layer; what every checkpoint saved before this setting existed uses.
# "first_token": the top layer's first token (BERT's [CLS]), no pooler, then a
#   linear layer.
# "mean": the mean of the top layer over the real (non-pad) tokens, then a
#   linear layer; what sentence-embedding models (MiniLM-L6) were trained to give.
# "last_token": the top layer at the last real token, then a linear layer; the
#   only token a decoder's causal attention lets see the whole text.
# "auto": chosen per folder by ``pooling.resolve_pooling``.
POOLINGS = ("auto", "cls_pooler", "first_token", "mean", "last_token")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run computes.

    The whole config is stored next to the checkpoint (``to_dict``), so two
    runs with equal configs, equal data and equal code produce equal weights
    on the same device.
    """

    # Local folder readable by AutoModelForSequenceClassification/AutoTokenizer.
    # Never a hub id: workers run offline.
    backbone_path: str
    # Tokens per scored text (context + response). Longer texts lose their
    # oldest context tokens, never the final response (see data.encode_scored_text).
    max_length: int = 256
    # Preference pairs per micro-batch; its 2 * batch_size texts are scored together
    # (one forward pass on CUDA; packed or in length groups on CPU).
    batch_size: int = 8
    # Micro-batches per optimizer step, so pairs per step = batch_size * this.
    gradient_accumulation_steps: int = 1
    # Peak AdamW learning rate, reached after warmup, then linear decay to 0.
    learning_rate: float = 5e-5
    # Decoupled AdamW weight decay; biases and LayerNorm weights are exempt.
    weight_decay: float = 0.0
    num_epochs: int = 1
    # Fraction of all optimizer steps spent warming the learning rate up from 0.
    warmup_ratio: float = 0.1
    # Seeds head initialisation, dropout and batch order.
    seed: int = 0
    # TRL's reward centering (Eisenstein et al. 2023): adds
    # coeff * mean((r_chosen + r_rejected)^2) so rewards stay near zero. None = off.
    center_rewards_coefficient: float | None = None
    # Llama-2 style margin: subtract each pair's margin (from the annotator's
    # preference strength) inside the sigmoid, so strong preferences must be
    # separated by more.
    use_margin: bool = True
    # "auto" -> cuda when available, else cpu; or any torch device string.
    device: str = "auto"
    # bf16 autocast. "auto" = on when the CUDA device supports it; True = on
    # (CUDA only); False = off. Never used on CPU, where it is slower.
    bf16: str | bool = "auto"
    # Trade compute for activation memory; only applied on CUDA.
    gradient_checkpointing: bool = False
    # Batch pairs of similar length together (less padding), like HF's
    # LengthGroupedSampler. Off by default: length-alike batches learned
    # slower (HH-RLHF, MiniLM, 1,024 pairs, one epoch, three seeds: mean dev
    # accuracy 0.591 against 0.608, dev loss 0.670 against 0.666), and on CPU
    # the trainer already pads little without them (packed BERT and
    # batching.plan_passes), so they bought only 3 % more pairs/s there.
    group_by_length: bool = False
    # On CUDA, round each batch's width up to a multiple of this (capped at
    # max_length). Every new (batch, width) shape costs kernel planning
    # (cuDNN attention: ~0.1 s each), and length-grouped batches would
    # otherwise nearly all have distinct widths. None = pad to the longest
    # text only, which is also what CPU always does.
    pad_to_multiple_of: int | None = 16
    # Gradient-norm clipping per optimizer step; None = no clipping.
    max_grad_norm: float | None = 1.0
    # Dropout makes the chosen and rejected scores of a pair noisy in
    # different ways; TRL's RewardConfig turns it off by default too.
    disable_dropout: bool = True
    # How the reward is read from the backbone's hidden states; see POOLINGS.
    # "auto" suits the backbone: a checkpoint keeps the pooling it was trained
    # with; a sentence-transformers folder gets the pooling it was trained
    # with (MiniLM-L6: mean); a decoder gets last_token; any other encoder
    # gets cls_pooler, as before this setting existed. The trainer stores the
    # resolved value with the checkpoint.
    pooling: str = "auto"
    # One extra reward head per key (a project's rating criteria, e.g. "helpfulness"), on the
    # shared backbone beside the overall head; pairs name their head (PreferencePair.criterion).
    # Needs a pooled head (not cls_pooler): see pooling.PooledRewardModel.
    criteria: tuple[str, ...] = ()
    # How much of the backbone keeps its pretrained weights, from the input up: 0 trains it
    # all, 1 freezes the embeddings, 2 also the first transformer block, and so on
    # (training.ml.freezing). Frozen parts cost no backward pass. 2 by measurement on
    # HH-RLHF with MiniLM-L6 (5 seeds, paired, docs/benchmarks.md "The reward recipe"):
    # dev accuracy and loss level with training it all, a step about a sixth faster on CPU.
    frozen_layers: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "criteria", tuple(self.criteria))  # a list from JSON
        if any(not isinstance(key, str) or not key for key in self.criteria) or len(set(self.criteria)) != len(
            self.criteria
        ):
            raise ValueError(f"criteria must be distinct non-empty names, got {list(self.criteria)!r}")
        if not self.backbone_path:
            raise ValueError("backbone_path must name a local model folder")
        for name in ("batch_size", "gradient_accumulation_steps", "num_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.frozen_layers < 0:
            raise ValueError(f"frozen_layers must be >= 0, got {self.frozen_layers}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be >= 8 tokens, got {self.max_length}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.center_rewards_coefficient is not None and self.center_rewards_coefficient < 0:
            raise ValueError("center_rewards_coefficient must be >= 0 or None")
        if self.bf16 not in ("auto", True, False):
            raise ValueError(f'bf16 must be "auto", True or False, got {self.bf16!r}')
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ValueError("pad_to_multiple_of must be >= 1 or None")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be > 0 or None")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {self.pooling!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``. Unknown keys are an error, not ignored:
        a silently dropped setting would train something else than was asked."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_saved(cls, data: dict[str, Any]) -> TrainConfig:
        """The config stored with an existing checkpoint, for scoring with it.

        Tolerant where ``from_dict`` is strict: a checkpoint saved by an older (or
        newer) version of this code may name fields that no longer exist, and
        missing ones take today's defaults. Scoring reads only the tokenisation
        settings, which keep their names, so an old champion keeps serving.
        """
        known = {field.name for field in dataclasses.fields(cls)}
        saved = {key: value for key, value in data.items() if key in known}
        # Every checkpoint saved before ``pooling`` existed read [CLS] through the pooler.
        saved.setdefault("pooling", "cls_pooler")
        # ... and trained its whole backbone.
        saved.setdefault("frozen_layers", 0)
        # The checkpoint itself holds the weights; the backbone it started from is history.
        saved["backbone_path"] = saved.get("backbone_path") or "(saved checkpoint)"
        return cls(**saved)
