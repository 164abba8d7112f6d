"""Annotators while the champion rescores their project: does rescoring hold them up? (issue #13)

Issue #13 asks for rescoring "in chunks that never hold up annotators". This measures it on the
real server. It starts gunicorn as ``scripts/run`` does (2 workers x 4 threads) on a fresh
database, imports the HH-RLHF project of ``benchmarks/annotators.py`` (12,000 items, 24,000
responses, 3 labels wanted per item) and sets its selection order to ``uncertainty``, so that
every claim reads the ``model_priority`` column a rescoring rewrites. A first champion (the tiny
test model, ``training.ml.model.build_tiny_model``) is promoted and scored, so the items have
priorities. Then, each for ``--seconds``:

1. ``alone``: 64 annotators with an exponential think time (mean 8 s), as scenario 2 of
   ``annotators.py``: each submit also leases the next item.
2. ``rescoring``: the same, while a second process, at ``nice 10`` as ``scripts/run`` starts the
   worker, promotes a new champion and runs ``training.pipeline.rescore_project_responses`` on
   it, back to back: every response scored and stored in chunks, the version finished (the
   atomic switch), every item's priority refreshed.

The tiny model makes the rescoring nearly all database work (hundreds of scores a second
written, 12,000 priorities rewritten each round), which is what could hold annotators up: a
real model spends the same writes over minutes. On PostgreSQL a sampler reads
``pg_stat_activity`` every 20 ms for backends waiting on a lock, and prints the longest wait it
saw and the statement that waited.

Target: while rescoring, p99 of next-item and of submit+next under 150 ms (the hot path's target,
``annotators.py`` scenario 2), 0 errors, nobody told "done" while items remain; the figures alone
are printed beside them.

    .venv/bin/python benchmarks/rescoring_load.py                      # PostgreSQL, about 6 min
    .venv/bin/python benchmarks/rescoring_load.py --sqlite /tmp/rescoring-load.sqlite3   # the embedded default

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server) unless ``--sqlite``; creates and drops
the database ``rlhf_bench_rescoring``. Sends traffic only to 127.0.0.1.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.annotators import freeze_client_heap, importable, latency_summary, prepare_data, run_annotators  # noqa: E402
from benchmarks.export import load_dialogues  # noqa: E402
from benchmarks.support import bench_environment, recreate_database, server_url_from_env, wait_for_server  # noqa: E402

BENCH_DB = "rlhf_bench_rescoring"
TINY_CHECKPOINT = "bench/tiny"
MAX_LENGTH = 64  # the tiny model's tokens per text: short, so that the database work dominates
LIMIT_MS = 150
ANNOTATORS = 64


# --- The rescoring process ----------------------------------------------------------------

def child_rescore(project_id: int, rounds: int) -> None:
    """Promote a new champion and rescore the project, ``rounds`` times (0: until killed).

    Prints one JSON line per finished rescoring. Each promotion is what a training run that
    passed the gate records (``training_run_complete``), minus the training.
    """
    import django

    django.setup()
    import torch

    torch.set_num_threads(1)
    from training import pipeline, selectors, services
    from training.models import ModelVersion, TrainingRun

    priorities_seconds: list[float] = []

    def timed(part: str, function):
        """Prints each call as a line (part, wall-clock start and end): what the requests met."""
        def wrapper(*args, **kwargs):
            started = time.time()
            try:
                return function(*args, **kwargs)
            finally:
                print(json.dumps({"phase": part, "start": started, "end": time.time()}), flush=True)
                if part == "priorities":
                    priorities_seconds.append(time.time() - started)
        return wrapper

    # The parts that write or lock; the time between them is the model scoring a chunk.
    services.training_run_complete = timed("promote", services.training_run_complete)
    selectors.responses_missing_scores_page = timed("read", selectors.responses_missing_scores_page)
    services.response_scores_store = timed("store", services.response_scores_store)
    services.model_version_scoring_finish = timed("finish", services.model_version_scoring_finish)
    pipeline.item_priorities_refresh = timed("priorities", pipeline.item_priorities_refresh)
    done = 0
    while rounds == 0 or done < rounds:
        run = TrainingRun.objects.create(project_id=project_id, trigger="manual", status="running")
        number = ModelVersion.objects.filter(project_id=project_id).count() + 1
        version = services.training_run_complete(
            run_id=run.id, version=number, checkpoint_path=TINY_CHECKPOINT, metrics={}, champion_metrics={},
            promote=True, config={"max_length": MAX_LENGTH, "pooling": "cls_pooler", "device": "cpu"},
            seed=number, code_version="bench",
        )
        started = time.perf_counter()
        scored = pipeline.rescore_project_responses(version.id)
        seconds = time.perf_counter() - started
        version.refresh_from_db()
        print(json.dumps({
            "version": number, "scored": scored, "seconds": seconds, "complete": version.scored_at is not None,
            "priorities_seconds": priorities_seconds[-1] if priorities_seconds else None,
        }), flush=True)
        done += 1


def rescoring_process(env: dict, project_id: int, rounds: int) -> subprocess.Popen:
    return subprocess.Popen(
        ["nice", "-n", "10", sys.executable, __file__, "--child-rescore", str(project_id), "--rounds", str(rounds)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, text=True,
    )


def rescorings_of(output: str) -> list[dict]:
    """The rescoring process's summary lines, one per finished rescoring."""
    return [entry for entry in _lines(output) if "version" in entry]


