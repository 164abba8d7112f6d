"""GET /api/projects/{id}/events/: the Results page's live updates (training.events).

The fingerprint moves when a version is promoted or a run progresses; a stream sends it at
once and on every change, ends on time, gives its slot back however it ends, and a process
refuses streams past its limit with a 503 the page answers by polling.
"""
import json
import time

import pytest
from django.db import OperationalError
from django.test import Client

from tests.labelling import make_champion
from training import events, services
from training.events import ResultsEventStream, results_fingerprint, stream_slots

pytestmark = pytest.mark.django_db


# A score for each of the project fixture's six responses.
EVERY_RESPONSE = {"model-good": [1.0, 2.0, 3.0], "model-bad": [-1.0, -2.0, -3.0]}


def url(project_id) -> str:
    return f"/api/projects/{project_id}/events/"


def parse(body: bytes) -> list[tuple[str, object]]:
    """The stream as (event name, data) pairs; comments as ("comment", text)."""
    found = []
    for block in body.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n") if not line.startswith(":") and ": " in line)
        if block.startswith(":"):
            found.append(("comment", block[1:].strip()))
        elif "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def version(project, *, number: int, promote: bool):
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=number, checkpoint_path=f"project-{project.id}/v{number}",
        metrics={"accuracy": 0.8}, champion_metrics={}, promote=promote, config={}, seed=0, code_version="test",
    )


@pytest.fixture(autouse=True)
def no_stream_left_behind():
    yield
    assert stream_slots.held == 0, "a stream did not give its slot back"


@pytest.fixture
def short_streams(settings):
    settings.EVENT_STREAM_SECONDS = 0.2
    settings.EVENT_STREAMS_PER_PROCESS = 1
    return settings


# --- The fingerprint -------------------------------------------------------------------


def test_the_fingerprint_moves_when_a_version_is_promoted(project, sent_tasks):
    old = version(project, number=1, promote=True)
    version(project, number=2, promote=True)
    before = results_fingerprint(project.id)
    assert (before["champion"]["version"], before["latest_version"]) == (2, 2)

    services.model_version_promote(version=old)

    after = results_fingerprint(project.id)
    assert after["champion"]["id"] == old.id and after != before


def test_the_fingerprint_moves_as_a_run_progresses(project, sent_tasks):
    run, _ = services.training_run_request(project=project, trigger="manual")
    queued = results_fingerprint(project.id)
    assert queued["run"]["id"] == run.id and queued["run"]["status"] == "queued"
    services.training_run_start(run_id=run.id)
    running = results_fingerprint(project.id)
    services.training_run_report_progress(run_id=run.id, progress={"step": 3, "total_steps": 10, "loss": 0.5})
    progressed = results_fingerprint(project.id)

    assert running["run"]["status"] == "running" and running != queued
    assert progressed["run"]["progress"] == {"step": 3, "total_steps": 10, "loss": 0.5} and progressed != running
    assert results_fingerprint(project.id) == progressed  # nothing moved: nothing to send


def test_the_fingerprint_follows_the_scores_shown_while_a_champion_scores(project, sent_tasks):
    scored = make_champion(project, EVERY_RESPONSE)
    assert services.model_version_scoring_finish(version_id=scored.id)
    version(project, number=2, promote=True)  # promoted with no scores yet: v1's stay shown

    fingerprint = results_fingerprint(project.id)

    assert (fingerprint["champion"]["version"], fingerprint["scores_version"]) == (2, 1)


def test_the_fingerprint_costs_two_queries_three_while_scoring(project, sent_tasks, django_assert_num_queries):
    with django_assert_num_queries(2):
        assert results_fingerprint(project.id) == {"champion": None, "scores_version": None, "latest_version": None, "run": None}
    scored = make_champion(project, EVERY_RESPONSE)
    assert services.model_version_scoring_finish(version_id=scored.id)
    with django_assert_num_queries(2):
        results_fingerprint(project.id)
    version(project, number=2, promote=True)
    with django_assert_num_queries(3):
        results_fingerprint(project.id)


def test_no_fingerprint_for_a_project_that_is_gone():
    assert results_fingerprint(987654) is None


# --- The stream, driven by a fake clock --------------------------------------------------


