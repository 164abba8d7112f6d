"""The Results page follows the server's event stream instead of polling, and polls without one.

Chromium opens GET /api/projects/{id}/events/ (training.events); while it is open the page
sends no scores or training-runs request until the server says something changed, and shows
the change within a couple of seconds. Refused (no free stream), the page polls as before.
"""
import time

import pytest

from tests.browser.helpers import record
from training import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

POLLED = ("/scores/", "/training-runs/")
POLL_MS = 3000  # results.js


@pytest.fixture
def streams(settings):
    # Longer than a test watches one stream. After the test the flush deletes the project and
    # the stream ends at its next check, so the live server's thread is not held for long.
    settings.EVENT_STREAM_SECONDS = 20
    settings.EVENT_STREAMS_PER_PROCESS = 2
    return settings


@pytest.fixture
def two_versions(make_browser_project, sent_tasks):
    """A project whose champion is v2, and v1 to roll back to."""
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    v1 = finished_version(project, version=1)
    finished_version(project, version=2)
    return project, v1


def finished_version(project, *, version: int):
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=version, checkpoint_path=f"project-{project.id}/v{version}",
        metrics={"accuracy": 0.8, "loss": 0.5, "pairs": 4}, champion_metrics={}, promote=True,
        config={}, seed=0, code_version="test",
    )


def record_requests(page) -> list[str]:
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    return urls


def polled(urls: list[str]) -> list[str]:
    return [url for url in urls if any(part in url for part in POLLED)]


def champion_is(page, name: str, *, timeout: float) -> None:
    page.wait_for_function(
        "(name) => document.querySelector('[data-testid=champion-version]').textContent === name", arg=name, timeout=timeout
    )


def live_state(page) -> str:
    return page.get_attribute("#results", "data-live")


def test_a_promotion_arrives_in_chromium_without_polling(page, live_server, login, browser_user, two_versions, streams):
    project, v1 = two_versions
    login(browser_user("root", admin=True))
    urls = record_requests(page)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("() => document.getElementById('results').dataset.live === 'push'")
    champion_is(page, "v2", timeout=5000)
    assert any("/events/" in url for url in urls)
    page.wait_for_timeout(1000)  # the refresh for the stream's first event settles

    quiet_from = len(urls)
    page.wait_for_timeout(POLL_MS + 1500)  # longer than a poll's interval: a poll would show here
    assert polled(urls[quiet_from:]) == [], "the page polled while its stream was open"

    changed_at, changed_from = time.monotonic(), len(urls)
    services.model_version_promote(version=v1)  # as if another admin, or the gate, promoted it
    champion_is(page, "v1", timeout=3000)

    assert time.monotonic() - changed_at < 3
    assert polled(urls[changed_from:]), "the change was shown without fetching it"
    assert live_state(page) == "push"
    assert page.inner_text("[data-region=updated]").endswith("· live")


def test_run_progress_arrives_without_polling(page, live_server, login, browser_user, make_browser_project, streams):
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    login(browser_user("root", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("() => document.getElementById('results').dataset.live === 'push'")
    page.wait_for_selector(f"[data-testid=run-{run.id}][data-status=running]")

    services.training_run_report_progress(run_id=run.id, progress={"step": 4, "total_steps": 10, "loss": 0.25})

    page.wait_for_selector(f"[data-testid=run-{run.id}] >> text=step 4/10", timeout=3000)
    assert live_state(page) == "push"


def test_refused_a_stream_the_page_polls_and_still_updates(page, live_server, login, browser_user, two_versions, settings):
    settings.EVENT_STREAMS_PER_PROCESS = 0  # every stream is refused with 503, as on a busy server
    project, v1 = two_versions
    login(browser_user("root", admin=True))
    refusals = []
    page.on("response", lambda response: "/events/" in response.url and refusals.append(response.status))
    urls = record_requests(page)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    champion_is(page, "v2", timeout=5000)
    page.wait_for_function("() => document.getElementById('results').dataset.live === 'polling'")
    page.wait_for_timeout(200)
    assert refusals == [503]

    changed_from = len(urls)
    services.model_version_promote(version=v1)
    champion_is(page, "v1", timeout=POLL_MS + 3000)

    assert polled(urls[changed_from:])
    assert live_state(page) == "polling"


def test_streams_that_end_are_followed_by_the_next_and_a_hidden_tab_lets_go(
    page, live_server, login, browser_user, make_browser_project, settings
):
    settings.EVENT_STREAM_SECONDS = 1.5
    settings.EVENT_STREAMS_PER_PROCESS = 2
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    login(browser_user("root", admin=True))
    urls = record_requests(page)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function("() => document.getElementById('results').dataset.live === 'push'")

    page.wait_for_timeout(4000)
    assert len([url for url in urls if "/events/" in url]) >= 3  # each stream ended, the next opened at once
    assert live_state(page) == "push"

    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    assert live_state(page) == "polling"
    hidden_from = len(urls)
    page.wait_for_timeout(POLL_MS + 500)
    hidden = urls[hidden_from:]
    assert polled(hidden) == [] and not any("/events/" in url for url in hidden), "a hidden tab neither listens nor polls"

    page.evaluate(
        "() => { Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.wait_for_function("() => document.getElementById('results').dataset.live === 'push'")
    assert polled(urls[hidden_from:]), "shown again, it catches up at once"
