"""A background thread that keeps a long job's heartbeat fresh.

Progress callbacks only fire between optimizer steps; loading a backbone or
evaluating the champion can take minutes without one. The thread calls ``beat``
every TRAINING_HEARTBEAT_SECONDS, so a job whose worker was killed goes silent
and the reconciler can tell it from a slow one. ``beat`` is passed in (a service
writing the run's or the version's heartbeat), so this module depends on nothing.
"""
import logging
import threading
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, beat: Callable[[], None], *, name: str):
        self._beat_once = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{name}", daemon=True)

    def _beat(self) -> None:
        try:
            while not self._stop.wait(settings.TRAINING_HEARTBEAT_SECONDS):
                try:
                    self._beat_once()
                except DatabaseError as exc:
                    # A database blip must not silence the job for good: drop the
                    # broken connection and beat again next time.
                    logger.warning("Heartbeat failed, retrying: %s", exc)
                    connection.close()
        finally:
            connection.close()  # this thread's own database connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=30)
        return False