def phases_of(output: str) -> list[tuple[str, float, float]]:
    """Its parts, finished or not: ``(part, wall-clock start, end)``."""
    return [(entry["phase"], entry["start"], entry["end"]) for entry in _lines(output) if "phase" in entry]


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


# --- Lock waits (PostgreSQL) ----------------------------------------------------------------

class LockWaits(threading.Thread):
    """Samples ``pg_stat_activity`` for backends of the database waiting on a lock."""

    # Each waiting backend, and what the first backend it waits for is doing (its state, its own
    # wait, its statement): the holder of a lock is what a wait is about.
    SQL = """
        SELECT extract(epoch FROM clock_timestamp() - waiting.query_start),
               left(regexp_replace(waiting.query, '\\s+', ' ', 'g'), 120)
               || ' <- held by: ' || coalesce(holder.state, '?') || ', waiting on '
               || coalesce(holder.wait_event_type || '/' || holder.wait_event, 'nothing') || ': '
               || coalesce(left(regexp_replace(holder.query, '\\s+', ' ', 'g'), 120), '?')
        FROM pg_stat_activity waiting
        LEFT JOIN pg_stat_activity holder ON holder.pid = (pg_blocking_pids(waiting.pid))[1]
        WHERE waiting.datname = current_database() AND waiting.wait_event_type = 'Lock'
          AND waiting.pid <> pg_backend_pid()
    """

    def __init__(self, database_url: str, interval: float = 0.02):
        super().__init__(daemon=True)
        self.database_url, self.interval = database_url, interval
        self.stopped = threading.Event()
        self.samples = self.samples_waiting = 0
        self.longest, self.longest_query = 0.0, ""

    def run(self) -> None:
        import psycopg2

        connection = psycopg2.connect(self.database_url)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self.stopped.wait(self.interval):
                cursor.execute(self.SQL)
                rows = cursor.fetchall()
                self.samples += 1
                self.samples_waiting += bool(rows)
                for seconds, query in rows:
                    if float(seconds) > self.longest:
                        self.longest, self.longest_query = float(seconds), query
        connection.close()

    def summary(self) -> str:
        if not self.samples_waiting:
            return f"no backend waiting on a lock in {self.samples} samples"
        return (f"a backend waiting on a lock in {self.samples_waiting} of {self.samples} samples; longest wait seen "
                f"{self.longest * 1000:.0f} ms, in: {self.longest_query}")


