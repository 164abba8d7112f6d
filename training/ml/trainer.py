"""The reward-model training loop: Bradley-Terry loss over preference pairs."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from training.ml.batching import batch_order, collate_pairs, plan_passes
from training.ml.config import TrainConfig
from training.ml.data import EncodedPair, PreferencePair, encode_pairs
from training.ml.embeddings import compact_input_embeddings
from training.ml.freezing import freeze_lower_layers
from training.ml.loss import bradley_terry_loss
from training.ml.memory import retained_heap
from training.ml.packed import packed_rewards, supports_packing
from training.ml.model import load_reward_model, pooling_of, resolve_device
from training.ml.pooling import head_index


class TrainingDiverged(RuntimeError):
    """The loss stopped being a number (NaN or infinite): nothing after that step can be trusted."""


@dataclass
class TrainProgress:
    """Reported after every optimizer step."""

    step: int  # optimizer steps done, 1..total_steps
    total_steps: int
    epoch: float  # fractional epochs done
    loss: float  # mean loss over the pairs of this step
    elapsed_s: float
    eta_s: float  # seconds left, extrapolated from the mean step time so far


@dataclass
class TrainResult:
    model: Any  # the trained reward model (see model.load_reward_model), in eval mode
    tokenizer: Any
    # The pooling it was trained with, "auto" resolved (store it with the checkpoint's config).
    pooling: str = "cls_pooler"
    history: list[dict] = field(default_factory=list)  # one JSON-ready dict per optimizer step
    train_pairs: int = 0
    seconds: float = 0.0  # the training loop only, not model loading or tokenisation
    pairs_per_second: float = 0.0  # pairs seen (all epochs) per second of the loop


def train_reward_model(
    pairs: Sequence[PreferencePair],
    config: TrainConfig,
    *,
    init_path: str | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Fit a scalar reward so that r(chosen) > r(rejected) for each pair,
    and r(a) = r(b) for each tie pair.

    Starts from ``init_path`` (a previous checkpoint, to warm-start) when
    given, else from ``config.backbone_path``. AdamW with linear warmup then
    linear decay to zero. Deterministic for a given config and data on a given
    device. ``progress`` is called synchronously after every optimizer step,
    so a slow callback slows training; throttle writes on the caller's side.
    One process, one device; ``training.ml.distributed`` runs the same loop on
    several.
    """
    if not pairs:
        raise ValueError("cannot train a reward model on zero preference pairs")
    device = resolve_device(config.device)
    model, tokenizer = prepare_model(config, device, init_path=init_path)
    encoded = encode_pairs(tokenizer, pairs, config.max_length, head_index(model))
    history, seconds = run_training_loop(model, tokenizer, encoded, config, device, progress=progress)
    model.eval()
    return TrainResult(
        model=model,
        tokenizer=tokenizer,
        history=history,
        train_pairs=len(pairs),
        seconds=seconds,
        pairs_per_second=len(pairs) * config.num_epochs / seconds if seconds > 0 else 0.0,
        pooling=pooling_of(model),
    )


def prepare_model(
    config: TrainConfig, device: torch.device, *, init_path: str | None = None
) -> tuple[Any, Any]:
    """The model to train and its tokenizer, on ``device``.

    Seeds torch's RNG with ``config.seed`` first, so every process that calls
    this with the same config starts from the same scalar head.
    """
    torch.manual_seed(config.seed)  # the new scalar head and dropout draw from this
    model, tokenizer = load_reward_model(
        init_path or config.backbone_path, device, pooling=config.pooling, criteria=config.criteria
    )
    if config.disable_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            # transformers 4's SDPA attention reads this float, not its Dropout module.
            if isinstance(getattr(module, "dropout_prob", None), float):
                module.dropout_prob = 0.0
    freeze_lower_layers(model, config.frozen_layers)
    if config.gradient_checkpointing and device.type == "cuda":
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer


def run_training_loop(
    model: torch.nn.Module,
    tokenizer: Any,
    encoded: Sequence[EncodedPair],
    config: TrainConfig,
    device: torch.device,
    *,
    rank: int = 0,
    world_size: int = 1,
    progress: Callable[[TrainProgress], None] | None = None,
) -> tuple[list[dict], float]:
    """Train ``model`` in place on ``encoded``; return (history, loop seconds).

    Every process computes the same seeded batch order over all of
    ``encoded``. An optimizer step takes the next ``world_size *
    gradient_accumulation_steps`` batches, and process ``rank`` runs every
    ``world_size``-th of them (batch i on rank i % world_size), so one
    prompt's pairs are split across processes only where a batch boundary
    falls, as in one process. With ``world_size`` > 1 the default process
    group must be up; the loop wraps the model in DistributedDataParallel
    (which averages gradients over ranks) itself, and the step loss in
    ``history`` and ``progress`` is then the mean over the pairs of all ranks. The
    gradient of a step is the mean over its pairs whatever the number of
    processes, so 2 processes with batch B step like 1 process with batch B
    and 2 accumulation steps.

    The word embedding trains only the rows of the ids in ``encoded``
    (``embeddings.compact_input_embeddings``): the same model, without a
    dense update of every row at every step.
    """
    token_ids = {token for pair in encoded for token in (*pair.chosen_ids, *pair.rejected_ids)}
    if tokenizer.pad_token_id is not None:
        token_ids.add(tokenizer.pad_token_id)  # whole passes embed the padding too
    with compact_input_embeddings(model, token_ids, weight_decay=config.weight_decay), retained_heap():
        return _optimise(model, tokenizer, encoded, config, device, rank=rank, world_size=world_size, progress=progress)


