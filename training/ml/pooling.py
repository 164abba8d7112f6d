"""How a reward is read from a backbone's hidden states: the pooling, chosen per backbone.

Two shapes of reward model come out of ``model.load_reward_model``, and every
caller (trainer, scoring, evaluation, checkpoints) treats them alike, as
transformers' AutoModelForSequenceClassification with one label:
``model(input_ids=, attention_mask=).logits`` is (N, 1), ``save_pretrained``
writes a folder that loads back, ``config`` is the backbone's.

- ``"cls_pooler"``: transformers' own sequence classifier, unchanged (for BERT,
  [CLS] through the pooler). Checkpoints saved before pooling was a setting
  are of this shape and still load and score exactly as they did.
- ``"first_token"``, ``"mean"``, ``"last_token"``: a ``PooledRewardModel``,
  the bare backbone (AutoModel) + that pooling + dropout + Linear(hidden, 1).
  Its folder is the backbone's own ``save_pretrained`` output plus
  ``reward_head.safetensors`` (the linear layer) and ``reward_head.json``
  (the pooling), so the pooling a model was trained with is the one it is
  scored with, whoever loads it.

Per-criterion heads: a ``PooledRewardModel`` may carry one more linear output per
criterion (``criteria``, e.g. helpfulness and harmlessness) on the same pooled vector, so
one backbone pass gives every reward. Its ``logits`` are then (N, 1 + K): column 0 the
overall reward, column 1 + i criterion i; with no criteria they stay (N, 1), so every
caller that reads ``logits.squeeze(-1)`` gets (N,) rewards as before, or (N, 1 + K) rows.
``reward_head.json`` lists the criteria, ``reward_head.safetensors`` holds their weights as
``criteria.weight`` / ``criteria.bias`` beside the overall head's ``weight`` / ``bias``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers.modeling_outputs import SequenceClassifierOutput

from training.ml.config import POOLINGS

HEAD_CONFIG_FILE = "reward_head.json"
HEAD_WEIGHTS_FILE = "reward_head.safetensors"
# Written by checkpoint.save_checkpoint (not imported: checkpoint imports nothing heavy).
CHECKPOINT_METADATA_FILE = "reward_metadata.json"
HEAD_FORMAT_VERSION = 1
CRITERIA_PREFIX = "criteria."
POOLED = ("first_token", "mean", "last_token")

# model_type values of decoder-only families whose config says neither
# is_decoder nor a *ForCausalLM architecture (a bare base-model folder).
DECODER_MODEL_TYPES = frozenset(
    {"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma",
     "gemma2", "gemma3_text", "phi", "phi3", "opt", "falcon", "olmo", "olmo2", "smollm3", "bloom", "codegen"}
)
# sentence-transformers Pooling config flag -> our pooling. Its other modes
# (max, mean of sqrt length, weighted mean) have no counterpart here.
SENTENCE_TRANSFORMERS_MODES = {
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_cls_token": "first_token",
    "pooling_mode_lasttoken": "last_token",
}


def resolve_pooling(folder: str | os.PathLike, requested: str = "auto") -> str:
    """The pooling to load ``folder`` with: ``requested`` unless it is "auto".

    A folder that is a reward model already (it has ``reward_head.json``, or
    ``reward_metadata.json`` from a checkpoint saved before pooling was
    recorded: those are all cls_pooler) keeps its pooling, and asking for
    another is a ValueError: its head was trained on that pooling. A fresh
    backbone under "auto" gets, in order: the pooling its sentence-transformers
    config names (``modules.json`` -> the Pooling module's ``config.json``),
    cls_pooler when its config names a *ForSequenceClassification
    architecture (it brings a head), last_token for a decoder, else
    cls_pooler (an unknown encoder scores as it always did).
    Reads JSON files only.
    """
    if requested not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {requested!r}")
    folder = Path(folder)
    saved = saved_pooling(folder)
    if saved is not None:
        if requested not in ("auto", saved):
            raise ValueError(
                f"{folder} is a reward model trained with pooling {saved!r}; it cannot be loaded as {requested!r} "
                "(train from the backbone instead)"
            )
        return saved
    if requested != "auto":
        return requested
    from_sentence_transformers = _sentence_transformers_pooling(folder)
    if from_sentence_transformers is not None:
        return from_sentence_transformers
    config = _read_json(folder / "config.json") or {}
    architectures = config.get("architectures") or []
    if any(name.endswith("ForSequenceClassification") for name in architectures):
        return "cls_pooler"
    if (
        config.get("is_decoder")
        or any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures)
        or config.get("model_type") in DECODER_MODEL_TYPES
    ):
        return "last_token"
    return "cls_pooler"


def saved_pooling(folder: str | os.PathLike) -> str | None:
    """The pooling of a reward-model folder, None for a backbone that is not one yet."""
    folder = Path(folder)
    head = _read_json(folder / HEAD_CONFIG_FILE)
    if head is not None:
        pooling = head.get("pooling")
        if pooling not in POOLED:
            raise ValueError(f"{folder / HEAD_CONFIG_FILE} names an unknown pooling {pooling!r}")
        return pooling
    if (folder / CHECKPOINT_METADATA_FILE).is_file():
        return "cls_pooler"
    return None


def head_index(model: torch.nn.Module) -> dict[str | None, int]:
    """Which column of a reward model's rewards each head is: None (overall) 0, criterion i at 1 + i."""
    return {None: 0, **{key: 1 + i for i, key in enumerate(getattr(model, "criteria", ()))}}


def saved_criteria(folder: str | os.PathLike) -> tuple[str, ...]:
    """The criteria whose heads a reward-model folder holds (none for a backbone or an older model)."""
    head = _read_json(Path(folder) / HEAD_CONFIG_FILE) or {}
    return tuple(head.get("criteria") or ())


def _sentence_transformers_pooling(folder: Path) -> str | None:
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list):
        return None
    for module in modules:
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
            settings = _read_json(folder / module.get("path", "") / "config.json") or {}
            chosen = [pooling for flag, pooling in SENTENCE_TRANSFORMERS_MODES.items() if settings.get(flag)]
            # Several modes at once concatenate embeddings; one head reads one.
            return chosen[0] if len(chosen) == 1 else None
    return None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(N, T, H) hidden states and (N, T) mask -> (N, H), one vector per text.

    Works for right and left padding alike: first and last token are the
    first and last real ones, and the mean is over real tokens only, so a
    text's vector does not depend on how much padding its batch added.
    """
    real = attention_mask.bool()  # (N, T)
    if pooling == "mean":
        weights = real.to(hidden.dtype).unsqueeze(-1)  # (N, T, 1)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    positions = torch.arange(hidden.shape[1], device=hidden.device).expand_as(real)  # (N, T)
    if pooling == "first_token":
        index = torch.where(real, positions, hidden.shape[1]).min(dim=1).values.clamp(max=hidden.shape[1] - 1)
    elif pooling == "last_token":
        index = torch.where(real, positions, -1).max(dim=1).values.clamp(min=0)
    else:
        raise ValueError(f"pool() takes one of {', '.join(POOLED)}, got {pooling!r}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]  # (N, H)


class PooledRewardModel(torch.nn.Module):
    """Backbone (AutoModel) + pooling of its top layer + dropout + Linear(hidden, 1).

    Called like a sequence classifier: ``forward(input_ids, attention_mask)``
    returns a ``SequenceClassifierOutput`` whose ``logits`` are the (N, 1)
    rewards. The head starts as BERT's classifier does (normal, std
    ``initializer_range``; zero bias), drawn from torch's global RNG.
    """

    def __init__(self, backbone: Any, pooling: str, criteria: tuple[str, ...] = ()):
        super().__init__()
        if pooling not in POOLED:
            raise ValueError(f"PooledRewardModel takes one of {', '.join(POOLED)}, got {pooling!r}")
        self.backbone = backbone
        self.pooling = pooling
        config = backbone.config
        probability = getattr(config, "classifier_dropout", None)
        if probability is None:
            probability = getattr(config, "hidden_dropout_prob", 0.0)
        self.dropout = torch.nn.Dropout(probability)
        self.score = torch.nn.Linear(config.hidden_size, 1)
        torch.nn.init.normal_(self.score.weight, std=getattr(config, "initializer_range", 0.02))
        torch.nn.init.zeros_(self.score.bias)
        self.criteria = tuple(criteria)
        self.criteria_score = None
        if self.criteria:
            # Drawn after the overall head, so adding criteria leaves its initialisation as it was.
            self.criteria_score = torch.nn.Linear(config.hidden_size, len(self.criteria))
            torch.nn.init.normal_(self.criteria_score.weight, std=getattr(config, "initializer_range", 0.02))
            torch.nn.init.zeros_(self.criteria_score.bias)
        # BERT's pooler (a dense layer on [CLS] for next-sentence prediction)
        # reaches no reward here: frozen, it takes no optimizer state, and
        # DistributedDataParallel does not wait for gradients it never gets.
        pooler = getattr(backbone, "pooler", None)
        if isinstance(pooler, torch.nn.Module):
            pooler.requires_grad_(False)
        # Training runs whole texts; a decoder's key/value cache would only hold memory.
        if getattr(config, "use_cache", False):
            config.use_cache = False

    @property
    def config(self) -> Any:
        return self.backbone.config

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **backbone_inputs: Any
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, **backbone_inputs
        ).last_hidden_state  # (N, T, H)
        pooled = pool(hidden, attention_mask, self.pooling)  # (N, H)
        return SequenceClassifierOutput(logits=self.rewards_of(pooled))  # (N, 1 + K)

    def rewards_of(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, H) pooled vectors -> (N, 1 + K) rewards: overall, then one per criterion."""
        dropped = self.dropout(pooled)
        rewards = self.score(dropped)  # (N, 1)
        if self.criteria_score is None:
            return rewards
        return torch.cat([rewards, self.criteria_score(dropped)], dim=1)  # (N, 1 + K)

    def save_pretrained(self, directory: str | os.PathLike, **kwargs: Any) -> None:
        """The backbone's own files, plus the head's weights and its pooling."""
        directory = Path(directory)
        self.backbone.save_pretrained(directory, **kwargs)
        weights = {name: tensor.detach().contiguous().cpu() for name, tensor in self.score.state_dict().items()}
        if self.criteria_score is not None:
            weights.update(
                (CRITERIA_PREFIX + name, tensor.detach().contiguous().cpu())
                for name, tensor in self.criteria_score.state_dict().items()
            )
        save_file(weights, directory / HEAD_WEIGHTS_FILE)
        head = {"format_version": HEAD_FORMAT_VERSION, "pooling": self.pooling, "hidden_size": self.score.in_features}
        if self.criteria:
            head["criteria"] = list(self.criteria)
        (directory / HEAD_CONFIG_FILE).write_text(json.dumps(head, indent=2) + "\n", encoding="utf-8")

    def load_head(self, directory: str | os.PathLike) -> None:
        """Load the heads' weights saved by ``save_pretrained``.

        The overall head is loaded strictly (every tensor, right shapes). A criterion head
        takes the saved weights of the criterion of the same name; one the folder lacks
        keeps its fresh initialisation (a criterion added since), and saved criteria this
        model does not carry are left out (a criterion removed).
        """
        directory = Path(directory)
        weights = load_file(directory / HEAD_WEIGHTS_FILE)
        self.score.load_state_dict({name: weights[name] for name in ("weight", "bias")})
        saved = saved_criteria(directory)
        if self.criteria_score is None or not saved:
            return
        saved_weight, saved_bias = weights[CRITERIA_PREFIX + "weight"], weights[CRITERIA_PREFIX + "bias"]
        with torch.no_grad():
            for row, key in enumerate(self.criteria):
                if key in saved:
                    self.criteria_score.weight[row] = saved_weight[saved.index(key)]
                    self.criteria_score.bias[row] = saved_bias[saved.index(key)]

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.backbone.gradient_checkpointing_enable(**kwargs)

    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.backbone, "is_gradient_checkpointing", False))

    def resize_token_embeddings(self, size: int) -> Any:
        return self.backbone.resize_token_embeddings(size)