# --- Main -----------------------------------------------------------------------------------

def slow_requests_by_part(timeline: list, phases: list[tuple[str, float, float]]) -> dict[str, int]:
    """The requests over the target, by what the rescoring process was doing meanwhile: the part
    (``child_rescore``'s: promote, read, store, finish, priorities) a request overlapped most, or
    "scoring" when it met none of them (the model at work, no database write)."""
    counted: dict[str, int] = {}
    for started, _endpoint, seconds in timeline:
        if seconds * 1000 < LIMIT_MS:
            continue
        ended = started + seconds
        overlaps: dict[str, float] = {}
        for name, begin, end in phases:
            overlap = min(end, ended) - max(begin, started)
            if overlap > 0:
                overlaps[name] = overlaps.get(name, 0.0) + overlap
        part = max(overlaps, key=overlaps.get) if overlaps else "scoring"
        counted[part] = counted.get(part, 0) + 1
    return counted


def annotators_for(args, data) -> tuple[dict, str]:
    """The think-time annotators for ``args.seconds``: their latencies and a one-line summary."""
    tally = run_annotators(port=args.port, tokens=data["tokens"][:ANNOTATORS], project_id=data["project_id"],
                           seconds=args.seconds, think_mean=8.0)
    figures = {name: latency_summary(tally.latency[name]) for name in ("next-item", "submit")}
    figures["timeline"] = tally.timeline
    figures["errors"] = sum(tally.errors.values())
    figures["early_done"] = tally.early_done
    figures["labels"] = tally.labels
    line = (f"next-item p50 {figures['next-item']['p50_ms']:.0f} ms p99 {figures['next-item']['p99_ms']:.0f} ms "
            f"({figures['next-item']['count']}), submit+next p50 {figures['submit']['p50_ms']:.0f} ms "
            f"p99 {figures['submit']['p99_ms']:.0f} ms ({figures['submit']['count']}); {tally.labels} labels, "
            f"{figures['errors']} errors, {tally.early_done} told done early")
    return figures, line