def _optimise(
    model: torch.nn.Module,
    tokenizer: Any,
    encoded: Sequence[EncodedPair],
    config: TrainConfig,
    device: torch.device,
    *,
    rank: int,
    world_size: int,
    progress: Callable[[TrainProgress], None] | None,
) -> tuple[list[dict], float]:
    """``run_training_loop``'s loop, on the model as it is to be trained."""
    on_cuda = device.type == "cuda"
    use_bf16 = on_cuda and (
        config.bf16 is True or (config.bf16 == "auto" and torch.cuda.is_bf16_supported())
    )
    scorer: torch.nn.Module = PairScorer(model, left_padded=tokenizer.padding_side == "left")
    if world_size > 1:
        # BERT's buffers (position ids) never change: nothing to broadcast each forward.
        scorer = DistributedDataParallel(
            scorer, device_ids=[device.index] if on_cuda else None, broadcast_buffers=False
        )
    micro_batches_per_epoch = math.ceil(len(encoded) / config.batch_size)
    batches_per_step = config.gradient_accumulation_steps * world_size
    steps_per_epoch = math.ceil(micro_batches_per_epoch / batches_per_step)
    total_steps = steps_per_epoch * config.num_epochs
    warmup_steps = math.ceil(config.warmup_ratio * total_steps)

    # The fused kernel updates each parameter in one pass; the default
    # per-tensor loop on CPU took ~20% of a MiniLM step (the 30k x 384
    # embedding is read and written a dozen times). HF Trainer defaults to it too.
    optimizer = torch.optim.AdamW(
        _parameter_groups(model, config.weight_decay), lr=config.learning_rate, fused=True
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _linear_schedule(step, warmup_steps, total_steps)
    )

    history: list[dict] = []
    scorer.train()
    step = 0
    started = time.perf_counter()
    for epoch in range(config.num_epochs):
        batches = batch_order(
            encoded,
            config.batch_size,
            seed=config.seed + epoch,
            group_by_length=config.group_by_length,
            batches_per_step=batches_per_step,
        )
        for first in range(0, len(batches), batches_per_step):
            group = batches[first : first + batches_per_step]
            group_pairs = sum(len(batch) for batch in group)
            mine = group[rank::world_size]
            # Every rank must run as many backward passes (each one an
            # all-reduce) as the others, or DDP hangs; a rank short of a
            # batch in an epoch's last step repeats one with weight 0.
            weights = [len(batch) * world_size / group_pairs for batch in mine]
            rounds = math.ceil(len(group) / world_size)
            while len(mine) < rounds:
                mine, weights = mine + [group[0]], weights + [0.0]
            step_loss = torch.zeros((), device=device)
            for position, (batch, weight) in enumerate(zip(mine, weights)):
                batch_pairs = [encoded[i] for i in batch]
                inputs = collate_pairs(
                    batch_pairs,
                    tokenizer.pad_token_id,
                    tokenizer.padding_side,
                    multiple_of=config.pad_to_multiple_of if on_cuda else None,
                    max_width=config.max_length,
                )
                inputs = {name: tensor.to(device, non_blocking=True) for name, tensor in inputs.items()}
                # On CPU a step costs what its padded tokens cost, so the
                # batch's texts go through in passes of similar length; on
                # CUDA a pass costs more in launches than padding does.
                passes = None
                if not on_cuda:
                    lengths = [len(pair.chosen_ids) for pair in batch_pairs]
                    lengths += [len(pair.rejected_ids) for pair in batch_pairs]
                    passes = plan_passes(lengths)  # rows as collated: chosen, then rejected
                autocast = (
                    torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
                )
                # Gradients are all-reduced once per step, on its last backward.
                last = position == len(mine) - 1
                sync = contextlib.nullcontext() if world_size == 1 or last else scorer.no_sync()
                with sync:
                    with autocast:
                        rewards = scorer(inputs["input_ids"], inputs["attention_mask"], passes)  # (2B,)
                    rewards = rewards.float()
                    if rewards.dim() == 2:  # (2B, 1 + K) with per-criterion heads: each pair's own head
                        rewards = rewards.gather(1, inputs["head"].repeat(2).unsqueeze(1)).squeeze(1)  # (2B,)
                    chosen, rejected = rewards.chunk(2)  # (B,), (B,)
                    loss = bradley_terry_loss(
                        chosen,
                        rejected,
                        margin=inputs["margin"] if config.use_margin else None,
                        center_rewards_coefficient=config.center_rewards_coefficient,
                        tie=inputs["tie"],
                        confidence=inputs["confidence"],
                    )
                    # Weighted by pairs (DDP then divides by world_size), so
                    # the step's gradient is the mean over all its pairs,
                    # even when the last micro-batch is short.
                    (loss * weight).backward()
                step_loss += loss.detach() * weight / world_size
            if world_size > 1:
                torch.distributed.all_reduce(step_loss)
            if config.max_grad_norm is not None:
                _clip_gradients(model, config.max_grad_norm, on_cuda=on_cuda)
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            step_loss_value = step_loss.item()  # the step's one host sync
            if not math.isfinite(step_loss_value):
                # Stop here, with a reason an admin can act on: the weights are already
                # poisoned, and a NaN would otherwise surface later as an unreadable error
                # (PostgreSQL refuses NaN in the run's progress JSON) or a useless model.
                raise TrainingDiverged(
                    f"The loss became {step_loss_value} at step {step} of {total_steps} (learning rate "
                    f"{learning_rate:g}): training diverged. Try a lower learning rate; the champion keeps serving."
                )
            elapsed = time.perf_counter() - started
            report = TrainProgress(
                step=step,
                total_steps=total_steps,
                epoch=epoch + (first + len(group)) / len(batches),
                loss=step_loss_value,
                elapsed_s=elapsed,
                eta_s=elapsed / step * (total_steps - step),
            )
            history.append(
                {"step": step, "epoch": report.epoch, "loss": step_loss_value, "learning_rate": learning_rate,
                 "elapsed_s": elapsed}
            )
            if progress is not None:
                progress(report)

    return history, time.perf_counter() - started