class FakeTime:
    """A clock that moves only when the stream sleeps; ``on_sleep`` runs at each sleep."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps += 1
        if self.on_sleep:
            self.on_sleep(self.sleeps)


def test_a_stream_sends_at_once_then_only_changes_heartbeats_and_the_end(project, sent_tasks):
    old = version(project, number=1, promote=True)
    version(project, number=2, promote=True)
    fake = FakeTime(on_sleep=lambda n: n == 3 and services.model_version_promote(version=old))
    stream = ResultsEventStream(project.id, seconds=40, heartbeat_every=15, clock=fake.clock, sleep=fake.sleep)

    first = next(stream)
    rest = b"".join(stream)

    assert first.startswith(b"retry: 3000\n\nevent: results\n")
    sent = parse(first + rest)
    names = [name for name, _ in sent]
    # At 0 s, the promotion seen at 3 s, heartbeats at 18 s and 33 s of quiet, the end at 40 s.
    assert names == ["results", "results", "comment", "comment", "end"]
    assert [data["champion"]["version"] for name, data in sent if name == "results"] == [2, 1]
    assert fake.now == 40


def test_a_stream_ends_quietly_when_the_database_fails(project, monkeypatch):
    calls = []

    def flaky(project_id):
        calls.append(project_id)
        if len(calls) > 1:
            raise OperationalError("server closed the connection unexpectedly")
        return {"champion": None}

    monkeypatch.setattr(events, "results_fingerprint", flaky)
    fake = FakeTime()
    body = b"".join(ResultsEventStream(project.id, seconds=30, clock=fake.clock, sleep=fake.sleep))

    assert [name for name, _ in parse(body)] == ["results"]  # no end event: the client reconnects or polls


def test_closing_a_stream_that_never_started_gives_its_slot_back(project, short_streams):
    stream = events.results_stream_open(project_id=project.id)
    assert stream is not None and stream_slots.held == 1
    stream.close()
    stream.close()  # twice is harmless
    assert stream_slots.held == 0


# --- The endpoint ----------------------------------------------------------------------


def test_the_endpoint_streams_at_once_and_ends_after_event_stream_seconds(project, admin_user, short_streams):
    client = Client()
    client.force_login(admin_user)  # the session cookie, as EventSource sends it

    started = time.monotonic()
    response = client.get(url(project.id), HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert stream_slots.held == 1
    body = first + b"".join(chunks)

    assert time.monotonic() - started < 2
    assert [name for name, _ in parse(body)] == ["results", "end"]
    assert parse(first)[0][1]["champion"] is None


def test_past_the_limit_a_stream_is_refused_with_503_and_retry_after(project, admin_user, api_client_for, short_streams):
    client = api_client_for(admin_user)
    held = client.get(url(project.id))
    assert held.status_code == 200

    refused = client.get(url(project.id), HTTP_ACCEPT="text/event-stream")

    assert refused.status_code == 503
    assert refused["Retry-After"] == "1"
    assert refused.json() == {
        "detail": "Every live-update stream of this server process is in use: keep polling and try again later.",
        "code": "event_streams_busy",
        "fields": {},
    }
    b"".join(held.streaming_content)  # it ends after EVENT_STREAM_SECONDS: the slot comes back
    again = client.get(url(project.id))
    assert again.status_code == 200
    b"".join(again.streaming_content)


def test_a_limit_of_zero_turns_streams_off(project, admin_user, api_client_for, settings):
    settings.EVENT_STREAMS_PER_PROCESS = 0
    assert api_client_for(admin_user).get(url(project.id)).status_code == 503


def test_head_is_not_a_silent_stream(project, admin_user, api_client_for, short_streams):
    assert api_client_for(admin_user).head(url(project.id)).status_code == 405


def test_only_admins_may_listen(project, annotator, api_client_for, short_streams):
    refused = api_client_for(annotator).get(url(project.id))
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    assert Client().get(url(project.id), HTTP_ACCEPT="text/event-stream").status_code in (401, 403)


@pytest.mark.parametrize("project_id", ["987654", str(2**63), str(10**30), "-1", "abc", "1.5", "%00"])
def test_unknown_or_hostile_ids_are_404s(admin_user, api_client_for, project_id, short_streams):
    response = api_client_for(admin_user).get(url(project_id), HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
