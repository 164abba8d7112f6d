"""The reward model's verdict in the workbench: after the submit, beside "Saved: …", only where the project reveals it."""
import pytest

from tests.browser.helpers import open_workbench, record, shown_texts, wait_for_assignment, wait_for_sent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VERDICT = "[data-testid=model-verdict]"


def items(count: int) -> list[str]:
    return [
        record(f"v{index}", f"Question {index}: is {index} even?", [(f"Careful answer {index}", "m-good"), (f"Sloppy answer {index}", "m-bad")])
        for index in range(count)
    ]


@pytest.fixture
def scored_project(browser_user, make_browser_project, sent_tasks):
    """Three pairwise items and a champion that scored every answer: careful 2.0, sloppy 1.0 (73 %)."""
    from tests.labelling import make_champion
    from training.services import model_version_scoring_finish

    def make(username: str, *, reveal: bool):
        annotator = browser_user(username)
        project = make_browser_project(annotators=[annotator], lines=items(3), reveal_model_verdict=reveal)
        version = make_champion(project, {"m-good": [2.0] * 3, "m-bad": [1.0] * 3})
        assert model_version_scoring_finish(version_id=version.id)
        return annotator, project

    return make


def careful_position(page) -> tuple[str, str]:
    """(position of the careful answer, position of the sloppy one) on screen."""
    shown = shown_texts(page)
    careful = next(position for position, text in shown.items() if text.startswith("Careful"))
    return careful, "B" if careful == "A" else "A"


def test_the_verdict_appears_after_the_submit_when_the_project_reveals_it(page, live_server, login, scored_project):
    annotator, project = scored_project("verdict-on", reveal=True)
    login(annotator)
    first = open_workbench(page, live_server, project)
    assert page.is_hidden(VERDICT)  # nothing about the item on screen while deciding

    careful, _ = careful_position(page)
    page.keyboard.press(careful.lower())
    second = wait_for_assignment(page, previous=first)
    wait_for_sent(page)
    page.wait_for_selector(f"{VERDICT}:not([hidden])")
    assert page.inner_text(VERDICT) == f"Reward model v1: preferred {careful} (73 %) — agrees with you"
    assert page.inner_text("[data-region=undo-text]") == f"Saved: {careful} better"
    # Seen the verdict, the label is final: no Undo button, and U says why.
    assert page.is_hidden("[data-testid=undo]")
    page.keyboard.press("u")
    page.wait_for_selector("text=cannot be undone")
    assert page.inner_text("[data-region=undo-text]") == f"Saved: {careful} better"

    careful, sloppy = careful_position(page)
    page.keyboard.press(sloppy.lower())
    wait_for_assignment(page, previous=second)
    wait_for_sent(page)
    page.wait_for_function(f"() => document.querySelector('{VERDICT}').textContent.includes('you chose')")
    assert page.inner_text(VERDICT) == f"Reward model v1: preferred {careful} (73 %) — you chose {sloppy}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_no_verdict_when_the_project_does_not_reveal_it(page, live_server, login, scored_project):
    annotator, project = scored_project("verdict-off", reveal=False)
    login(annotator)
    first = open_workbench(page, live_server, project)

    page.keyboard.press("a")
    wait_for_assignment(page, previous=first)
    wait_for_sent(page)
    page.wait_for_selector("[data-testid=undo-bar]:not([hidden])")
    assert page.is_hidden(VERDICT)
    assert page.inner_text(VERDICT) == ""
    assert page.is_visible("[data-testid=undo]")  # without a verdict, undo as ever