class PairScorer(torch.nn.Module):
    """The reward of each row of a collated batch, (2B, T) ids -> (2B,) rewards
    ((2B, 1 + K) for a model with per-criterion heads: the loop picks each pair's).

    With ``passes`` (see ``batching.plan_passes``) the rows are scored in
    several forward passes, each cut to its own width; the rewards, and so
    the loss and its gradient, are those of one pass over the padded batch
    (up to float rounding), in the batch's row order. A BERT model
    (``packed.supports_packing``) goes further: its linear layers run once
    over the batch's real tokens, packed, and only attention goes by passes.
    It is one module call however many passes, so DistributedDataParallel,
    which expects one forward per backward, can wrap it.
    """

    def __init__(self, model: torch.nn.Module, *, left_padded: bool = False):
        super().__init__()
        self.model = model
        self.left_padded = left_padded
        self.packed = supports_packing(model, padding_side="left" if left_padded else "right")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        passes: list[tuple[list[int], int]] | None = None,
    ) -> torch.Tensor:
        if passes is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1)
        if self.packed:
            return packed_rewards(self.model, input_ids, attention_mask, passes)
        total_width = input_ids.shape[1]
        parts, order = [], []
        for rows, width in passes:
            index = torch.tensor(rows, device=input_ids.device)
            columns = slice(total_width - width, total_width) if self.left_padded else slice(0, width)
            logits = self.model(
                input_ids=input_ids[index, columns], attention_mask=attention_mask[index, columns]
            ).logits  # (rows, 1)
            parts.append(logits.squeeze(-1))
            order.extend(rows)
        inverse = torch.empty(len(order), dtype=torch.long, device=input_ids.device)
        inverse[torch.tensor(order, device=input_ids.device)] = torch.arange(len(order), device=input_ids.device)
        return torch.cat(parts)[inverse]


def _clip_gradients(model: torch.nn.Module, max_norm: float, *, on_cuda: bool) -> None:
    """Clip the global gradient norm to ``max_norm``.

    torch's clip_grad_norm_ always multiplies every gradient (by 1 when the
    norm is small), which spares CUDA a host sync; on CPU there is no sync to
    spare, and the multiply rewrites the 30k x 384 embedding gradient for
    nothing on most steps.
    """
    parameters = [parameter for parameter in model.parameters() if parameter.grad is not None]
    if on_cuda:
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        return
    grads = [parameter.grad for parameter in parameters]
    total_norm = torch.nn.utils.get_total_norm(grads)
    if total_norm > max_norm:
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total_norm)


def _linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: 0 -> 1 over warmup, then 1 -> 0 at the end."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay matrices only; biases and LayerNorm weights (1-D) are exempt, as in HF Trainer."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.dim() >= 2 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
