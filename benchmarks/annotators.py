"""Simulated annotators against the real server: the targets of issue #11, each PASS or FAIL.

Starts gunicorn (as ``scripts/run``: 2 workers x 4 threads) on a fresh PostgreSQL database,
with the label-tally fold that beat runs in production (``manage.py fold_label_tallies
--every``, at ``LABEL_TALLY_FOLD_SECONDS``; no worker, so no training run competes),
imports a project built from the HH-RLHF dialogues in ../shared/data (read in place; real
sizes, rendered at import as in production) with 3 labels wanted per item, creates the
annotators with API tokens, then runs:

Each annotator labels as the workbench does: its first lease is a next-item call, and each
submit asks for the following item too (``next``), one round trip per label.

1. ``throughput``: 16 annotators looping submit (with next) without pause; labels/s (>= 80).
   Then, for comparison and not as a target, the same with next-item and submit as two calls
   (``--split-seconds``, 0 to leave it out).
2. ``think``: 64 annotators, arriving over the first 8 s, thinking an exponential 8 s on
   average between items; p99 of next-item and of submit+next (< 150 ms each), 0 errors,
   nobody told "done" while items remain.
3. ``scale`` (with ``--scale``): a second database state with a project of 1,000,000
   responses and 500,000 labels (and 20 other projects), written with COPY; the think-time
   annotators label it while an admin loads the Results page's first screen (its HTML and
   the JSON calls results.js makes first) and pages through the labels API, each alone; p99
   of next-item, submit, progress, Results and labels API (< 100 ms each).
4. ``soak``: 64 annotators looping for ``--soak-seconds`` (300); then the database is
   checked: every label a client was told was saved is there (same client_id), none is
   duplicated, no item has more labels than wanted, every label_count and progress counter
   matches a recount.
5. ``workbench``: measured in a browser by ``benchmarks/workbench.py``, not here.

A baseline from the same server, the cheapest authenticated endpoint (GET /api/projects/),
is printed next to them. Each scenario prints its target, the measured value and PASS/FAIL;
``--json-out`` writes them all.

    .venv/bin/python benchmarks/annotators.py                              # 1, 2, 4
    .venv/bin/python benchmarks/annotators.py --scale --json-out /tmp/annotators.json
    .venv/bin/python benchmarks/annotators.py --scenarios throughput --seconds 10

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server); creates and drops the database
``rlhf_bench_hot``. Sends traffic only to 127.0.0.1.
"""
import argparse
import gc
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench_hot"
sys.path.insert(0, str(REPO))

from benchmarks.export import Copier, copy_escape, load_dialogues  # noqa: E402 (after the path is set)
from benchmarks.support import bench_environment, percentile, recreate_database, server_url_from_env, wait_for_server  # noqa: E402

LABELS_PER_ITEM = 3
SCALE_RESPONSES = 1_000_000
SCALE_LABELS = 500_000
SCALE_OTHER_PROJECTS = 20
SCALE_ANNOTATORS = 30  # who wrote the 500,000 labels, 3 distinct per item


# --- Data -------------------------------------------------------------------------------

def _unescape(text: str) -> str:
    """``load_dialogues`` returns COPY-escaped text; the JSONL import wants it plain."""
    out, index = [], 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(text[index + 1], text[index + 1]))
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def importable(dialogue) -> bool:
    """Whether the import accepts it: a few HH-RLHF pairs have an empty reply or turn, or end on the assistant."""
    conversation, chosen, rejected = dialogue
    messages = json.loads(_unescape(conversation))
    return bool(chosen.strip() and rejected.strip() and messages and messages[-1]["role"] == "user"
                and all(m["content"].strip() for m in messages))


def hh_rlhf_lines(dialogues: list, count: int, prefix: str):
    """``count`` JSONL import lines, the HH-RLHF dialogues cycled: context, chosen and rejected reply."""
    for index in range(count):
        conversation, chosen, rejected = dialogues[index % len(dialogues)]
        yield json.dumps({
            "external_id": f"{prefix}{index}",
            "conversation": json.loads(_unescape(conversation)),
            "responses": [{"text": _unescape(chosen), "model": "model-a"}, {"text": _unescape(rejected), "model": "model-b"}],
        })


