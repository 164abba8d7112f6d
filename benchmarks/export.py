"""Exports of a 1,000,000-label project in constant memory: rows/s and peak RSS per export.

Builds, on a fresh PostgreSQL database, a pairwise project with N labels (3 per item, 30
annotators, prompts and responses cycled from the HH-RLHF harmless dialogues in
../shared/data, read in place) with COPY, and a second one with N/10. Then, each in its own
child process, writing to /dev/null:

- labels JSONL and labels CSV (``annotation.export.label_export_lines``);
- pairs JSONL (``training.export.project_export``, the path the API and the CLI take);
- the baseline: the naive export, ``json.dumps(list(Label.objects.filter(...).values()))``.

For each: rows, seconds, rows/s, MB written, and the child's peak RSS (``ru_maxrss``), also
as growth over its baseline (the resident size of the interpreter with Django set up and
connected, just before the export).
PASS when every streaming export peaks under ``--bound-mb`` (300 MB) over that baseline
and its peak grows less than ``--growth`` (20%) from N/10 to N labels.

    .venv/bin/python benchmarks/export.py                      # N = 1,000,000
    .venv/bin/python benchmarks/export.py --labels 100000 --json-out /tmp/export.json

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server); creates and drops the database
``rlhf_bench_export`` (``--keep`` leaves it for a look).
"""
import argparse
import gzip
import json
import os
import re
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench_export"
DATA = REPO.parent / "shared" / "data" / "hh-rlhf-harmless"
sys.path.insert(0, str(REPO))

from benchmarks.support import bench_environment, recreate_database, server_url_from_env  # noqa: E402 (after the path is set)

LABELS_PER_ITEM = 3
ANNOTATORS = 30  # a multiple of LABELS_PER_ITEM, so the 3 annotators of an item are distinct
STREAMING = ("labels-jsonl", "labels-csv", "pairs-jsonl")
BASELINE = "naive-json"
COPY_BATCH_BYTES = 16 << 20


# --- Database ---------------------------------------------------------------------------

# --- Data -------------------------------------------------------------------------------

TURN = re.compile(r"\n\n(Human|Assistant): ")