def prepare(args, env: dict) -> dict:
    """The project, its annotators, the uncertainty order and a first scored champion."""
    import django

    django.setup()
    from annotation.models import Project
    from training.ml.model import build_tiny_model

    build_tiny_model(Path(env["MODEL_STORE_DIR"]) / TINY_CHECKPOINT)
    dialogues = [dialogue for dialogue in load_dialogues() if importable(dialogue)]
    data = prepare_data(annotators=ANNOTATORS, prompts=args.prompts, dialogues=dialogues)
    Project.objects.filter(id=data["project_id"]).update(selection_order="uncertainty")
    from django.db import connection

    connection.close()
    first = rescoring_process(env, data["project_id"], rounds=1)
    output, _ = first.communicate()
    if first.returncode != 0:
        raise SystemExit("the first champion's rescoring failed")
    data["first"] = rescorings_of(output)[0]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each of the two runs")
    parser.add_argument("--prompts", type=int, default=12000, help="items in the project")
    parser.add_argument("--sqlite", type=Path, help="a fresh SQLite file instead of PostgreSQL (the embedded default)")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child-rescore", type=int, metavar="PROJECT_ID", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rescore:
        child_rescore(args.child_rescore, args.rounds)
        return

    if args.sqlite:
        args.sqlite.unlink(missing_ok=True)
        server_url, database_url = None, f"sqlite:///{args.sqlite.resolve()}"
    else:
        server_url = server_url_from_env()
        database_url = recreate_database(server_url, BENCH_DB)
    store = tempfile.mkdtemp(prefix="rescoring-load-")
    env = bench_environment(database_url, MODEL_STORE_DIR=store, TRAINING_HEARTBEAT_SECONDS="10")
    os.environ.update(env)
    started = time.perf_counter()
    data = prepare(args, env)
    print(f"{args.prompts:,} HH-RLHF items imported, selection order uncertainty; the first champion scored "
          f"{data['first']['scored']:,} responses in {data['first']['seconds']:.1f} s "
          f"(priorities {data['first']['priorities_seconds']:.1f} s); {time.perf_counter() - started:.0f} s in all",
          flush=True)
    freeze_client_heap()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{args.port}",
         "--workers", "2", "--threads", "4", "--log-level", "warning"],
        cwd=REPO, env=env,
    )
    results = {}
    try:
        wait_for_server(args.port, server)
        database = "SQLite (embedded default)" if args.sqlite else "PostgreSQL"
        print(f"gunicorn 2 workers x 4 threads, {database}, {os.cpu_count()} CPU cores, load average "
              f"{os.getloadavg()[0]:.1f}; {ANNOTATORS} annotators, think time mean 8 s, {args.seconds:.0f} s each",
              flush=True)
        results["alone"], line = annotators_for(args, data)
        print(f"  alone            {line}", flush=True)

        rescoring = rescoring_process(env, data["project_id"], rounds=0)
        locks = None if args.sqlite else LockWaits(database_url)
        if locks:
            locks.start()
        results["rescoring"], line = annotators_for(args, data)
        if locks:
            locks.stopped.set()
            locks.join()
        rescoring.terminate()
        output, _ = rescoring.communicate(timeout=60)
        rounds = rescorings_of(output)
        print(f"  while rescoring  {line}", flush=True)
        for entry in rounds:
            print(f"    champion v{entry['version']}: {entry['scored']:,} responses scored in {entry['seconds']:.1f} s "
                  f"({entry['scored'] / entry['seconds']:.0f}/s), priorities {entry['priorities_seconds']:.1f} s, "
                  f"complete {entry['complete']}")
        print("    (and the rescoring under way when the run ended, stopped there)")
        phases = phases_of(output)
        share = {part: sum(end - start for name, start, end in phases if name == part) / args.seconds
                 for part in ("promote", "read", "store", "finish", "priorities")}
        print("  the rescoring's time in its database parts: "
              + ", ".join(f"{part} {100 * fraction:.0f} %" for part, fraction in share.items()) + "; the rest scoring")
        slow = slow_requests_by_part(results["rescoring"]["timeline"], phases)
        print(f"  requests over {LIMIT_MS} ms while rescoring, by what the rescoring was doing: "
              + (", ".join(f"{part} {count}" for part, count in sorted(slow.items(), key=lambda kv: -kv[1])) or "none"))
        results["slow_by_part"] = slow
        if locks:
            print(f"  lock waits while rescoring: {locks.summary()}")
            results["lock_waits"] = {"samples": locks.samples, "waiting": locks.samples_waiting,
                                     "longest_ms": locks.longest * 1000, "longest_query": locks.longest_query}
        results["rescorings"] = rounds
        during = results["rescoring"]
        worst = max(during["next-item"]["p99_ms"], during["submit"]["p99_ms"])
        passed = worst < LIMIT_MS and during["errors"] == 0 and during["early_done"] == 0 and len(rounds) >= 1
        print(f"{'PASS' if passed else 'FAIL'}: while the champion rescored ({len(rounds)} full rescorings), "
              f"p99 next-item {during['next-item']['p99_ms']:.0f} ms and submit+next {during['submit']['p99_ms']:.0f} ms "
              f"(target < {LIMIT_MS} ms; alone {results['alone']['next-item']['p99_ms']:.0f} and "
              f"{results['alone']['submit']['p99_ms']:.0f} ms), {during['errors']} errors, "
              f"{during['early_done']} told done early")
        results["pass"] = passed
    finally:
        server.terminate()
        server.wait(timeout=30)
        if args.json_out:
            args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results},
                                                indent=2))
        from django.db import connection

        connection.close()
        if server_url:
            recreate_database(server_url, BENCH_DB, drop_only=True)
        elif args.sqlite:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.sqlite}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
