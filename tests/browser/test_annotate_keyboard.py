"""The annotator workbench, driven by keyboard in a real browser."""
import pytest

from tests.browser.helpers import record, wait_for_assignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MODEL_NAMES = ("secret-model-alpha", "secret-model-beta")


def three_items() -> list[str]:
    return [
        record(
            f"p{index}",
            f"Question number {index}: what is {index} plus {index}?",
            [(f"Alpha answer {index} says {2 * index}.", MODEL_NAMES[0]), (f"Beta answer {index} is unsure.", MODEL_NAMES[1])],
        )
        for index in range(3)
    ]


def shown_item(page) -> dict:
    return {
        "A": page.inner_text("[data-testid=response-A] .response__body"),
        "B": page.inner_text("[data-testid=response-B] .response__body"),
    }


def test_three_items_labelled_with_keyboard_only(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label, Response

    annotator = browser_user("kbd-annotator")
    project = make_browser_project(annotators=[annotator], lines=three_items())
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")

    shown = {}  # assignment id -> (key pressed, texts on screen)
    assignment_id = wait_for_assignment(page)
    for key in ["a", "b", "t"]:
        assert assignment_id, "expected an item on screen"
        shown[int(assignment_id)] = (key, shown_item(page))
        page.keyboard.press(key)
        assignment_id = wait_for_assignment(page, previous=assignment_id)

    assert assignment_id == ""
    assert page.is_visible("[data-testid=empty-state]")
    assert "All done" in page.inner_text("[data-testid=empty-state]")
    assert page.inner_text("[data-testid=progress]") == "3 done today · 0 remaining"

    labels = list(Label.objects.filter(annotator=annotator).order_by("id"))
    assert len(labels) == 3
    assert {label.assignment_id for label in labels} == set(shown)
    for label in labels:
        key, texts = shown[label.assignment_id]
        left, right = label.display_order
        assert label.seconds_spent > 0
        if key == "t":
            assert label.is_tie
            assert label.strength is None
            assert sorted(label.ranking[0]) == sorted(label.display_order)
            continue
        assert not label.is_tie
        winner, loser = (left, right) if key == "a" else (right, left)
        assert label.ranking == [[winner], [loser]]
        # The winner is the response that was on screen on the chosen side.
        side = "A" if key == "a" else "B"
        assert Response.objects.get(id=winner).text in texts[side]


def test_buttons_submit_with_strength(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label

    annotator = browser_user("mouse-annotator")
    project = make_browser_project(annotators=[annotator], lines=three_items()[:1])
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    assignment_id = wait_for_assignment(page)

    page.click("[data-strength='3']")
    page.fill("[data-region=rationale]", "B made an arithmetic slip; and typing a, b, t here labels nothing.")
    page.click("[data-testid=choose-B]")
    assert wait_for_assignment(page, previous=assignment_id) == ""

    label = Label.objects.get(annotator=annotator)
    assert (label.is_tie, label.strength) == (False, 3)
    assert label.ranking[0] == [label.display_order[1]]
    assert label.rationale.startswith("B made an arithmetic slip")


def test_help_and_guidelines_toggle_with_keys(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("help-annotator")
    project = make_browser_project(annotators=[annotator], lines=three_items()[:1])
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    assignment_id = wait_for_assignment(page)

    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("a")  # ignored while the shortcut list covers the item
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    assert page.get_attribute("#workbench", "data-assignment-id") == assignment_id

    page.keyboard.press("g")
    assert page.is_visible("#guidelines")
    assert "correct" in page.inner_text("#guidelines strong")
    page.keyboard.press("g")
    assert not page.is_visible("#guidelines")


def test_skip_moves_on_without_a_label(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Assignment, Label

    annotator = browser_user("skip-annotator")
    project = make_browser_project(annotators=[annotator], lines=three_items()[:1])
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    assignment_id = wait_for_assignment(page)

    page.keyboard.press("s")
    assert page.is_visible("#skip-dialog")
    page.keyboard.press("1")  # "Unclear prompt"
    assert wait_for_assignment(page, previous=assignment_id) == ""
    assert not Label.objects.filter(annotator=annotator).exists()
    skipped = Assignment.objects.get(id=assignment_id)
    assert (skipped.status, skipped.skip_reason) == (Assignment.Status.SKIPPED, "Unclear prompt")


def test_model_names_never_reach_the_page(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("blind-annotator")
    project = make_browser_project(annotators=[annotator], lines=three_items())
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    assignment_id = wait_for_assignment(page)

    for _ in range(3):
        content = page.content()
        assert all(name not in content for name in MODEL_NAMES)
        page.keyboard.press("t")
        assignment_id = wait_for_assignment(page, previous=assignment_id)
    assert assignment_id == ""


def test_hostile_markdown_does_not_execute(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("xss-annotator")
    hostile = [
        record(
            "xss",
            'Hi <script>window.__xss = "script"</script> there',
            [
                ('<img src=x onerror="window.__xss=1"> look at this', "m1"),
                ("[link](javascript:alert(1)) and [ok](https://example.org)", "m2"),
            ],
        )
    ]
    project = make_browser_project(annotators=[annotator], lines=hostile)
    login(annotator)
    page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    wait_for_assignment(page)
    page.wait_for_load_state("networkidle")  # give a broken <img> the chance to fire onerror

    assert page.evaluate("window.__xss") is None
    hrefs = page.eval_on_selector_all("[href]", "nodes => nodes.map(n => n.getAttribute('href'))")
    assert not [href for href in hrefs if href.strip().lower().startswith("javascript:")]
    assert page.locator("[onerror]").count() == 0
    assert page.locator("#workbench a[href='https://example.org']").count() == 1
