"""What the benchmark scripts share: their own PostgreSQL database, a started server, percentiles."""
import http.client
import os
import subprocess
import time


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile by rank (nearest rank below); NaN without samples."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def recreate_database(server_url: str, name: str, *, drop_only: bool = False) -> str:
    """Drop database ``name`` on ``server_url``'s server and create it empty (unless ``drop_only``); its URL."""
    import psycopg2

    base = server_url.rsplit("/", 1)[0]
    connection = psycopg2.connect(base + "/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if not drop_only:
            cursor.execute(f"CREATE DATABASE {name}")
    connection.close()
    return base + "/" + name


def server_url_from_env() -> str:
    """The PostgreSQL server of DATABASE_URL (default: the local one); SystemExit for anything else."""
    server_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rlhf")
    if not server_url.startswith("postgres"):
        raise SystemExit("This benchmark measures the production setup: set DATABASE_URL to a postgres:// URL.")
    return server_url


def bench_environment(database_url: str, **extra: str) -> dict:
    """The environment a benchmark runs the app in: its own database, no broker, no retraining, offline."""
    return {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "0", "CELERY_BROKER_URL": "memory://", "RETRAIN_EVERY_N_LABELS": "0",
            "HF_HUB_OFFLINE": "1", **extra}


def wait_for_server(port: int, process: subprocess.Popen) -> None:
    """Until the app on 127.0.0.1:``port`` serves its login page; SystemExit if it dies or takes 60 s."""
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
