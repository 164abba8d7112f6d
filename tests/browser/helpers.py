"""Helpers shared by the browser tests (plain functions; the fixtures are in conftest)."""
import json

PASSWORD = "browser-test-password"


def record(external_id: str, question: str, responses: list[tuple[str, str]]) -> str:
    """One import line: a single-turn conversation and (text, model name) responses."""
    return json.dumps(
        {
            "external_id": external_id,
            "conversation": [{"role": "user", "content": question}],
            "responses": [{"text": text, "model": model} for text, model in responses],
        }
    )


def wait_for_assignment(page, *, previous: str = "") -> str:
    """Waits until the workbench shows an item other than ``previous``; returns its assignment id ("" = empty state)."""
    page.wait_for_function(
        """(previous) => {
            const wb = document.querySelector('#workbench');
            if (!wb || wb.classList.contains('is-loading') || wb.classList.contains('is-busy')) return false;
            const id = wb.dataset.assignmentId;
            const empty = !document.querySelector('[data-testid=empty-state]').hidden;
            return id !== previous || (empty && previous === '');
        }""",
        arg=previous,
    )
    return page.get_attribute("#workbench", "data-assignment-id")


def open_workbench(page, live_server, project) -> str:
    """Opens the project's workbench and waits for the first item; returns its assignment id."""
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    return wait_for_assignment(page)


def wait_for_prefetch(page, count: int = 1) -> None:
    """Waits until ``count`` following items are leased and built in the background."""
    page.wait_for_function("(n) => Number(document.querySelector('#workbench').dataset.queue) >= n", arg=count)


def shown_texts(page) -> dict[str, str]:
    """Position -> the response text on screen (rendered Markdown, as the annotator reads it)."""
    return page.eval_on_selector_all(
        "#workbench .response",
        "cards => Object.fromEntries(cards.map(c => [c.dataset.position, c.querySelector('.response__md').innerText]))",
    )


def wait_for_sent(page) -> None:
    """Waits until no submit or skip is in flight (they run in the background once the next item is shown)."""
    page.wait_for_function("() => document.querySelector('#workbench').dataset.pending === '0'")