def dialogue_turns(text: str) -> list[dict]:
    """``"\\n\\nHuman: ...\\n\\nAssistant: ..."`` as ``[{"role", "content"}]``."""
    parts = TURN.split(text)
    return [
        {"role": "user" if role == "Human" else "assistant", "content": content.strip()}
        for role, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def copy_escape(text: str) -> str:
    """A value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def load_dialogues() -> list[tuple[str, str, str]]:
    """Every HH-RLHF pair as (conversation JSON, chosen reply, rejected reply), COPY-escaped once."""
    dialogues = []
    for name in ("train.jsonl.gz", "dev.jsonl.gz"):
        with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                chosen, rejected = dialogue_turns(record["chosen"]), dialogue_turns(record["rejected"])
                if len(chosen) < 2 or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
                    continue
                context = chosen[:-1]
                dialogues.append((
                    copy_escape(json.dumps(context, ensure_ascii=False)),
                    copy_escape(chosen[-1]["content"]),
                    copy_escape(rejected[-1]["content"]),
                ))
    if not dialogues:
        raise SystemExit(f"No dialogues found in {DATA}.")
    return dialogues


class Copier:
    """Streams rows into one table with COPY, a few MB at a time (constant memory).

    Each COPY commits on its own, so a batch first flushes the tables it points at: the
    foreign keys are checked when it lands.
    """

    def __init__(self, cursor, model, columns: list[str], *, parents: tuple["Copier", ...] = ()):
        self.cursor, self.parents = cursor, parents
        self.sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
        self.buffer = StringIO()

    def row(self, line: str) -> None:
        self.buffer.write(line)
        if self.buffer.tell() >= COPY_BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        for parent in self.parents:
            parent.flush()
        if self.buffer.tell():
            self.buffer.seek(0)
            self.cursor.copy_expert(self.sql, self.buffer)
            self.buffer = StringIO()


def label_row(label_id: int, item_id: int, annotator_id: int, first: int, second: int, created_at: str) -> str:
    """One label as a COPY line: a mix of A/B wins with strengths, ties and both-bad, as annotators give."""
    shown = (first, second) if label_id % 2 else (second, first)
    outcome = (label_id * 7919) % 20
    is_tie = both_bad = "f"
    strength = "\\N"
    if outcome < 9:  # the HH-RLHF "chosen" reply wins
        ranking = f"[[{first}], [{second}]]"
        strength = str(1 + label_id % 4)
    elif outcome < 15:
        ranking = f"[[{second}], [{first}]]"
        strength = str(1 + label_id % 4)
    elif outcome < 18:
        ranking, is_tie = f"[[{shown[0]}, {shown[1]}]]", "t"
    else:
        ranking, both_bad = f"[[{shown[0]}, {shown[1]}]]", "t"
    rationale = "The first answer refuses clearly and stays polite." if label_id % 5 == 0 else ""
    client_id = uuid.UUID(int=label_id)
    return (
        f"{label_id}\t{item_id}\t{annotator_id}\t\\N\t{client_id}\t{ranking}\t{is_tie}\t{both_bad}\t{strength}\t"
        f"{rationale}\t{{}}\t[]\t{3.5 + label_id % 90}\t[{shown[0]}, {shown[1]}]\t{created_at}\n"
    )


def build_project(*, name: str, labels: int, annotator_ids: list[int], dialogues: list) -> int:
    """A pairwise project with ``labels`` labels (3 per item, one item per prompt), written with COPY.

    Ids are assigned here, after the tables' current maxima, and the sequences moved past them.
    """
    from django.contrib.auth.models import User
    from django.db import connection

    from annotation.models import ComparisonItem, ComparisonItemResponse, Label, Prompt, Response
    from annotation.services import project_create

    annotators = User.objects.filter(id__in=annotator_ids)
    project = project_create(name=name, labels_per_item=LABELS_PER_ITEM, annotators=annotators)
    items = -(-labels // LABELS_PER_ITEM)
    models = (Prompt, Response, ComparisonItem, ComparisonItemResponse, Label)
    with connection.cursor() as cursor:
        base = {}
        for model in models:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM {model._meta.db_table}")
            base[model] = cursor.fetchone()[0]
        prompts = Copier(cursor, Prompt, ["id", "project_id", "external_id", "conversation", "metadata", "created_at"])
        responses = Copier(cursor, Response, ["id", "prompt_id", "text", "model_name", "metadata", "created_at"],
                           parents=(prompts,))
        item_rows = Copier(cursor, ComparisonItem, ["id", "project_id", "prompt_id", "label_count", "created_at"],
                           parents=(prompts,))
        slots = Copier(cursor, ComparisonItemResponse, ["id", "item_id", "response_id", "slot"],
                       parents=(item_rows, responses))
        label_rows = Copier(cursor, Label, [
            "id", "item_id", "annotator_id", "assignment_id", "client_id", "ranking", "is_tie", "both_bad", "strength",
            "rationale", "ratings", "flags", "seconds_spent", "display_order", "created_at",
        ], parents=(item_rows,))
        start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        written = 0
        for index in range(items):
            conversation, chosen, rejected = dialogues[index % len(dialogues)]
            prompt_id, item_id = base[Prompt] + index + 1, base[ComparisonItem] + index + 1
            first, second = base[Response] + 2 * index + 1, base[Response] + 2 * index + 2
            created = (start + timedelta(seconds=index)).isoformat()
            prompts.row(f"{prompt_id}\t{project.id}\ths-{index}\t{conversation}\t{{}}\t{created}\n")
            responses.row(f"{first}\t{prompt_id}\t{chosen}\tmodel-chosen\t{{}}\t{created}\n")
            responses.row(f"{second}\t{prompt_id}\t{rejected}\tmodel-rejected\t{{}}\t{created}\n")
            on_item = min(LABELS_PER_ITEM, labels - written)
            item_rows.row(f"{item_id}\t{project.id}\t{prompt_id}\t{on_item}\t{created}\n")
            slot_base = base[ComparisonItemResponse] + 2 * index
            slots.row(f"{slot_base + 1}\t{item_id}\t{first}\t0\n{slot_base + 2}\t{item_id}\t{second}\t1\n")
            for k in range(on_item):
                label_id = base[Label] + written + 1
                annotator = annotator_ids[(LABELS_PER_ITEM * index + k) % len(annotator_ids)]
                labelled_at = (start + timedelta(seconds=index, milliseconds=200 * (k + 1))).isoformat()
                label_rows.row(label_row(label_id, item_id, annotator, first, second, labelled_at))
                written += 1
        for copier in (slots, label_rows):  # and, through them, every parent
            copier.flush()
        for model in models:
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    # In production labels are folded into the project's tallies as they arrive
    # (annotation.tallies); COPY goes around that, so count them once, as they would stand.
    from annotation.tallies import label_tallies_rebuild

    label_tallies_rebuild(project=project)
    return project.id


def build(*, labels_big: int, labels_small: int) -> dict:
    """Migrate, then both projects; VACUUM ANALYZE so the exports meet a settled database, as in production."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    User.objects.bulk_create([User(username=f"annotator{index}", password="!") for index in range(ANNOTATORS)])
    annotator_ids = list(User.objects.order_by("id").values_list("id", flat=True))
    dialogues = load_dialogues()
    started = time.perf_counter()
    big = build_project(name="Export benchmark", labels=labels_big, annotator_ids=annotator_ids, dialogues=dialogues)
    small = build_project(name="Export benchmark (tenth)", labels=labels_small, annotator_ids=annotator_ids,
                          dialogues=dialogues)
    copied = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
    connection.close()
    return {
        "projects": {"big": big, "small": small},
        "dialogues": len(dialogues),
        "copy_seconds": copied,
        "seconds": time.perf_counter() - started,
        "database_mb": size / 2**20,
    }


# --- One export, in a child process -----------------------------------------------------

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def vm_hwm_mb() -> float:
    """This process's own peak resident size (its address space's high-water mark), a check on ru_maxrss."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(kind: str, project_id: int) -> None:
    """Run one export to /dev/null; print its figures as one JSON line."""
    import django

    django.setup()
    from annotation.export import label_export_lines
    from annotation.models import Label, Project
    from training.export import ExportRequest, project_export

    project = Project.objects.get(id=project_id)  # connected: the baseline includes the connection
    # What the process holds now, not its high-water mark so far: an import-time peak would
    # otherwise hide the export's own growth.
    baseline = current_rss_mb()
    started = time.perf_counter()
    rows = written = 0
    # Encoded as the API's StreamingHttpResponse encodes each line.
    with open(os.devnull, "wb") as sink:
        if kind == BASELINE:
            everything = list(Label.objects.filter(item__project=project).values())
            written = sink.write(json.dumps(everything, default=str).encode())
            rows = len(everything)
        else:
            if kind.startswith("labels-"):
                lines = label_export_lines(project, export_format=kind.split("-")[1])
            else:
                export = project_export(project, ExportRequest(kind="pairs"))
                lines = export.lines() if callable(export.lines) else export.lines
            for line in lines:
                written += sink.write(line.encode())
                rows += 1
            rows -= kind == "labels-csv"  # the header
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    print(json.dumps({
        "kind": kind, "rows": rows, "seconds": seconds, "rows_per_second": rows / seconds if seconds else None,
        "megabytes": written / 2**20, "baseline_rss_mb": baseline, "peak_rss_mb": peak, "growth_mb": peak - baseline,
        "vm_hwm_mb": vm_hwm_mb(),
    }))


def in_child(arguments: list[str], env: dict) -> dict:
    """Run this script with ``--child ...`` and return the JSON line it prints last.

    The parent never imports Django or holds data: ru_maxrss survives fork and exec (Linux
    carries the parent's high-water mark into the child), so a big parent would mask the
    children's peaks.
    """
    completed = subprocess.run(
        [sys.executable, __file__, "--child", *arguments], cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run_export(kind: str, project_id: int, labels: int, env: dict) -> dict:
    return {"labels": labels, **in_child([kind, "--project-id", str(project_id)], env)}


# --- Report -----------------------------------------------------------------------------

def verdict(runs: list[dict], *, big: int, bound_mb: float, growth_bound: float) -> tuple[bool, list[str]]:
    by = {(run["kind"], run["labels"]): run for run in runs}
    small = big // 10
    passed, lines = True, []
    for kind in STREAMING:
        large_run, small_run = by[(kind, big)], by[(kind, small)]
        growth = large_run["peak_rss_mb"] / small_run["peak_rss_mb"] - 1
        ok = large_run["growth_mb"] < bound_mb and growth < growth_bound
        passed &= ok
        lines.append(
            f"{'ok  ' if ok else 'FAIL'} {kind:<13} {large_run['growth_mb']:7.1f} MB over baseline (bound {bound_mb:.0f}); "
            f"peak {small_run['peak_rss_mb']:.1f} -> {large_run['peak_rss_mb']:.1f} MB from {small:,} to {big:,} labels "
            f"({growth:+.1%}, bound {growth_bound:+.0%})"
        )
    return passed, lines


def print_header() -> None:
    print(f"{'export':<13} {'labels':>10} {'rows':>10} {'seconds':>8} {'rows/s':>9} {'MB out':>8} "
          f"{'base MB':>8} {'peak MB':>8} {'growth MB':>9}")


def print_run(run: dict) -> None:
    print(f"{run['kind']:<13} {run['labels']:>10,} {run['rows']:>10,} {run['seconds']:>8.1f} "
          f"{run['rows_per_second']:>9,.0f} {run['megabytes']:>8.1f} {run['baseline_rss_mb']:>8.1f} "
          f"{run['peak_rss_mb']:>8.1f} {run['growth_mb']:>9.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=1_000_000, help="labels in the big project (the small one: a tenth)")
    parser.add_argument("--bound-mb", type=float, default=300.0, help="streaming peak RSS over baseline must stay under this")
    parser.add_argument("--growth", type=float, default=0.20, help="allowed peak RSS growth from N/10 to N labels")
    parser.add_argument("--json-out", type=Path, help="write every figure here as JSON")
    parser.add_argument("--keep", action="store_true", help=f"leave the database {BENCH_DB} behind")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "build":
        print(json.dumps(build(labels_big=args.labels, labels_small=args.labels // 10)))
        return
    if args.child:
        child(args.child, args.project_id)
        return
    if args.labels < 100:
        raise SystemExit("--labels: at least 100 (the small project has a tenth).")

    server_url = server_url_from_env()
    database_url = recreate_database(server_url, BENCH_DB)
    env = bench_environment(database_url)
    began = time.perf_counter()
    try:
        built = in_child(["build", "--labels", str(args.labels)], env)
        print(f"Built {args.labels:,} + {args.labels // 10:,} labels ({LABELS_PER_ITEM} per item, {ANNOTATORS} annotators, "
              f"{built['dialogues']:,} HH-RLHF dialogues cycled) in {built['seconds']:.1f} s "
              f"(COPY {built['copy_seconds']:.1f} s); database {built['database_mb']:,.0f} MB. "
              f"PostgreSQL, {os.cpu_count()} CPU cores.\n", flush=True)
        runs = []
        print_header()
        for labels, project_id in ((args.labels // 10, built["projects"]["small"]), (args.labels, built["projects"]["big"])):
            for kind in (*STREAMING, BASELINE):
                runs.append(run_export(kind, project_id, labels, env))
                print_run(runs[-1])
        passed, lines = verdict(runs, big=args.labels, bound_mb=args.bound_mb, growth_bound=args.growth)
        naive = next(run for run in runs if run["kind"] == BASELINE and run["labels"] == args.labels)
        worst = max(run["growth_mb"] for run in runs if run["kind"] in STREAMING and run["labels"] == args.labels)
        print("\nPeak RSS is the child's ru_maxrss; baseline: the same child with Django set up and connected, "
              "before exporting.")
        print(f"Naive baseline at {args.labels:,} labels: {naive['growth_mb']:,.1f} MB over baseline in "
              f"{naive['seconds']:.1f} s ({naive['growth_mb'] / max(worst, 1):,.0f}x the worst streaming export).")
        print("\n".join(lines))
        total = time.perf_counter() - began
        print(f"{'PASS' if passed else 'FAIL'}: streaming exports stay under {args.bound_mb:.0f} MB over baseline and "
              f"grow under {args.growth:.0%} from {args.labels // 10:,} to {args.labels:,} labels. Total {total:.0f} s.")
        if args.json_out:
            args.json_out.write_text(json.dumps({
                "labels": args.labels, "build": built, "runs": runs, "pass": passed,
                "bound_mb": args.bound_mb, "growth_bound": args.growth, "total_seconds": total,
            }, indent=2) + "\n")
    finally:
        if not args.keep:
            recreate_database(server_url, BENCH_DB, drop_only=True)
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
