"""Screenshots of each workbench format, for docs/workbench.md.

Runs with the browser suite and checks that nothing spills out of the page. It writes the
PNGs into a temporary folder unless WORKBENCH_SCREENSHOTS names a folder, so a normal run
does not touch the docs:

    WORKBENCH_SCREENSHOTS=docs/screenshots pytest tests/browser/test_workbench_screenshots.py
"""
import json
import os
from pathlib import Path

import pytest

from tests.browser.helpers import open_workbench, record, wait_for_prefetch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "What's the easiest way to reverse a list in Python?"
ANSWER_A = (
    "Use slicing to get a reversed copy:\n\n```python\nnumbers = [1, 2, 3, 4]\nbackwards = numbers[::-1]\n"
    "print(backwards)  # [4, 3, 2, 1]\n```\n\nThe original list is unchanged."
)
ANSWER_B = (
    "Call `reverse()` and keep the result:\n\n```python\nnumbers = [1, 2, 3, 4]\nbackwards = numbers.reverse()\n"
    "print(backwards)\n```\n\nThis prints the reversed list."
)
CRITERIA = [
    {"key": "helpfulness", "label": "Helpfulness", "scale": 5, "required": True},
    {"key": "honesty", "label": "Honesty", "scale": 7, "required": False},
]


def conversation_line(external_id: str, conversation: list[dict], responses: list[str]) -> str:
    return json.dumps(
        {
            "external_id": external_id,
            "conversation": conversation,
            "responses": [{"text": text, "model": f"m{index}"} for index, text in enumerate(responses)],
        }
    )


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str) -> Path:
        page.mouse.move(0, 0)  # no hover effects in the picture
        page.wait_for_timeout(250)  # let colour transitions finish
        page.evaluate("document.getElementById('toasts').replaceChildren()")  # transient, and would cover controls
        # Nothing may spill sideways out of the page (the ranking grid scrolls inside itself).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: horizontal overflow"
        path = folder / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return save


def test_pairwise_with_strength(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-pairwise")
    project = make_browser_project(
        name="Helpfulness v2", annotators=[annotator], lines=[record("p1", QUESTION, [(ANSWER_A, "a"), (ANSWER_B, "b")])] * 1
    )
    login(annotator)
    open_workbench(page, live_server, project)
    page.click("[data-strength='3']")
    page.keyboard.press("Shift+A")  # armed: the next digit gives the strength and submits
    assert page.is_visible(".wb-actions--pairwise.is-armed")
    shots(page, "pairwise-strength")


def test_ratings_flags_rationale(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-ratings")
    conversation = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Do you want a copy, or to reverse it in place?"},
        {"role": "user", "content": "A copy, please."},
    ]
    project = make_browser_project(
        name="Helpfulness with criteria", annotators=[annotator], criteria=CRITERIA, rationale_mode="required",
        lines=[conversation_line("c1", conversation, [ANSWER_A, ANSWER_B])],
    )
    login(annotator)
    open_workbench(page, live_server, project)
    page.keyboard.press("r")
    page.keyboard.press("5")  # A helpfulness
    page.keyboard.press("6")  # A honesty
    page.keyboard.press("Escape")
    page.click("[data-testid=flag-factual_error-B]")
    page.keyboard.press("a")  # B's helpfulness is missing: the field says so
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    page.keyboard.type("B claims reverse() returns the list; it returns None.")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)  # toasts settle
    shots(page, "ratings-flags-rationale")


def test_ranking(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-ranking")
    responses = [
        "A hash map stores key-value pairs in an array of buckets. A hash function turns each key into a bucket "
        "index, so lookups, inserts and deletes take constant time on average.",
        "It's a dictionary.",
        "A hash map (or hash table) maps keys to values. It hashes the key to find a slot in an array; collisions are "
        "handled by chaining or open addressing. Average operations are **O(1)**; the worst case is O(n).",
        "A hash map keeps keys in sorted order so that binary search can find any key in O(log n) time.",
    ]
    project = make_browser_project(
        name="Ranking study", annotators=[annotator], label_format="ranking",
        criteria=[{"key": "correctness", "label": "Correctness", "scale": 5, "required": False}],
        lines=[conversation_line("r1", [{"role": "user", "content": "Explain what a hash map is in two sentences."}], responses)],
    )
    login(annotator)
    open_workbench(page, live_server, project)
    for key in ["c", "a", "b", "t"]:
        page.keyboard.press(key)
    shots(page, "ranking")


def test_diff_view(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-diff")
    first = (
        "The Treaty of Westphalia was signed in 1648 and ended the Thirty Years' War. It established the principle "
        "of state sovereignty, which still shapes international law today. The negotiations took place in the cities "
        "of Osnabrück and Münster."
    )
    second = (
        "The Peace of Westphalia was signed in 1648 and ended the Thirty Years' War. It established the principle "
        "of territorial sovereignty, which still shapes international relations today. The negotiations took place "
        "in Osnabrück and Münster over four years."
    )
    project = make_browser_project(
        name="History facts", annotators=[annotator],
        lines=[record("d1", "When was the Treaty of Westphalia signed, and why does it matter?", [(first, "a"), (second, "b")])],
    )
    login(annotator)
    open_workbench(page, live_server, project)
    page.keyboard.press("w")
    page.wait_for_selector("#workbench .response__diff .diff-ins")
    shots(page, "diff")


def test_help_overlay(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-help")
    project = make_browser_project(
        name="Helpfulness v2", annotators=[annotator], lines=[record("h1", QUESTION, [(ANSWER_A, "a"), (ANSWER_B, "b")])]
    )
    login(annotator)
    open_workbench(page, live_server, project)
    wait_for_prefetch(page, 0)
    page.keyboard.press("?")
    shots(page, "help")


def test_ranking_of_nine_on_a_smaller_screen(page, live_server, login, browser_user, make_browser_project, shots):
    annotator = browser_user("shot-nine")
    answers = [
        f"Option {index + 1}: " + " ".join(["a sentence of reasonable length about hash maps."] * (index % 3 + 2))
        for index in range(9)
    ]
    project = make_browser_project(
        name="Nine-way ranking", annotators=[annotator], label_format="ranking",
        criteria=[{"key": "correctness", "label": "Correctness", "scale": 7, "required": False}],
        lines=[conversation_line("n1", [{"role": "user", "content": "Explain hash maps."}], answers)],
    )
    page.set_viewport_size({"width": 1280, "height": 800})
    login(annotator)
    open_workbench(page, live_server, project)
    for key in "ebt":
        page.keyboard.press(key)
    page.keyboard.press("i")
    shots(page, "ranking-nine")
