"""Concurrent simulated annotators against the real server: labels/s and latency.

Starts gunicorn on a fresh PostgreSQL database, creates a project and N annotators
with API tokens, then each simulated annotator loops: POST next-item, POST submit
(the two calls behind every item switch in the workbench). Prints labels/s and
p50/p99 latency of the pair for each N, next to a baseline measured in the same run
on the same server: the cheapest authenticated endpoint (GET /api/projects/), i.e.
what the framework costs before any labelling logic.

    .venv/bin/python benchmarks/annotators.py                 # N = 1, 16, 64; 10 s each
    .venv/bin/python benchmarks/annotators.py --clients 4 --seconds 5

Needs PostgreSQL at 127.0.0.1:5432 (DATABASE_URL's server); creates and drops the
database ``rlhf_bench``. Sends traffic only to 127.0.0.1.
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "rlhf_bench"
sys.path.insert(0, str(REPO))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def recreate_database(server_url: str) -> str:
    import psycopg2

    connection = psycopg2.connect(server_url.rsplit("/", 1)[0] + "/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {BENCH_DB}")
    connection.close()
    return server_url.rsplit("/", 1)[0] + "/" + BENCH_DB


def prepare_data(*, annotators: int, prompts: int) -> tuple[int, list[str]]:
    """Migrate, create a project with ``prompts`` items and ``annotators`` users; return tokens."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.services import project_create, project_import_jsonl

    call_command("migrate", verbosity=0)
    users = [User.objects.create_user(f"bench{index}", password="bench-password") for index in range(annotators)]
    project = project_create(name="Benchmark", labels_per_item=3, annotators=users)
    lines = (
        json.dumps({
            "external_id": f"b{index}",
            "conversation": [{"role": "user", "content": f"Question number {index}: explain **something** useful."}],
            "responses": [
                {"text": f"Answer A for {index}.\n\n```python\nprint({index})\n```", "model": "m1"},
                {"text": f"Answer B for {index}, with a list:\n\n- one\n- two", "model": "m2"},
            ],
        })
        for index in range(prompts)
    )
    project_import_jsonl(project=project, lines=lines, source="bench.jsonl")
    return project.id, [Token.objects.create(user=user).key for user in users]


class Client:
    def __init__(self, port: int, token: str):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        self.connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        return response.status, (json.loads(payload) if payload else {})


def run_clients(*, port: int, tokens: list[str], project_id: int, seconds: float, labelling: bool) -> dict:
    latencies: list[float] = []
    labels = 0
    errors = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def annotate(token: str):
        nonlocal labels, errors
        client = Client(port, token)
        own_latencies, own_labels, own_errors = [], 0, 0
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            if labelling:
                status, body = client.call("POST", f"/api/projects/{project_id}/next-item/", {})
                assignment = body.get("assignment") if status == 200 else None
                if assignment is None:
                    own_errors += status != 200
                    break
                choice = "AB"[own_labels % 2]
                status, _ = client.call(
                    "POST", f"/api/assignments/{assignment['id']}/submit/",
                    {"choice": choice, "client_id": str(uuid.uuid4()), "seconds_spent": 1.0},
                )
                own_labels += status == 201
                own_errors += status != 201
            else:
                status, _ = client.call("GET", "/api/projects/")
                own_errors += status != 200
                own_labels += 1
            own_latencies.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own_latencies)
            labels += own_labels
            errors += own_errors

    threads = [threading.Thread(target=annotate, args=(token,)) for token in tokens]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {
        "per_second": labels / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
        "count": labels,
    }


def wait_for_server(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited during start-up")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/accounts/login/")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    args = parser.parse_args()

    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rlhf")
    if not server_url.startswith("postgres"):
        raise SystemExit("This benchmark measures the production setup: set DATABASE_URL to a postgres:// URL.")
    database_url = recreate_database(server_url)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings",
           "RETRAIN_EVERY_N_LABELS": "0", "CELERY_BROKER_URL": "memory://", "DJANGO_DEBUG": "0",
           "HF_HUB_OFFLINE": "1"}
    os.environ.update(env)
    most = max(args.clients)
    # Enough items that the largest run never drains the queue (3 labels per item).
    project_id, tokens = prepare_data(annotators=most, prompts=max(2000, most * 60))

    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--threads", str(args.threads), "--log-level", "warning"],
        cwd=REPO, env=env,
    )
    try:
        wait_for_server(args.port, server)
        print(f"gunicorn {args.workers} workers x {args.threads} threads, PostgreSQL, {os.cpu_count()} CPU cores; "
              f"{args.seconds:.0f} s per row\n")
        print(f"{'N':>4}  {'labels/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  {'errors':>6}   |  baseline GET /api/projects/: "
              f"{'req/s':>7}  {'p50 ms':>7}  {'p99 ms':>7}")
        for count in args.clients:
            baseline = run_clients(port=args.port, tokens=tokens[:count], project_id=project_id,
                                   seconds=args.seconds / 2, labelling=False)
            result = run_clients(port=args.port, tokens=tokens[:count], project_id=project_id,
                                 seconds=args.seconds, labelling=True)
            print(f"{count:>4}  {result['per_second']:>9.1f}  {result['p50_ms']:>8.1f}  {result['p99_ms']:>8.1f}  "
                  f"{result['errors']:>6}   |  {'':>29}{baseline['per_second']:>7.1f}  {baseline['p50_ms']:>7.1f}  "
                  f"{baseline['p99_ms']:>7.1f}")
        print("\nlabels/s: submitted labels per second across all clients; latency: next-item + submit, "
              "i.e. one item switch without prefetch.")
    finally:
        server.terminate()
        server.wait(timeout=30)
        recreate_database(server_url)  # leave an empty database behind, not thousands of rows


if __name__ == "__main__":
    main()
