"""Reading aids: word diff (client-side LCS) and synced scrolling."""
import json

import pytest

from tests.browser.helpers import open_workbench, record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_word_diff_algorithm(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("diff-unit")
    project = make_browser_project(annotators=[annotator], lines=[record("u", "q", [("a", "m1"), ("b", "m2")])])
    login(annotator)
    open_workbench(page, live_server, project)

    ops = page.evaluate(
        """() => Workbench.diff.compare('the cat sat, on the mat', 'the dog sat on the mat today').ops
                 .map(op => op.op + ':' + (op.op === 'ins' ? op.b.word : op.a.word))"""
    )
    assert ops == ["equal:the", "del:cat", "ins:dog", "equal:sat", "del:,", "equal:on", "equal:the", "equal:mat", "ins:today"]
    assert page.evaluate("Workbench.diff.compare('same words here', 'same words here').similarity") == 1


def test_word_diff_highlights_changes_and_stays_inert(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("diff-view")
    hostile = [
        record(
            "d",
            "Say hello",
            [
                ('Hello <img src=x onerror="window.__xss=1"> dear world', "m1"),
                ('Hello <img src=x onerror="window.__xss=2"> wide world', "m2"),
            ],
        )
    ]
    project = make_browser_project(annotators=[annotator], lines=hostile)
    login(annotator)
    open_workbench(page, live_server, project)

    page.keyboard.press("w")
    assert page.get_attribute("[data-action=diff]", "aria-pressed") == "true"
    sides = {
        position: {
            "del": page.locator(f"[data-testid=response-{position}] .diff-del").all_inner_texts(),
            "ins": page.locator(f"[data-testid=response-{position}] .diff-ins").all_inner_texts(),
            "text": page.inner_text(f"[data-testid=response-{position}] .response__diff"),
        }
        for position in "AB"
    }
    # Which text is on the left depends on the shuffled order; either way only "1 ... dear"
    # and "2 ... wide" differ: A marks its words that B lacks, B the words it adds.
    assert {tuple(sides["A"]["del"]), tuple(sides["B"]["ins"])} == {("1", "dear"), ("2", "wide")}
    assert sides["A"]["ins"] == [] and sides["B"]["del"] == []
    assert '<img src=x onerror="window.__xss=' in sides["A"]["text"]  # shown as text, never parsed
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss") is None
    assert page.locator("[onerror]").count() == 0
    assert "% same words" in page.inner_text("[data-testid=response-A] .response__note")

    page.keyboard.press("w")
    assert page.is_hidden("[data-testid=response-A] .response__diff")
    assert page.is_visible("[data-testid=response-A] .response__md")


def test_ranking_diff_compares_against_the_selected_response(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("diff-rank")
    line = json.dumps(
        {
            "external_id": "r",
            "conversation": [{"role": "user", "content": "Count"}],
            "responses": [{"text": text, "model": str(index)} for index, text in enumerate(["one two three", "one two four", "one five three"])],
        }
    )
    project = make_browser_project(annotators=[annotator], label_format="ranking", lines=[line])
    login(annotator)
    open_workbench(page, live_server, project)

    page.keyboard.press("w")
    assert page.inner_text("[data-testid=response-A] .response__note") == "diff base"
    assert page.inner_text("[data-testid=response-B] .response__note").endswith("same words as A")
    page.keyboard.press("b")  # selecting B makes it the base
    assert page.inner_text("[data-testid=response-B] .response__note") == "diff base"
    assert page.inner_text("[data-testid=response-C] .response__note").endswith("same words as B")


def test_synced_scroll_follows_the_scrolled_response(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("sync-scroll")
    long_a = "\n\n".join(f"Paragraph {index} of the first answer." for index in range(120))
    long_b = "\n\n".join(f"Paragraph {index} of the second answer, which is longer." for index in range(200))
    project = make_browser_project(annotators=[annotator], lines=[record("s", "Write a lot", [(long_a, "m1"), (long_b, "m2")])])
    login(annotator)
    open_workbench(page, live_server, project)
    body = "[data-testid=response-{}] .response__body"

    page.keyboard.press("l")
    page.eval_on_selector(body.format("A"), "el => { el.scrollTop = (el.scrollHeight - el.clientHeight) / 2; }")
    page.wait_for_function(
        """(sel) => { const b = document.querySelector(sel);
                      return Math.abs(b.scrollTop / (b.scrollHeight - b.clientHeight) - 0.5) < 0.02; }""",
        arg=body.format("B"),
    )

    page.keyboard.press("l")  # off again: scrolling one leaves the other where it is
    page.eval_on_selector(body.format("A"), "el => { el.scrollTop = 0; }")
    page.wait_for_timeout(200)
    assert page.eval_on_selector(body.format("B"), "el => el.scrollTop") > 0
