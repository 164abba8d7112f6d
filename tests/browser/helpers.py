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
