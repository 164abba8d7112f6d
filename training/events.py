"""Live updates for the Results page: server-sent events instead of polling.

No message bus is needed (the embedded mode has no Redis): a stream notices changes itself.
Every CHECK_SECONDS it reads the project's fingerprint (``results_fingerprint``: two one-row
indexed queries, a third while a new champion is still scoring) and sends it as an event
when it differs from the last one sent. The page refreshes on each event, and polls only
while it has no stream (frontend/static/frontend/results.js).

A stream holds one server thread (gunicorn gthread) for its whole life, so:

- a process holds at most EVENT_STREAMS_PER_PROCESS streams (``stream_slots``); past that
  the view answers 503 with Retry-After and the page keeps polling, trying again later;
- each stream ends after EVENT_STREAM_SECONDS with an ``end`` event and the page opens the
  next one at once: threads recycle, and a client that vanished without closing holds one
  at most that long (or until a heartbeat write fails);
- a comment line every HEARTBEAT_SECONDS keeps proxies from closing a quiet stream.

Between checks no transaction is open (autocommit; the view's work, atomic or not, is over
before the body is iterated): the thread's connection sits idle, never idle in a
transaction, so it blocks no TRUNCATE, migration or VACUUM. A database error ends the
stream; ``HttpResponse.close()`` then sends ``request_finished``, whose
``close_old_connections`` drops a broken connection before the thread serves anyone else.
"""
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.db.models import JSONField, OuterRef, Subquery

from annotation.models import Project
from training.models import ModelVersion, TrainingRun
from training.selectors import scores_version_for

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/event-stream"
# How often a stream reads the fingerprint: the delay between a change and the page knowing.
CHECK_SECONDS = 1.0
# Proxies (nginx: proxy_read_timeout 60 s) close a connection that stays silent too long.
HEARTBEAT_SECONDS = 15.0
# EventSource's own reconnection delay after a dropped connection (the page manages its
# reconnections itself, so this only matters to other clients).
CLIENT_RETRY_MS = 3000


def results_fingerprint(project_id: int) -> dict | None:
    """What the Results page shows that changes without the admin doing anything; None when the project is gone.

    The champion (which one, its scoring progress and retries), the version whose scores are
    shown, the newest model version, and the newest training run (status, progress, sends):
    only one run of a project is ever active, so the newest is the one that moves.
    Labels and imports are not in it: the page catches up on those when each new stream's
    first event refreshes it (every EVENT_STREAM_SECONDS).
    """
    runs = TrainingRun.objects.filter(project_id=OuterRef("pk")).order_by("-id")
    project = (
        Project.objects.filter(id=project_id)
        .only("id")
        .annotate(
            run_id=Subquery(runs.values("id")[:1]),
            run_status=Subquery(runs.values("status")[:1]),
            run_progress=Subquery(runs.values("progress")[:1], output_field=JSONField()),
            run_dispatch_attempts=Subquery(runs.values("dispatch_attempts")[:1]),
            latest_version=Subquery(
                ModelVersion.objects.filter(project_id=OuterRef("pk")).order_by("-version").values("version")[:1]
            ),
        )
        .first()
    )
    if project is None:
        return None
    champion = (
        ModelVersion.objects.filter(project_id=project_id, status=ModelVersion.Status.CHAMPION)
        .only("id", "version", "scored_at", "scoring_heartbeat_at", "scoring_attempts")
        .first()
    )
    shown = scores_version_for(project, champion=champion) if champion is not None else None
    return {
        "champion": None if champion is None else {
            "id": champion.id,
            "version": champion.version,
            "scored_at": champion.scored_at,
            # Every stored chunk of scores (and a failed attempt) moves it: the page's "scoring… n/N".
            "scoring_heartbeat_at": champion.scoring_heartbeat_at,
            "scoring_attempts": champion.scoring_attempts,
        },
        "scores_version": shown.version if shown is not None else None,
        "latest_version": project.latest_version,
        "run": None if project.run_id is None else {
            "id": project.run_id,
            "status": project.run_status,
            "progress": project.run_progress,
            "dispatch_attempts": project.run_dispatch_attempts,
        },
    }


class StreamSlots:
    """How many event streams this process holds, at most EVENT_STREAMS_PER_PROCESS.

    Per process, not per machine: gunicorn's workers share nothing, so the limit is set
    against one worker's threads (a stream left without a thread for ordinary requests
    would slow every annotator on that worker). The limit is read on every take, so a
    changed setting applies to the next stream.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._held = 0

    def take(self) -> bool:
        with self._lock:
            if self._held >= settings.EVENT_STREAMS_PER_PROCESS:
                return False
            self._held += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._held = max(0, self._held - 1)

    @property
    def held(self) -> int:
        return self._held


stream_slots = StreamSlots()


def busy_retry_after() -> int:
    """Seconds a refused client should wait: by then the oldest stream has ended."""
    return max(1, math.ceil(settings.EVENT_STREAM_SECONDS))


def _event(name: str, data) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, cls=DjangoJSONEncoder, separators=(',', ':'))}\n\n".encode()


class ResultsEventStream:
    """The body of one project's event stream: an iterator of bytes with ``close()``.

    ``close()`` gives the slot back. The WSGI server calls it through the response
    (``StreamingHttpResponse`` registers it) whether the body was read to its end, cut off
    by a client that went away, or never started, which a generator's ``finally`` alone
    would miss. ``clock`` and ``sleep`` are there for the tests.
    """

    def __init__(
        self,
        project_id: int,
        *,
        seconds: float,
        on_close: Callable[[], None] | None = None,
        check_every: float = CHECK_SECONDS,
        heartbeat_every: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._on_close = on_close
        self._events = self._generate(project_id, seconds, check_every, heartbeat_every, clock, sleep)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        return next(self._events)

    def close(self) -> None:
        self._events.close()
        self._give_back()

    def _give_back(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def _generate(self, project_id, seconds, check_every, heartbeat_every, clock, sleep) -> Iterator[bytes]:
        started = last_write = clock()
        sent = None
        prefix = f"retry: {CLIENT_RETRY_MS}\n\n".encode()
        while True:
            try:
                fingerprint = results_fingerprint(project_id)
            except DatabaseError as error:
                # The client reconnects (or polls). At close, request_finished drops the connection if it is broken.
                logger.warning("Event stream of project %s ended by a database error: %s", project_id, error)
                return
            if fingerprint is None:  # the project was deleted meanwhile
                return
            now = clock()
            if fingerprint != sent:
                sent = fingerprint
                yield prefix + _event("results", fingerprint)
                prefix, last_write = b"", now
            elif now - last_write >= heartbeat_every:
                yield b": heartbeat\n\n"
                last_write = now
            left = seconds - (now - started)
            if left <= 0:
                # The slot first: the page reconnects the moment it reads "end", and its next
                # stream must not be refused by this one's last write.
                self._give_back()
                yield _event("end", {"reconnect": True})
                return
            sleep(min(check_every, left))


def results_stream_open(*, project_id: int) -> ResultsEventStream | None:
    """A new stream for a project the caller may read, or None when this process holds all it may."""
    if not stream_slots.take():
        return None
    return ResultsEventStream(project_id, seconds=settings.EVENT_STREAM_SECONDS, on_close=stream_slots.give_back)
