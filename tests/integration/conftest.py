"""A real Celery worker process against the test PostgreSQL database and Redis.

These tests need the real servers; ``scripts/test`` points DATABASE_URL at
PostgreSQL and CELERY_BROKER_URL at Redis. Run any other way, they fail with a
message saying so rather than silently passing.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

REPO = Path(__file__).resolve().parents[2]


def require_real_services():
    if connection.vendor != "postgresql":
        pytest.fail("Integration tests need PostgreSQL: run them through scripts/test (DATABASE_URL=postgres://...).")
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("Integration tests need Redis: run them through scripts/test (CELERY_BROKER_URL=redis://...).")


@pytest.fixture
def tiny_backbone(tmp_path_factory):
    from training.ml.model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-backbone"))


class WorkerProcess:
    """A ``celery worker`` subprocess consuming all three queues (solo pool: one process)."""

    def __init__(self, env: dict, log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "-Q", "default,training,scoring", "--hostname", f"integration-{os.getpid()}@%h", "--without-heartbeat",
             "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

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


@pytest.fixture
def start_worker(transactional_db, tiny_backbone, tmp_path, settings):
    """Start workers against the test database; each call may override environment variables."""
    require_real_services()
    db = connection.settings_dict
    database_url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    settings.MODEL_STORE_DIR = tmp_path / "models"
    base_env = {
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
    }
    celery_app.control.purge()  # leftovers from an earlier, interrupted run
    workers = []

    def start(**env_overrides) -> WorkerProcess:
        worker = WorkerProcess({**base_env, **env_overrides}, tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            worker.stop()
        celery_app.control.purge()
        # The workers' connections must be gone before pytest-django flushes the test database.
        connection.close()


def wait_for(condition, *, timeout: float, what: str, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}.\n--- worker log ---\n{log()[-6000:]}")
