"""The Results page's responses table: server pages, a model filter, a score range, search, sort by
score, the filtered total, and each response as rendered, sanitised Markdown.

Writes docs' results-responses.png into a temporary folder unless CONSOLE_SCREENSHOTS names one:

    CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/browser/test_results_responses.py
"""
import os
from pathlib import Path

import pytest

from tests.browser.helpers import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PROMPTS = 30  # 60 responses: two pages of 50


@pytest.fixture
def scored_project(make_browser_project, sent_tasks):
    from annotation.models import Response
    from tests.labelling import make_champion

    lines = [
        record(f"p{index:02d}", f"Question {index}?", [(f"Alpha answer {index}", "alpha"), (f"Beta answer {index}", "beta")])
        for index in range(PROMPTS)
    ]
    project = make_browser_project(lines=lines)
    # alpha scores 0.0..2.9, beta -0.0..-2.9: the highest is alpha's last, the lowest beta's last.
    make_champion(project, {"alpha": [index / 10 for index in range(PROMPTS)], "beta": [-index / 10 for index in range(PROMPTS)]})
    return project, {(r.model_name, r.prompt.external_id): r.id for r in Response.objects.filter(prompt__project=project).select_related("prompt")}


def rows(page) -> list[str]:
    return page.eval_on_selector_all("[data-region=responses] tr[data-testid]", "rows => rows.map(r => r.dataset.testid)")


def wait_rows(page, predicate: str):
    """Waits until the table's response ids (as ``ids``, numbers) satisfy ``predicate``."""
    page.wait_for_function(
        "() => { const ids = Array.from(document.querySelectorAll('[data-region=responses] tr[data-testid]'))"
        ".map(r => Number(r.dataset.testid.slice(9))); return " + predicate + "; }"
    )


def test_admin_pages_filters_by_model_and_sorts_by_score(page, live_server, login, browser_user, scored_project):
    project, ids = scored_project
    login(browser_user("table-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")

    # First page: 50 rows in prompt order, then the remaining 10 behind Next.
    wait_rows(page, "ids.length === 50")
    assert page.inner_text("[data-testid=responses-summary]") == "60 responses · 60 scored"
    assert page.inner_text("[data-testid=responses-page]") == "Page 1 · 1–50 of 60"
    assert rows(page)[:2] == [f"response-{ids['alpha', 'p00']}", f"response-{ids['beta', 'p00']}"]
    assert page.is_disabled("[data-testid=responses-previous]")
    page.click("[data-testid=responses-next]")
    wait_rows(page, "ids.length === 10")
    assert page.inner_text("[data-testid=responses-page]") == "Page 2 · 51–60 of 60"
    assert page.is_disabled("[data-testid=responses-next]")
    page.click("[data-testid=responses-previous]")
    wait_rows(page, "ids.length === 50")
    assert page.inner_text("[data-testid=responses-page]").startswith("Page 1 ·")

    # A model filter (its options come from the server) starts again from the first page.
    page.wait_for_selector("[data-testid=responses-model] option[value=beta]", state="attached")
    page.select_option("[data-testid=responses-model]", "beta")
    wait_rows(page, "ids.length === 30")
    page.wait_for_function("() => document.querySelector('[data-testid=responses-page]').textContent.endsWith('of 30')")
    assert {page.inner_text(f"[data-testid=score-{ids['beta', f'p{i:02d}']}]") for i in (0, 29)} == {"0.000", "-2.900"}
    assert page.is_disabled("[data-testid=responses-next]")

    # Sorting by score: highest first among beta's, then lowest first.
    page.click("[data-testid=sort-score]")
    wait_rows(page, f"ids[0] === {ids['beta', 'p00']} && ids[29] === {ids['beta', 'p29']}")
    assert page.get_attribute("[data-testid=sort-score]", "data-order") == "desc"
    page.click("[data-testid=sort-score]")
    wait_rows(page, f"ids[0] === {ids['beta', 'p29']}")
    assert page.get_attribute("[data-testid=sort-score]", "data-order") == "asc"

    # Every model, highest first: alpha's best leads, and it is marked best (P = sigmoid(2.9 + 2.9) > 0.6).
    page.select_option("[data-testid=responses-model]", "")
    page.click("[data-testid=sort-score]")  # asc -> prompt order
    page.click("[data-testid=sort-score]")  # prompt order -> highest first
    wait_rows(page, f"ids[0] === {ids['alpha', 'p29']} && ids.length === 50")
    assert "is-best" in page.get_attribute(f"[data-testid=score-{ids['alpha', 'p29']}]", "class")


def test_score_range_and_search_narrow_the_table(page, live_server, login, browser_user, scored_project):
    project, ids = scored_project
    login(browser_user("range-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    wait_rows(page, "ids.length === 50")

    page.fill("[data-testid=responses-min-score]", "2.5")
    page.dispatch_event("[data-testid=responses-min-score]", "change")
    wait_rows(page, "ids.length === 5")  # alpha's 2.5 .. 2.9
    page.fill("[data-testid=responses-min-score]", "")
    page.dispatch_event("[data-testid=responses-min-score]", "change")
    wait_rows(page, "ids.length === 50")

    page.fill("[data-testid=responses-search]", "BETA ANSWER 1")  # beta 1 and 10..19, any case
    wait_rows(page, "ids.length === 11")
    assert page.inner_text("[data-region=responses]").count("Beta answer 1") == 11
    page.fill("[data-testid=responses-search]", "nothing like this")
    page.wait_for_selector("text=No responses match these filters.")


def test_responses_show_rendered_markdown_and_the_total_of_a_search(page, live_server, login, browser_user, make_browser_project, sent_tasks, tmp_path):
    from tests.labelling import make_champion

    markdown = "Use **slicing**:\n\n```python\nbackwards = numbers[::-1]\n```\n\n<script>window.pwned = 1</script>Done."
    lines = [
        record("code", "How do I reverse a list?", [(markdown, "alpha"), ("Call `reverse()` in place.", "beta")]),
        *[record(f"q{index}", f"Question {index}?", [(f"Plain *answer* {index}", "alpha"), (f"Other answer {index}", "beta")]) for index in range(5)],
    ]
    project = make_browser_project(lines=lines)
    make_champion(project, {"alpha": [1.5, 0.2, 0.1, 0.0, -0.1, -0.2], "beta": [-1.0, 0.0, 0.1, 0.2, 0.3, 0.4]})
    login(browser_user("markdown-admin", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    wait_rows(page, "ids.length === 12")

    # Markdown arrives rendered (bold, a highlighted code block), the script tag does not.
    first = page.locator("[data-region=responses] .response-md").first
    assert first.locator("strong").inner_text() == "slicing"
    assert first.locator("pre").inner_text().strip() == "backwards = numbers[::-1]"
    assert page.locator("[data-region=responses] script").count() == 0
    assert page.evaluate("window.pwned") is None
    assert page.inner_text("[data-testid=responses-page]") == "Page 1 · 1–12 of 12"

    page.fill("[data-testid=responses-search]", "plain")
    wait_rows(page, "ids.length === 5")
    page.wait_for_function("() => document.querySelector('[data-testid=responses-page]').textContent === 'Page 1 · 1–5 of 5'")
    assert page.locator("[data-region=responses] .response-md em").count() == 5

    page.fill("[data-testid=responses-search]", "")
    wait_rows(page, "ids.length === 12")
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.locator("[data-testid=responses-search]").blur()
    page.mouse.move(0, 0)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.locator("[data-region=responses-table]").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "results-responses.png"), full_page=False)
