"""Fixtures for the browser tests: one headless Chromium per session, a fresh context per test.

The tests run the real app in pytest-django's ``live_server`` thread and drive it through
Playwright's sync API. That API runs an event loop in the test thread, which trips Django's
async-safety check on every ORM call the test makes; the tests never share a connection
with the loop, so the check is switched off here.
"""
import os
from pathlib import Path

import pytest

from tests.browser.helpers import PASSWORD

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))  # an uncaught page exception fails the test
    yield page
    # Stop the page's timers (heartbeats, prefetch) and let requests already on the live
    # server finish: one still running when the test database is flushed can deadlock
    # with the flush's TRUNCATE.
    page.goto("about:blank")
    page.wait_for_timeout(150)
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
def browser_user(django_user_model):
    def make(username: str, *, admin: bool = False):
        from annotation.roles import admin_role_set

        user = django_user_model.objects.create_user(username=username, password=PASSWORD)
        if admin:
            admin_role_set(user=user, is_admin=True)
        return user

    return make


@pytest.fixture
def login(page, live_server):
    """Signs ``user`` in through the login form, as a person would."""

    def sign_in(user):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        return page

    return sign_in


@pytest.fixture
def make_browser_project():
    from annotation.services import project_create, project_import_jsonl

    def make(*, name: str = "Browser project", annotators=(), lines: list[str], **options):
        """``options`` go to project_create: label_format, criteria, rationale_mode, labels_per_item."""
        options.setdefault("labels_per_item", 1)
        project = project_create(name=name, guidelines="Prefer **correct** answers.", annotators=annotators, **options)
        project_import_jsonl(project=project, lines=lines, source="test.jsonl")
        return project

    return make


@pytest.fixture
def shots(tmp_path):
    """Saves a full-page screenshot of a console page: into CONSOLE_SCREENSHOTS when set
    (``CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/browser/test_console_*.py``), else a
    temporary folder, so a normal run does not touch the docs. Fails on horizontal overflow."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        page.mouse.move(0, 0)
        page.wait_for_timeout(250)
        page.evaluate("document.getElementById('toasts').replaceChildren()")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: horizontal overflow"
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