def prepare_data(*, annotators: int, prompts: int, dialogues: list) -> dict:
    """Migrate; an admin, ``annotators`` users with tokens, and the project imported as an admin would."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.roles import admin_role_set
    from annotation.services import project_create, project_import_jsonl

    call_command("migrate", verbosity=0)
    users = [User(username=f"bench{index}", password="!") for index in range(annotators)]
    User.objects.bulk_create(users)
    users = list(User.objects.filter(username__startswith="bench").order_by("id"))
    admin = User.objects.create(username="bench-admin", password="!")
    admin_role_set(user=admin, is_admin=True)
    project = project_create(name="Benchmark", labels_per_item=LABELS_PER_ITEM, annotators=users)
    started = time.perf_counter()
    project_import_jsonl(project=project, lines=hh_rlhf_lines(dialogues, prompts, "b"), source="bench.jsonl")
    return {
        "project_id": project.id,
        "tokens": [Token.objects.create(user=user).key for user in users],
        "admin_token": Token.objects.create(user=admin).key,
        "admin_session": admin_session(admin),
        "import_seconds": time.perf_counter() - started,
    }


def admin_session(user) -> str:
    """A logged-in session for the Results page (an HTML view: session auth, not tokens)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "annotation.roles.ProjectRoleBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def build_scale(*, dialogues: list, annotator_ids: list[int], responses: int, labels: int) -> int:
    """The 1,000,000-response / 500,000-label project and 20 smaller ones, with COPY.

    As ``benchmarks/export.py`` does, plus what the hot path reads: a submitted assignment
    behind every label, the HTML rendered (once per distinct text), and the progress counters
    recounted. Returns the big project's id.
    """
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from annotation.models import Assignment, ComparisonItem, ComparisonItemResponse, Label, Prompt, Response
    from annotation.progress import progress_recount
    from annotation.rendering import render_markdown
    from annotation.services import project_create
    from annotation.tallies import label_tallies_rebuild

    rendered = [
        (
            copy_escape(json.dumps([render_markdown(m["content"]) for m in json.loads(_unescape(conversation))])),
            copy_escape(render_markdown(_unescape(chosen))),
            copy_escape(render_markdown(_unescape(rejected))),
        )
        for conversation, chosen, rejected in dialogues
    ]
    scale_annotators = list(User.objects.filter(id__in=annotator_ids[:SCALE_ANNOTATORS]).order_by("id"))
    models = (Prompt, Response, ComparisonItem, ComparisonItemResponse, Assignment, Label)

    def one_project(name: str, *, items: int, labels: int, members) -> int:
        project = project_create(name=name, labels_per_item=LABELS_PER_ITEM, annotators=members)
        ids = [user.id for user in members][:SCALE_ANNOTATORS]
        with connection.cursor() as cursor:
            base = {}
            for model in models:
                cursor.execute(f"SELECT coalesce(max(id), 0) FROM {model._meta.db_table}")
                base[model] = cursor.fetchone()[0]
            prompts = Copier(cursor, Prompt, ["id", "project_id", "external_id", "conversation", "conversation_html",
                                              "metadata", "created_at"])
            responses = Copier(cursor, Response, ["id", "prompt_id", "text", "html", "model_name", "metadata", "created_at"],
                               parents=(prompts,))
            item_rows = Copier(cursor, ComparisonItem, ["id", "project_id", "prompt_id", "label_count", "created_at"],
                               parents=(prompts,))
            slots = Copier(cursor, ComparisonItemResponse, ["id", "item_id", "response_id", "slot"],
                           parents=(item_rows, responses))
            assignments = Copier(cursor, Assignment, ["id", "item_id", "annotator_id", "status", "display_order",
                                                      "expires_at", "skip_reason", "created_at", "finished_at"],
                                 parents=(item_rows,))
            label_rows = Copier(cursor, Label, [
                "id", "item_id", "annotator_id", "assignment_id", "client_id", "ranking", "is_tie", "both_bad",
                "strength", "rationale", "ratings", "flags", "seconds_spent", "display_order", "created_at",
            ], parents=(item_rows, assignments))
            created = "2026-01-05T09:00:00+00:00"
            written = 0
            for index in range(items):
                conversation, chosen, rejected = dialogues[index % len(dialogues)]
                html_conversation, html_chosen, html_rejected = rendered[index % len(dialogues)]
                prompt_id, item_id = base[Prompt] + index + 1, base[ComparisonItem] + index + 1
                first, second = base[Response] + 2 * index + 1, base[Response] + 2 * index + 2
                prompts.row(f"{prompt_id}\t{project.id}\ts-{index}\t{conversation}\t{html_conversation}\t{{}}\t{created}\n")
                responses.row(f"{first}\t{prompt_id}\t{chosen}\t{html_chosen}\tmodel-a\t{{}}\t{created}\n")
                responses.row(f"{second}\t{prompt_id}\t{rejected}\t{html_rejected}\tmodel-b\t{{}}\t{created}\n")
                on_item = min(LABELS_PER_ITEM, labels - written)
                item_rows.row(f"{item_id}\t{project.id}\t{prompt_id}\t{on_item}\t{created}\n")
                slot_base = base[ComparisonItemResponse] + 2 * index
                slots.row(f"{slot_base + 1}\t{item_id}\t{first}\t0\n{slot_base + 2}\t{item_id}\t{second}\t1\n")
                for k in range(on_item):
                    number = written + 1
                    assignment_id, label_id = base[Assignment] + number, base[Label] + number
                    annotator = ids[(LABELS_PER_ITEM * index + k) % len(ids)]
                    order = f"[{first}, {second}]" if number % 2 else f"[{second}, {first}]"
                    assignments.row(f"{assignment_id}\t{item_id}\t{annotator}\tsubmitted\t{order}\t{created}\t\t"
                                    f"{created}\t{created}\n")
                    label_rows.row(f"{label_id}\t{item_id}\t{annotator}\t{assignment_id}\t{uuid.UUID(int=label_id)}\t"
                                   f"[[{first}], [{second}]]\tf\tf\t2\t\t{{}}\t[]\t4.5\t{order}\t{created}\n")
                    written += 1
            for copier in (slots, label_rows):
                copier.flush()
            for model in models:
                table = model._meta.db_table
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        with transaction.atomic():
            progress_recount(project=project)
        return project.id

    big = one_project("Scale", items=responses // 2, labels=labels, members=scale_annotators)
    for number in range(SCALE_OTHER_PROJECTS):
        one_project(f"Other {number}", items=responses // 200, labels=labels // 80, members=scale_annotators)
    # The benchmark's own annotators join the big project, to label its open part.
    from annotation.models import Project

    Project.objects.get(id=big).annotators.add(*User.objects.filter(id__in=annotator_ids))
    # In production labels are folded into the projects' tallies as they arrive
    # (annotation.tallies); COPY goes around that, so count them once, as they would stand,
    # as an operator does after a bulk load (manage.py rebuild_label_tallies).
    label_tallies_rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()
    return big


# --- Clients ----------------------------------------------------------------------------

class Client:
    def __init__(self, port: int, token: str | None = None, session: str | None = None):
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        if session:
            self.headers["Cookie"] = f"sessionid={session}"

    def call(self, method: str, path: str, body=None) -> tuple[int, dict, float]:
        """One request; the time includes one retry on a fresh connection if the kept-alive one
        was closed by the server meanwhile (gunicorn's keep-alive is 2 s; annotators think
        longer), as a browser does. Status 599: no answer at all."""
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=json.dumps(body) if body is not None else None,
                                        headers=self.headers)
                response = self.connection.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException) as error:
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2 or isinstance(error, TimeoutError):  # a slow answer is not retried
                    return 599, {}, time.perf_counter() - started
        elapsed = time.perf_counter() - started
        is_json = response.getheader("Content-Type", "").startswith("application/json")
        return response.status, (json.loads(payload) if payload and is_json else {}), elapsed


