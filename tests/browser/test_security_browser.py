"""Untrusted content cannot draw the app's UI, and every page runs under a strict CSP."""
import pytest

from tests.browser.helpers import PASSWORD, open_workbench, record, wait_for_assignment, wait_for_sent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# A response that tries to lay the app's own dialog over the workbench, with fake buttons.
OVERLAY = (
    '<div class="overlay" id="toasts" style="position:fixed;inset:0;z-index:9999">'
    '<div class="dialog"><h2>All done</h2><p>Your session expired.</p>'
    '<a href="https://evil.example/login" class="btn btn--primary">Sign in again</a>'
    '<span class="choice choice--a" data-choice="A">A is better</span></div></div>'
)

# Records every CSP violation the page reports; runs before any of the page's own scripts.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(event.violatedDirective + ' ' + (event.blockedURI || 'inline') + ' ' + event.sourceFile + ':' + event.lineNumber);
});
"""


def watch_csp(page) -> list[str]:
    """Collects CSP violations from the console and from securitypolicyviolation events."""
    console = []
    page.on("console", lambda message: console.append(message.text) if "Content Security Policy" in message.text else None)
    page.add_init_script(RECORD_VIOLATIONS)
    return console


def violations(page, console) -> list[str]:
    return console + page.evaluate("window.__cspViolations || []")


def covering_elements(page, selector: str) -> list[str]:
    """Elements from the rendered Markdown that sit on top of ``selector``'s centre."""
    return page.evaluate(
        """(selector) => {
            const box = document.querySelector(selector).getBoundingClientRect();
            const hits = document.elementsFromPoint(box.x + box.width / 2, box.y + box.height / 2);
            const top = [];
            for (const el of hits) { if (el.closest(selector)) break; top.push(el); }
            return top.filter((el) => el.closest('.md')).map((el) => el.outerHTML.slice(0, 80));
        }""",
        selector,
    )


def test_hostile_markup_cannot_cover_the_choice_buttons(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label

    annotator = browser_user("overlay-victim")
    project = make_browser_project(
        annotators=[annotator],
        lines=[record("q0", "Say hi.", [(OVERLAY, "m1"), ("Hello!", "m2")]), record("q1", "Again.", [("x", "m1"), ("y", "m2")])],
    )
    login(annotator)
    first = open_workbench(page, live_server, project)

    # The sanitiser stripped the classes, ids and styles: nothing positioned, nothing from the app.
    md = "[data-testid^=response-] .response__md"
    assert page.eval_on_selector_all(f"{md} [class], {md} [id], {md} [style], {md} [data-choice]", "els => els.length") == 0
    assert page.evaluate(
        """() => [...document.querySelectorAll('.response__md *')]
              .every((el) => getComputedStyle(el).position === 'static')"""
    )
    assert covering_elements(page, "[data-testid=choose-A]") == []

    # Even markup that kept an app class (a sanitiser slip) stays inside its container.
    page.evaluate(
        """() => {
            const md = document.querySelector('.response__md');
            const layer = document.createElement('div');
            layer.className = 'overlay';
            layer.innerHTML = '<div class="dialog">All done</div>';
            md.appendChild(layer);
        }"""
    )
    assert page.evaluate("getComputedStyle(document.querySelector('.response__md .overlay')).position") == "fixed"
    assert covering_elements(page, "[data-testid=choose-A]") == []
    assert covering_elements(page, "[data-testid=choose-B]") == []

    page.click("[data-testid=choose-A]")  # Playwright's click fails if another element receives it
    wait_for_assignment(page, previous=first)
    wait_for_sent(page)
    label = Label.objects.get(assignment_id=int(first))
    assert label.ranking == [[label.display_order[0]], [label.display_order[1]]]


def test_every_page_sends_the_policy(page, live_server, login, django_user_model, make_browser_project):
    root = django_user_model.objects.create_superuser(username="csp-root", password=PASSWORD, email="root@example.org")
    project = make_browser_project(annotators=[root], lines=[record("q0", "Hi?", [("a", "m1"), ("b", "m2")])])
    strict = page.goto(f"{live_server.url}/accounts/login/").headers["content-security-policy"]
    for directive in (
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "object-src 'none'",
        "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
    ):
        assert directive in strict, directive
    assert "unsafe" not in strict
    login(root)
    for path in ("/", f"/projects/{project.id}/annotate/", f"/projects/{project.id}/results/", "/admin/", "/no-such-page/"):
        assert page.goto(f"{live_server.url}{path}").headers.get("content-security-policy") == strict, path
    api = page.goto(f"{live_server.url}/api/projects/").headers["content-security-policy"]
    assert "script-src 'self';" in api and "style-src 'self' 'unsafe-inline'" in api  # DRF's templates use style=""


def test_no_csp_violation_while_working(page, live_server, login, django_user_model, make_browser_project):
    root = django_user_model.objects.create_superuser(username="csp-user", password=PASSWORD, email="user@example.org")
    lines = [
        record(f"q{index}", f"Question {index}\n\n```python\nprint({index})\n```", [(f"**A{index}**", "m1"), (f"B{index}", "m2")])
        for index in range(3)
    ]
    project = make_browser_project(annotators=[root], lines=lines)
    console = watch_csp(page)
    login(root)

    first = open_workbench(page, live_server, project)
    page.click("[data-action=guidelines]")
    page.click("[data-action=guidelines]")
    page.click("[data-action=diff]")
    page.click("[data-testid=choose-B]")
    second = wait_for_assignment(page, previous=first)
    page.click("[data-testid=undo]")  # brings the first item back
    back = wait_for_assignment(page, previous=second)
    page.keyboard.press("a")
    wait_for_assignment(page, previous=back)
    wait_for_sent(page)
    assert violations(page, console) == []

    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector("[data-region=versions] >> text=/./")
    page.wait_for_function("() => !document.querySelector('[data-region=responses]').textContent.includes('Loading')")
    assert violations(page, console) == []

    for path in ("/admin/", "/admin/annotation/project/", f"/admin/annotation/project/{project.id}/change/", "/admin/auth/user/add/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
        assert violations(page, console) == [], path
    page.goto(f"{live_server.url}/api/projects/")  # DRF's browsable API
    page.wait_for_load_state("load")
    assert violations(page, console) == []
