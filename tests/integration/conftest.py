"""A real Celery worker process against the test PostgreSQL database and Redis.

These tests need the real servers; ``scripts/test`` points DATABASE_URL at
PostgreSQL and CELERY_BROKER_URL at Redis. Run any other way, they skip with a
message saying so (under scripts/test a missing server fails them instead).
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from config.celery import app as celery_app
from tests.real_services import require_postgresql, require_redis

REPO = Path(__file__).resolve().parents[2]


def require_real_services():
    require_postgresql("A real celery worker sharing the test database")
    require_redis("A real celery worker")


@pytest.fixture
def tiny_backbone(tmp_path_factory):
    from training.ml.model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-backbone"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ChildProcess:
    """A subprocess of the product (worker, beat, web) with its output in a log file."""

    def __init__(self, command: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, exactly like an OOM kill or a lost machine."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class WorkerProcess(ChildProcess):
    """A ``celery worker`` subprocess consuming all three queues (solo pool: one process)."""

    def __init__(self, env: dict, log_path: Path):
        super().__init__(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "-Q", "default,training,scoring", "--hostname", f"integration-{os.getpid()}-{log_path.stem}@%h",
             "--without-heartbeat", "--without-gossip", "--without-mingle"],
            env, log_path,
        )


class BeatProcess(ChildProcess):
    """``celery beat``: sends the reconciler's tick every TRAINING_RECONCILE_SECONDS."""

    def __init__(self, env: dict, log_path: Path):
        schedule = log_path.with_suffix(".schedule")
        super().__init__(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
            env, log_path,
        )


class WebProcess(ChildProcess):
    """The web app under gunicorn on a free port, as ``scripts/run`` serves it."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "1",
             "--threads", "4", "--access-logfile", "-"],
            env, log_path,
        )
        wait_for(self._answers, timeout=60, what="gunicorn to answer", log=self.log)

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/api/schema/", timeout=2)
        except urllib.error.HTTPError:
            return True  # it answered
        except OSError:
            return False
        return True


class RedisServer:
    """A redis-server of the test's own on a free port, to stop and start as an outage."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        """SIGKILL: the broker vanishes with every message it held, like a crashed or restarted host."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def integration_env(transactional_db, tiny_backbone, tmp_path, settings):
    """Environment for child processes: the test database, a tiny backbone, fast training."""
    require_real_services()
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    settings.MODEL_STORE_DIR = tmp_path / "models"
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REWARD_BACKBONE_PATH": tiny_backbone,
        "MODEL_STORE_DIR": str(settings.MODEL_STORE_DIR),
        "RLHF_VAR_DIR": str(tmp_path / "var"),
        "REWARD_EPOCHS": "8",
        "REWARD_BATCH_SIZE": "4",
        "REWARD_LEARNING_RATE": "5e-4",
        "HF_HUB_OFFLINE": "1",
        "PROMOTION_MIN_EVALUATION_PAIRS": "1",
    }


@pytest.fixture
def start_process(integration_env, tmp_path):
    """Start product processes (``WorkerProcess``, ``BeatProcess``, ``WebProcess``) against the
    test database; each call may override environment variables. All are stopped at the end."""
    celery_app.control.purge()  # leftovers from an earlier, interrupted run
    started = []

    def start(kind, **env_overrides):
        child = kind({**integration_env, **env_overrides}, tmp_path / f"{kind.__name__}-{len(started)}.log")
        started.append(child)
        return child

    try:
        yield start
    finally:
        for child in reversed(started):
            child.stop()
        celery_app.control.purge()
        # The children's connections must be gone before pytest-django flushes the test database.
        connection.close()


@pytest.fixture
def start_worker(start_process):
    """Start celery workers against the test database; each call may override environment variables."""
    return lambda **env_overrides: start_process(WorkerProcess, **env_overrides)


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def start() -> RedisServer:
        servers.append(RedisServer(tmp_path))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def wait_for(condition, *, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}.\n--- worker log ---\n{log()[-6000:]}")