class Tally:
    """What the clients saw, merged under a lock at the end of each client's run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.timeline: list[tuple[float, str, float]] = []  # (wall-clock start, endpoint, seconds) of each request
        self.errors: dict[str, int] = defaultdict(int)
        self.labels = 0
        self.early_done = 0
        self.acknowledged: list[tuple[str, int, str]] = []  # (token, label id, client_id)

    def merge(self, other: "Tally") -> None:
        with self.lock:
            for name, samples in other.latency.items():
                self.latency[name].extend(samples)
            self.timeline.extend(other.timeline)
            for name, count in other.errors.items():
                self.errors[name] += count
            self.labels += other.labels
            self.early_done += other.early_done
            self.acknowledged.extend(other.acknowledged)


def annotate(*, port: int, token: str, project_id: int, stop_at: float, think_mean: float, tally: Tally,
             rng: random.Random, separate_next: bool = False) -> None:
    """One annotator: lease, (think), submit, until ``stop_at``. The project never runs dry,
    so a null assignment is an annotator told "done" early.

    As the workbench does, each submit asks for the next item too (``next``), so a label is
    one round trip; only the first lease (and one after an error) is a next-item call. With
    ``separate_next`` every label is next-item then submit, two round trips (the loop the
    issue measured)."""
    client, own = Client(port, token), Tally()
    assignment = None
    if think_mean:
        # Annotators arrive spread over the first mean think time, as a team's day starts: all 64
        # first leases at the same instant are the same kind of self-made stampede as the end's.
        time.sleep(rng.uniform(0, think_mean))
    while time.perf_counter() < stop_at:
        if assignment is None:
            status, body, elapsed = client.call("POST", f"/api/projects/{project_id}/next-item/", {})
            own.latency["next-item"].append(elapsed)
            own.timeline.append((time.time() - elapsed, "next-item", elapsed))
            if status != 200:
                own.errors["next-item"] += 1
                time.sleep(0.5)
                continue
            assignment = body.get("assignment")
            if assignment is None:
                own.early_done += 1
                break
        if think_mean:
            think = rng.expovariate(1 / think_mean)
            if time.perf_counter() + think >= stop_at:
                # Cutting the thought short at stop_at would send every thinking annotator's
                # submit at the same instant: a stampede of the benchmark's own making, which
                # was the whole of the submit p99 measured before. The lease simply lapses.
                break
            time.sleep(think)
        client_id = str(uuid.uuid4())
        payload = {"choice": rng.choice("AB"), "client_id": client_id, "seconds_spent": 1.0}
        if not separate_next:
            payload["next"] = {"exclude": []}
        status, body, elapsed = client.call("POST", f"/api/assignments/{assignment['id']}/submit/", payload)
        own.latency["submit"].append(elapsed)
        own.timeline.append((time.time() - elapsed, "submit", elapsed))
        assignment = None
        if status in (200, 201):
            own.labels += status == 201
            own.acknowledged.append((token, body["label"]["id"], client_id))
            if not separate_next:
                assignment = body["next"]["assignment"]
                if assignment is None:
                    own.early_done += 1
                    break
        else:
            own.errors["submit"] += 1
    tally.merge(own)


def run_annotators(*, port: int, tokens: list[str], project_id: int, seconds: float, think_mean: float,
                   separate_next: bool = False) -> dict:
    tally = Tally()
    stop_at = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=annotate, kwargs=dict(port=port, token=token, project_id=project_id, stop_at=stop_at,
                                                      think_mean=think_mean, tally=tally, rng=random.Random(index),
                                                      separate_next=separate_next))
        for index, token in enumerate(tokens)
    ]
    began = time.perf_counter()
    for index, thread in enumerate(threads):
        thread.start()
        if think_mean:
            time.sleep(think_mean / len(threads))  # arrivals spread over one think time, not a stampede
    for thread in threads:
        thread.join()
    tally.elapsed = time.perf_counter() - began
    return tally


def latency_summary(samples: list[float]) -> dict:
    return {"count": len(samples), "p50_ms": percentile(samples, 0.50) * 1000, "p99_ms": percentile(samples, 0.99) * 1000}


def baseline(*, port: int, tokens: list[str], seconds: float) -> dict:
    samples, lock = [], threading.Lock()
    stop_at = time.perf_counter() + seconds

    def loop(token):
        client, own = Client(port, token), []
        while time.perf_counter() < stop_at:
            own.append(client.call("GET", "/api/projects/")[2])
        with lock:
            samples.extend(own)

    threads = [threading.Thread(target=loop, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"clients": len(tokens), "per_second": len(samples) / seconds, **latency_summary(samples)}


# --- Checks -----------------------------------------------------------------------------

def verify_database(*, acknowledged: list[tuple[str, int, str]]) -> dict:
    """Every acknowledged label stored once with its client_id; no item over-labelled; counters right."""
    from django.db import connection
    from django.db.models import Count, F

    from annotation import progress
    from annotation.models import AnnotatorProgress, ComparisonItem, Label, Project
    from annotation.selectors import annotator_progress

    connection.close()  # a fresh connection sees everything the server committed
    stored = dict(Label.objects.filter(id__in=[label_id for _, label_id, _ in acknowledged]).values_list("id", "client_id"))
    missing = sum(1 for _, label_id, client_id in acknowledged if str(stored.get(label_id)) != client_id)
    duplicates = Label.objects.values("item_id", "annotator_id").annotate(n=Count("id")).filter(n__gt=1).count()
    duplicated_client_ids = Label.objects.values("annotator_id", "client_id").annotate(n=Count("id")).filter(n__gt=1).count()
    over_labelled = (
        ComparisonItem.objects.annotate(actual=Count("labels"))
        .filter(actual__gt=F("project__labels_per_item")).count()
    )
    miscounted = ComparisonItem.objects.annotate(actual=Count("labels")).exclude(label_count=F("actual")).count()
    wrong_progress = 0
    for row in AnnotatorProgress.objects.select_related("project", "annotator"):
        recount = progress.annotator_counts(project=row.project, annotator_id=row.annotator_id)
        shown = annotator_progress(project=row.project, annotator=row.annotator)
        expected_remaining = progress.unfinished_count(project=row.project) - recount["seen_unfinished"]
        if (shown["done_total"], shown["remaining"]) != (recount["done_total"], expected_remaining):
            wrong_progress += 1
    return {
        "acknowledged": len(acknowledged),
        "acknowledged_distinct": len({label_id for _, label_id, _ in acknowledged}),
        "missing": missing,
        "duplicated_item_annotator": duplicates,
        "duplicated_client_id": duplicated_client_ids,
        "over_labelled_items": over_labelled,
        "miscounted_items": miscounted,
        "wrong_progress_rows": wrong_progress,
        "projects": Project.objects.count(),
    }


def timed_in_process(call, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return latency_summary(samples)


# --- Output -----------------------------------------------------------------------------

RESULTS: list[dict] = []


def verdict(scenario: str, target: str, measured: str, passed: bool, **details) -> None:
    RESULTS.append({"scenario": scenario, "target": target, "measured": measured, "pass": passed, **details})
    print(f"  [{'PASS' if passed else 'FAIL'}] {scenario}: target {target}; measured {measured}", flush=True)


def scenario_throughput(args, data) -> None:
    print(f"\n1. Throughput: {args.throughput_clients} annotators looping submit (with next) for {args.seconds:.0f} s")
    tally = run_annotators(port=args.port, tokens=data["tokens"][: args.throughput_clients],
                           project_id=data["project_id"], seconds=args.seconds, think_mean=0)
    rate = tally.labels / tally.elapsed
    errors = sum(tally.errors.values())
    sub = latency_summary(tally.latency["submit"])
    print(f"     submit+next p50 {sub['p50_ms']:.0f} ms p99 {sub['p99_ms']:.0f} ms; errors {errors}")
    verdict("throughput", ">= 80 labels/s, 0 errors", f"{rate:.1f} labels/s, {errors} errors",
            rate >= 80 and errors == 0, labels_per_second=rate, errors=errors, submit_and_next=sub)
    if args.split_seconds:
        # For comparison, not a target: the same annotators with two round trips per label.
        split = run_annotators(port=args.port, tokens=data["tokens"][: args.throughput_clients],
                               project_id=data["project_id"], seconds=args.split_seconds, think_mean=0,
                               separate_next=True)
        nxt, sub = latency_summary(split.latency["next-item"]), latency_summary(split.latency["submit"])
        split_rate = split.labels / split.elapsed
        RESULTS.append({"scenario": "throughput, next-item and submit as two calls (not a target)",
                        "labels_per_second": split_rate, "next_item": nxt, "submit": sub,
                        "errors": sum(split.errors.values())})
        print(f"     for comparison, next-item then submit (two round trips): {split_rate:.1f} labels/s; next-item "
              f"p50 {nxt['p50_ms']:.0f} ms p99 {nxt['p99_ms']:.0f} ms, submit p50 {sub['p50_ms']:.0f} ms "
              f"p99 {sub['p99_ms']:.0f} ms; errors {sum(split.errors.values())}")


def scenario_think(args, data, *, project_id: int, name: str, limit_ms: float, seconds: float) -> Tally:
    print(f"\n{name}: {args.think_clients} annotators, exponential think time mean {args.think_mean:.0f} s, "
          f"{seconds:.0f} s")
    tally = run_annotators(port=args.port, tokens=data["tokens"][: args.think_clients], project_id=project_id,
                           seconds=seconds, think_mean=args.think_mean)
    errors = sum(tally.errors.values())
    # Each submit also leases the next item (one round trip per label, as the workbench does);
    # next-item proper is each annotator's first lease.
    for endpoint, shown in (("next-item", "next-item"), ("submit", "submit+next")):
        summary = latency_summary(tally.latency[endpoint])
        verdict(f"{name} {shown}", f"p99 < {limit_ms:.0f} ms",
                f"p99 {summary['p99_ms']:.0f} ms (p50 {summary['p50_ms']:.0f} ms, {summary['count']} requests)",
                summary["p99_ms"] < limit_ms, **summary)
    verdict(f"{name} errors and early done", "0 errors, 0 told done early",
            f"{errors} errors, {tally.early_done} told done early, {tally.labels} labels",
            errors == 0 and tally.early_done == 0, errors=errors, early_done=tally.early_done, labels=tally.labels)
    return tally


def scenario_soak(args, data) -> None:
    print(f"\n4. Soak: {args.soak_clients} annotators looping for {args.soak_seconds:.0f} s, then the database is checked")
    tally = run_annotators(port=args.port, tokens=data["tokens"][: args.soak_clients], project_id=data["project_id"],
                           seconds=args.soak_seconds, think_mean=0)
    errors = sum(tally.errors.values())
    check = verify_database(acknowledged=tally.acknowledged)
    print(f"     {tally.labels} labels ({tally.labels / tally.elapsed:.1f}/s), {errors} errors; {check}")
    bad = sum(check[key] for key in ("missing", "duplicated_item_annotator", "duplicated_client_id",
                                     "over_labelled_items", "miscounted_items", "wrong_progress_rows"))
    verdict("soak", "every acknowledged label stored once, no item over-labelled, 0 errors",
            f"{check['acknowledged']} acknowledged, {check['missing']} missing, "
            f"{check['duplicated_item_annotator']} duplicated, {check['over_labelled_items']} over-labelled, "
            f"{check['miscounted_items']} miscounted, {check['wrong_progress_rows']} wrong progress rows, {errors} errors",
            bad == 0 and errors == 0, errors=errors, labels=tally.labels, **check)


def admin_reads(*, port: int, data: dict, project_id: int, stop_at: float) -> dict:
    """An admin opening Results (HTML, then the JSON calls results.js makes first) and paging labels."""
    page = Client(port, session=data["admin_session"])
    api = Client(port, token=data["admin_token"])
    # What results.js and annotator_quality.js ask for on load (the Annotators card asks for its
    # tally figures first, details=false, and fills in the rest with the full report after).
    first_screen = [(name, f"/api/projects/{project_id}/{path}") for name, path in (
        ("scores", "scores/"), ("training-runs", "training-runs/"), ("model-versions", "model-versions/"),
        ("leaderboard", "leaderboard/"), ("annotator-report quick", "annotator-report/?details=false"),
        ("exclusion-changes", "exclusion-changes/"), ("training-policy", "training-policy/"),
    )]
    # Measured and printed, not a target: the card's second call, after the first screen.
    after_first_screen = [("annotator-report full", f"/api/projects/{project_id}/annotator-report/")]
    samples: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, set] = defaultdict(set)
    cursor = f"/api/projects/{project_id}/labels/?page_size=100"
    while time.perf_counter() < stop_at:
        status, _, elapsed = page.call("GET", f"/projects/{project_id}/results/")
        samples["results-html"].append(elapsed)
        statuses["results-html"].add(status)
        for label, path in first_screen:
            status, _, elapsed = api.call("GET", path)
            name = "results-json " + label
            samples[name].append(elapsed)
            statuses[name].add(status)
        for label, path in after_first_screen:
            status, _, elapsed = api.call("GET", path)
            name = "after first screen " + label
            samples[name].append(elapsed)
            statuses[name].add(status)
        for _ in range(5):
            status, body, elapsed = api.call("GET", cursor)
            samples["labels-api"].append(elapsed)
            statuses["labels-api"].add(status)
            nxt = body.get("next") if status == 200 else None
            cursor = nxt[nxt.index("/api/"):] if nxt else f"/api/projects/{project_id}/labels/?page_size=100"
        time.sleep(0.5)
    # Every sample in the JSON (a few dozen per call): with this few, p99 is the slowest one, worth seeing.
    return {
        name: {**latency_summary(values), "statuses": sorted(statuses[name]), "samples_ms": [round(v * 1000, 1) for v in values]}
        for name, values in samples.items()
    }


def scenario_scale(args, data) -> None:
    from django.contrib.auth.models import User

    from annotation.models import Project
    from annotation.selectors import annotator_progress

    print(f"\n3. Scale: building {args.scale_responses:,} responses / {args.scale_labels:,} labels and "
          f"{SCALE_OTHER_PROJECTS} other projects with COPY ...", flush=True)
    started = time.perf_counter()
    annotator_ids = list(User.objects.filter(username__startswith="bench").order_by("id").values_list("id", flat=True))
    project_id = build_scale(dialogues=data["dialogues"], annotator_ids=annotator_ids,
                             responses=args.scale_responses, labels=args.scale_labels)
    print(f"     built in {time.perf_counter() - started:.0f} s", flush=True)
    freeze_client_heap()
    # The annotators first, alone: the Results page's heavier calls would otherwise take the
    # server's threads and blur what the hot path itself costs at this size.
    scenario_think(args, data, project_id=project_id, name="3. scale", limit_ms=100, seconds=args.scale_seconds)
    print(f"     then an admin alone: Results page and labels API, {args.scale_admin_seconds:.0f} s", flush=True)
    reads = admin_reads(port=args.port, data=data, project_id=project_id,
                        stop_at=time.perf_counter() + args.scale_admin_seconds)
    for name, summary in sorted(reads.items()):
        if name.startswith("after first screen"):
            RESULTS.append({"scenario": f"3. scale {name} (not a target)", **summary})
            print(f"     {name} (not a target): p99 {summary['p99_ms']:.0f} ms (p50 {summary['p50_ms']:.0f} ms, "
                  f"{summary['count']} requests, HTTP {summary['statuses']})")
            continue
        ok = summary["p99_ms"] < 100 and summary["statuses"] == [200]
        verdict(f"3. scale {name}", "p99 < 100 ms", f"p99 {summary['p99_ms']:.0f} ms (p50 {summary['p50_ms']:.0f} ms, "
                f"{summary['count']} requests, HTTP {summary['statuses']})", ok, **summary)
    # Progress has no endpoint of its own: every next-item, submit and skip answers with it.
    # Timed here on its own, in-process, for the annotator with the most labels.
    project = Project.objects.get(id=project_id)
    heaviest = User.objects.get(id=annotator_ids[0])
    summary = timed_in_process(lambda: annotator_progress(project=project, annotator=heaviest), 200)
    verdict("3. scale progress (in-process, part of every next-item/submit)", "p99 < 100 ms",
            f"p99 {summary['p99_ms']:.1f} ms (p50 {summary['p50_ms']:.1f} ms)", summary["p99_ms"] < 100, **summary)


def freeze_client_heap() -> None:
    """Keep this process's garbage collector out of the measured latencies.

    The clients time each request with a wall clock, so a full collection of the benchmark's
    own heap (the dialogues, the data prepared, ~80,000 objects: 35 ms idle, more on a busy
    machine) inside a request was counted as server time; it showed as 60-130 ms stalls spread
    over every endpoint. ``gc.freeze`` leaves what is alive now out of later collections.
    """
    gc.collect()
    gc.freeze()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", nargs="+", default=["throughput", "think", "soak"],
                        choices=["throughput", "think", "soak"])
    parser.add_argument("--scale", action="store_true", help="also build the 1 M / 500 k database and measure on it")
    parser.add_argument("--throughput-clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the throughput run")
    parser.add_argument("--split-seconds", type=float, default=20.0,
                        help="then the two-round-trip loop (next-item, submit) for comparison; 0 to leave it out")
    parser.add_argument("--think-clients", type=int, default=64)
    parser.add_argument("--think-mean", type=float, default=8.0, help="mean think time, seconds (exponential)")
    parser.add_argument("--think-seconds", type=float, default=120.0, help="length of the think-time run")
    parser.add_argument("--soak-clients", type=int, default=64)
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--scale-seconds", type=float, default=120.0)
    parser.add_argument("--scale-admin-seconds", type=float, default=30.0)
    parser.add_argument("--scale-responses", type=int, default=SCALE_RESPONSES, help="(smaller for a quick try)")
    parser.add_argument("--scale-labels", type=int, default=SCALE_LABELS)
    parser.add_argument("--prompts", type=int, default=12000, help="items in the project (the queue never runs dry)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (scripts/run: 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (scripts/run: 4)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()

    server_url = server_url_from_env()
    database_url = recreate_database(server_url, BENCH_DB)
    env = bench_environment(database_url)
    os.environ.update(env)
    import django

    django.setup()
    most = max(args.throughput_clients, args.think_clients, args.soak_clients)
    dialogues = [d for d in load_dialogues() if importable(d)]
    data = prepare_data(annotators=most, prompts=args.prompts, dialogues=dialogues)
    data["dialogues"] = dialogues
    print(f"Imported {args.prompts:,} HH-RLHF items ({len(dialogues):,} distinct dialogues) in "
          f"{data['import_seconds']:.0f} s; {LABELS_PER_ITEM} labels wanted per item")
    from django.db import connection

    connection.close()
    freeze_client_heap()

    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"],
        cwd=REPO, env=env,
    )
    # Beat's fold of settled labels into the tallies, which keeps the Results page's reads from writing.
    from django.conf import settings

    # At a lower CPU priority than the web server, as scripts/run starts the worker and beat.
    folder = subprocess.Popen(
        ["nice", "-n", "10", sys.executable, "manage.py", "fold_label_tallies",
         "--every", str(settings.LABEL_TALLY_FOLD_SECONDS)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL,
    )
    load = os.getloadavg()
    try:
        wait_for_server(args.port, server)
        print(f"gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, {os.cpu_count()} CPU cores, "
              f"load average before {load[0]:.1f}")
        base = baseline(port=args.port, tokens=data["tokens"][:16], seconds=5)
        print(f"Baseline GET /api/projects/ (16 clients): {base['per_second']:.0f} req/s, p50 {base['p50_ms']:.1f} ms, "
              f"p99 {base['p99_ms']:.1f} ms")
        if "throughput" in args.scenarios:
            scenario_throughput(args, data)
        if "think" in args.scenarios:
            scenario_think(args, data, project_id=data["project_id"], name="2. think time", limit_ms=150,
                           seconds=args.think_seconds)
        if "soak" in args.scenarios:
            scenario_soak(args, data)
        if args.scale:
            scenario_scale(args, data)
        print("\n5. Workbench (item switch in Chromium): measured by benchmarks/workbench.py, not here.")
    finally:
        folder.terminate()
        server.terminate()
        server.wait(timeout=30)
        folder.wait(timeout=30)
        if args.json_out:
            args.json_out.write_text(json.dumps({
                "machine": {"cpus": os.cpu_count(), "load_before": load, "load_after": os.getloadavg()},
                "gunicorn": {"workers": args.workers, "threads": args.threads},
                "baseline": locals().get("base"),
                "args": {key: str(value) for key, value in vars(args).items()},
                "results": RESULTS,
            }, indent=2, default=str))
        from django.db import connection as django_connection

        django_connection.close()
        recreate_database(server_url, BENCH_DB, drop_only=True)
    targets = [result for result in RESULTS if "pass" in result]  # not the comparison figures
    failed = [result["scenario"] for result in targets if not result["pass"]]
    print(f"\n{len(targets) - len(failed)} PASS, {len(failed)} FAIL" + (f": {', '.join(failed)}" if failed else ""))


if __name__ == "__main__":
    main()
