"""Ranking 3-9 responses: keyboard, drag and drop, and what the label stores."""
import json

import pytest

from tests.browser.helpers import open_workbench, shown_texts, wait_for_assignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ANSWERS = ["Paris is the capital.", "Lyon, I think.", "It is Paris, on the Seine.", "France has no capital."]


def ranking_line(external_id: str, answers=ANSWERS) -> str:
    return json.dumps(
        {
            "external_id": external_id,
            "conversation": [{"role": "user", "content": "What is the capital of France?"}],
            "responses": [{"text": text, "model": f"model-{index}"} for index, text in enumerate(answers)],
        }
    )


@pytest.fixture
def ranking_project(browser_user, make_browser_project):
    def make(username: str, count: int = 1, **options):
        annotator = browser_user(username)
        lines = [ranking_line(f"r{index}") for index in range(count)]
        project = make_browser_project(annotators=[annotator], lines=lines, label_format="ranking", **options)
        return annotator, project

    return make


def stored_texts(label) -> list[list[str]]:
    from annotation.models import Response

    texts = dict(Response.objects.filter(id__in=label.display_order).values_list("id", "text"))
    return [[texts[response_id] for response_id in group] for group in label.ranking]


def test_rank_four_with_a_tie_by_keyboard(page, live_server, login, ranking_project):
    from annotation.models import Label

    annotator, project = ranking_project("rank-keys")
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)
    shown = shown_texts(page)

    for key in ["b", "a", "c", "t", "d"]:  # B > A = C > D
        page.keyboard.press(key)
    assert page.inner_text("[data-testid=rank-group-2]").split() == ["2=", "A", "C"]
    assert page.inner_text("[data-testid=response-C] .rank-badge") == "2nd (tie)"
    page.keyboard.press("Enter")
    assert wait_for_assignment(page, previous=assignment_id) == ""

    label = Label.objects.get(assignment_id=assignment_id)
    order = label.display_order  # response ids left to right, as A B C D
    assert label.ranking == [[order[1]], [order[0], order[2]], [order[3]]]
    assert stored_texts(label) == [[shown["B"]], [shown["A"], shown["C"]], [shown["D"]]]
    assert (label.is_tie, label.strength) == (False, None)


def test_move_retie_and_unrank_then_fix(page, live_server, login, ranking_project):
    from annotation.models import Label

    annotator, project = ranking_project("rank-moves")
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)

    for key in ["c", "a", "b", "d"]:  # C > A > B > D
        page.keyboard.press(key)
    page.keyboard.press("b")  # select B (already ranked: just selects)
    page.keyboard.press("ArrowUp")  # C > B > A > D
    page.keyboard.press("t")  # B ties with C: C = B > A > D
    page.keyboard.press("d")
    page.keyboard.press("1")  # D > C = B > A
    page.keyboard.press("Backspace")  # D unranked: C = B > A
    page.keyboard.press("Enter")
    assert "D is not placed yet" in page.inner_text("[data-error-for=ranking]")
    assert page.get_attribute("#workbench", "data-assignment-id") == assignment_id

    page.keyboard.press("d")  # placed last
    assert page.is_hidden("[data-error-for=ranking]")
    page.click("[data-testid=submit]")
    assert wait_for_assignment(page, previous=assignment_id) == ""
    order = Label.objects.get(assignment_id=assignment_id).display_order
    assert Label.objects.get(assignment_id=assignment_id).ranking == [[order[2], order[1]], [order[0]], [order[3]]]


def test_rank_by_drag_and_drop_with_flags_and_ratings(page, live_server, login, ranking_project):
    from annotation.models import Label

    annotator, project = ranking_project(
        "rank-drag", criteria=[{"key": "correctness", "label": "Correctness", "scale": 5, "required": True}]
    )
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)

    page.drag_and_drop("[data-testid=rank-chip-A]", "[data-region=rank-list]")  # A
    page.drag_and_drop("[data-testid=rank-chip-C]", "[data-region=rank-list]")  # A > C
    page.drag_and_drop("[data-testid=rank-chip-B]", "[data-testid=rank-group-1]")  # A = B > C
    page.drag_and_drop("[data-testid=response-D] .response__head", "[data-region=rank-list]")  # ... > D
    assert page.inner_text("[data-testid=rank-group-1]").split() == ["1=", "A", "B"]
    assert page.inner_text("[data-region=rank-tray]") == "All ranked"

    page.keyboard.press("Enter")  # correctness is required for all four
    assert page.inner_text("[data-field='ratings.D.correctness'] .field-error") == "is required"
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    for key in ["5", "5", "3", "1"]:
        page.keyboard.press(key)
    page.click("[data-testid=flag-factual_error-D]")
    page.click("[data-testid=flag-broken_prompt]")
    page.keyboard.press("Enter")
    assert wait_for_assignment(page, previous=assignment_id) == ""

    label = Label.objects.get(assignment_id=assignment_id)
    a, b, c, d = label.display_order
    assert label.ranking == [[a, b], [c], [d]]
    assert label.ratings == {str(a): {"correctness": 5}, str(b): {"correctness": 5}, str(c): {"correctness": 3}, str(d): {"correctness": 1}}
    assert {(flag["flag"], flag["response_id"]) for flag in label.flags} == {("factual_error", d), ("broken_prompt", None)}


def test_nine_responses_letters_beat_shortcuts(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label

    annotator = browser_user("rank-nine")
    answers = [f"Answer number {index} about capitals." for index in range(9)]
    project = make_browser_project(
        annotators=[annotator], label_format="ranking", lines=[ranking_line("r9", answers)]
    )
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)
    assert page.locator("#workbench .response").count() == 9

    for key in "ihgfedcba":  # g and f are shortcuts elsewhere; here they name responses
        page.keyboard.press(key)
    assert page.is_hidden("#guidelines")
    page.keyboard.press("Shift+G")  # the shortcut still works with Shift
    assert page.is_visible("#guidelines")
    page.keyboard.press("Shift+G")
    page.keyboard.press("Enter")
    assert wait_for_assignment(page, previous=assignment_id) == ""
    label = Label.objects.get(assignment_id=assignment_id)
    assert label.ranking == [[response_id] for response_id in reversed(label.display_order)]
