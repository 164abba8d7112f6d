"""A background thread that keeps a running training run's heartbeat fresh.

Progress callbacks only fire between optimizer steps; loading a backbone or
evaluating the champion can take minutes without one. The thread writes
``heartbeat_at`` every TRAINING_HEARTBEAT_SECONDS, so a run whose worker was
killed goes silent and ``training_runs_fail_stale`` can tell it from a slow one.
"""
import threading

from django.conf import settings
from django.db import connection

from training.services import training_run_heartbeat


class RunHeartbeat:
    def __init__(self, run_id: int):
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-run-{run_id}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.TRAINING_HEARTBEAT_SECONDS):
                training_run_heartbeat(run_id=self.run_id)
        finally:
            connection.close()  # this thread's own database connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=30)
        return False
