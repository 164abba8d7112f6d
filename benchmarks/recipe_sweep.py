#!/usr/bin/env python
"""The reward recipe sweep (issue #15): held-out accuracy, loss and ECE of each training setting, over seeds.

Every (setting, seed) is one run of ``benchmarks/train_reward.py`` (``training.ml``, the product's
trainer) in its own process, writing its JSON to ``--out-dir``; ``--jobs`` run at a time (on a GPU
machine many MiniLM runs share the one GPU; on CPU, one or two). A run whose JSON is already
there is not run again, so a sweep stopped at a time limit resumes. Then, per setting: mean dev
accuracy with its 95 % t-interval over seeds, mean dev loss and ECE, and the accuracy difference
against ``--reference`` paired by seed, with its own interval. The grid is every combination of
the listed values; the first value of each list is the reference unless ``--reference`` says.

    .venv/bin/python benchmarks/recipe_sweep.py --seeds 0 1 2 3 4 --epochs 1 2 3 \\
        --learning-rates 5e-5 2e-5 --batch-sizes 8 16 --jobs 16 --device cuda --out-dir /tmp/sweep
    .venv/bin/python benchmarks/recipe_sweep.py --out-dir /tmp/sweep --summarise-only

The table, sorted by mean accuracy, is Markdown (for docs/benchmarks.md); ``--json-out`` writes it
as JSON too. The data and backbone are train_reward.py's (``--data-dir``, ``--backbone``).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script, not as a module
    sys.path.insert(0, str(REPO_ROOT))
from benchmarks.train_reward import interval  # noqa: E402

TRAIN_REWARD = REPO_ROOT / "benchmarks" / "train_reward.py"

@dataclasses.dataclass(frozen=True)
class Setting:
    epochs: int
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    pooling: str
    frozen_layers: int = 0

    @property
    def key(self) -> str:
        # "-f<n>" only when something is frozen, so the keys of earlier sweeps still name their runs.
        frozen = f"-f{self.frozen_layers}" if self.frozen_layers else ""
        return (f"e{self.epochs}-lr{self.learning_rate:g}-b{self.batch_size}-w{self.warmup_ratio:g}"
                f"-wd{self.weight_decay:g}-{self.pooling}{frozen}")

    def arguments(self) -> list[str]:
        return ["--epochs", str(self.epochs), "--learning-rate", str(self.learning_rate),
                "--batch-size", str(self.batch_size), "--warmup-ratio", str(self.warmup_ratio),
                "--weight-decay", str(self.weight_decay), "--pooling", self.pooling,
                "--frozen-layers", str(self.frozen_layers)]


def summarise(runs: dict[str, dict[int, dict]], reference: str) -> list[dict]:
    """One row per setting: accuracy, loss and ECE over its seeds, and the paired accuracy difference."""
    rows = []
    for key, by_seed in runs.items():
        accuracy = [run["dev"]["accuracy"] for run in by_seed.values()]
        row = {
            "setting": key, "seeds": len(by_seed),
            "accuracy": interval(accuracy),
            "loss": statistics.fmean(run["dev"]["loss"] for run in by_seed.values()),
            "ece": statistics.fmean(run["dev"]["ece"] for run in by_seed.values()),
            "pairs_per_second": statistics.median(run["pairs_per_second"] for run in by_seed.values()),
            "vs_reference": None,
        }
        common = sorted(set(by_seed) & set(runs.get(reference, {})))
        if key != reference and common:
            row["vs_reference"] = {
                "seeds": len(common),
                "difference": interval([by_seed[s]["dev"]["accuracy"] - runs[reference][s]["dev"]["accuracy"]
                                        for s in common]),
            }
        rows.append(row)
    return sorted(rows, key=lambda row: -row["accuracy"][0])


def print_table(rows: list[dict], reference: str, ln2: float = math.log(2)) -> None:
    print(f"\n| setting | seeds | dev accuracy (mean ± 95 % CI) | vs {reference} (paired) | dev loss | ECE | pairs/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        mean, half = row["accuracy"]
        paired = row["vs_reference"]
        versus = "reference" if row["setting"] == reference else (
            f"{paired['difference'][0]:+.4f} ± {paired['difference'][1]:.4f}" if paired else "–")
        loss = f"{row['loss']:.4f}" + (" (> ln 2)" if row["loss"] > ln2 else "")
        print(f"| {row['setting']} | {row['seeds']} | {mean:.4f} ± {half:.4f} | {versus} | {loss} | "
              f"{row['ece']:.4f} | {row['pairs_per_second']:.0f} |")


def load_runs(out_dir: Path) -> dict[str, dict[int, dict]]:
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(out_dir.glob("*-s*.json")):
        key, _, seed = path.stem.rpartition("-s")
        runs.setdefault(key, {})[int(seed)] = json.loads(path.read_text())
    return runs


def run_one(setting: Setting, seed: int, args: argparse.Namespace) -> tuple[str, int, float, str | None]:
    out = args.out_dir / f"{setting.key}-s{seed}.json"
    if out.exists():
        return setting.key, seed, 0.0, None
    command = [sys.executable, str(TRAIN_REWARD), "--seed", str(seed), "--device", args.device,
               "--max-length", str(args.max_length), "--data-dir", str(args.data_dir),
               "--json-out", str(out) + ".partial", *setting.arguments()]
    if args.backbone:
        command += ["--backbone", args.backbone]
    if args.max_pairs:
        command += ["--max-pairs", str(args.max_pairs)]
    # One intra-op thread per run: --jobs runs share the cores.
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        return setting.key, seed, elapsed, (result.stderr or result.stdout)[-2000:]
    Path(str(out) + ".partial").rename(out)  # only complete runs count
    return setting.key, seed, elapsed, None


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    from benchmarks.train_reward import DEFAULT_DATA_DIR, default_backbone
    from training.ml.config import TrainConfig

    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, required=True, help="one JSON per run; kept, so a sweep resumes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, nargs="+", default=[defaults["num_epochs"]])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[defaults["learning_rate"]])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[defaults["batch_size"]])
    parser.add_argument("--warmup-ratios", type=float, nargs="+", default=[defaults["warmup_ratio"]])
    parser.add_argument("--weight-decays", type=float, nargs="+", default=[defaults["weight_decay"]])
    parser.add_argument("--poolings", nargs="+", default=[defaults["pooling"]])
    parser.add_argument("--frozen-layers", type=int, nargs="+", default=[defaults["frozen_layers"]],
                        help="TrainConfig.frozen_layers values: 0 trains the whole backbone")
    parser.add_argument("--extra", nargs="+", default=[], metavar="KEY",
                        help="settings outside the grid, as keys (e.g. e2-lr3e-05-b16-w0.1-wd0-auto)")
    parser.add_argument("--reference", default=None, help="the setting others are compared with (default: the grid's first)")
    parser.add_argument("--max-length", type=int, default=defaults["max_length"])
    parser.add_argument("--max-pairs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--backbone", default=default_backbone())
    parser.add_argument("--summarise-only", action="store_true", help="no runs: the table of what --out-dir holds")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def setting_from_key(key: str) -> Setting:
    """The inverse of ``Setting.key``."""
    match = re.fullmatch(r"e(\d+)-lr(.+?)-b(\d+)-w(.+?)-wd(.+?)-([a-z_]+)(?:-f(\d+))?", key)
    if match is None:
        raise SystemExit(f"not a setting key: {key!r}")
    epochs, rate, batch, warmup, decay, pooling, frozen = match.groups()
    return Setting(int(epochs), float(rate), int(batch), float(warmup), float(decay), pooling, int(frozen or 0))


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    grid = [Setting(*values) for values in itertools.product(
        args.epochs, args.learning_rates, args.batch_sizes, args.warmup_ratios, args.weight_decays, args.poolings,
        args.frozen_layers)]
    grid += [setting_from_key(key) for key in args.extra]
    reference = args.reference or grid[0].key
    if not args.summarise_only:
        jobs = [(setting, seed) for seed in args.seeds for setting in grid]  # every setting's seed 0 first
        print(f"{len(grid)} settings x {len(args.seeds)} seeds = {len(jobs)} runs, {args.jobs} at a time, "
              f"device {args.device}", flush=True)
        started = time.perf_counter()
        failures = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for key, seed, elapsed, error in pool.map(lambda job: run_one(*job, args), jobs):
                if error:
                    failures += 1
                    print(f"FAILED {key} seed {seed} after {elapsed:.0f} s:\n{error}", file=sys.stderr, flush=True)
                elif elapsed:
                    print(f"  {key} seed {seed}: {elapsed:.0f} s", flush=True)
        print(f"runs done in {time.perf_counter() - started:.0f} s, {failures} failed", flush=True)
    runs = load_runs(args.out_dir)
    if not runs:
        print("no complete runs")
        return 1
    rows = summarise(runs, reference)
    print_table(rows, reference)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({"reference": reference, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
