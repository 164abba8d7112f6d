"""The Results page's Annotators card and the quality page, in Chromium.

With WORKBENCH_SCREENSHOTS naming a folder, saves results-annotators.png (the card) and
console-quality.png (the quality page) there.
"""
import os
from pathlib import Path

import pytest

from tests.browser.helpers import record
from annotation.gold import item_gold_set
from tests.labelling import label_in_order, make_champion
from training.models import AnnotatorExclusionChange
from training.selectors import training_policy_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD = "[data-testid=annotator-quality]"


def shot(page, name: str, selector: str | None = None) -> None:
    folder = os.environ.get("WORKBENCH_SCREENSHOTS")
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.wait_for_timeout(250)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    if selector:  # in the middle of the window, clear of the sticky top bar
        page.locator(selector).evaluate("node => node.scrollIntoView({block: 'center'})")
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(Path(folder) / f"{name}.png"))


def lines(count: int) -> list[str]:
    return [
        record(
            f"p{index}", f"Which answer to question {index} is better?",
            [(f"A careful answer {index}.", "good"), (f"A careless answer {index}.", "bad")],
        )
        for index in range(count)
    ]


def test_the_annotators_card_updates_live_and_toggles_exclusion(
    page, live_server, login, browser_user, make_browser_project, sent_tasks
):
    admin = browser_user("root", admin=True)
    annie, bert = browser_user("annie"), browser_user("bert")
    project = make_browser_project(annotators=[annie, bert], lines=lines(6), labels_per_item=2)

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector(f"{CARD} >> text=No labels yet")

    # Labels arrive while the page is open: the card shows them without a reload.
    label_in_order(project, annie, ["A", "A", "A", "A"])
    label_in_order(project, bert, ["A", "B", "A"])
    page.wait_for_selector("[data-testid=labels-annie]", timeout=20_000)
    page.wait_for_function("() => document.querySelector('[data-testid=labels-annie]').textContent === '4'")
    assert page.text_content("[data-testid=labels-bert]") == "3"

    # An item both labelled "A" (the good answer) turns gold, and a champion appears: the card follows.
    first = project.items.order_by("id").first()
    good, bad = first.slots.order_by("slot").values_list("response_id", flat=True)
    item_gold_set(item=first, ranking=[[good], [bad]])
    make_champion(project, {"good": [1.0, 1.0, -1.0, 1.0], "bad": [0.0, 0.0, 0.0, 0.0]})
    page.wait_for_function(
        "() => document.querySelector('[data-details=annie] [data-figure=gold] strong').textContent === '100 %'",
        timeout=20_000,
    )
    page.wait_for_function("() => document.querySelector('[data-details=bert] [data-figure=model] strong').textContent !== '—'")
    assert page.text_content("[data-details=annie] [data-figure=model] strong") == "75 %"  # 3 of 4 preferences

    page.fill("[data-testid=exclusion-reason]", "Always picks the left answer.")
    page.click("[data-testid=exclusion-annie]")
    page.wait_for_selector("tr[data-annotator=annie][data-excluded=true]")
    assert list(training_policy_for(project).excluded_annotators.values_list("username", flat=True)) == ["annie"]
    change = AnnotatorExclusionChange.objects.get(project=project)
    assert (change.action, change.changed_by, change.reason) == ("excluded", admin, "Always picks the left answer.")
    page.click("[data-testid=exclusion-history] summary")
    page.wait_for_selector("[data-testid=exclusion-history] >> text=Always picks the left answer.")
    # The training policy form on the same page agrees, so saving it would not undo the toggle.
    assert page.is_checked(f"[data-region=policy-form] input[name=excluded_annotator_ids][value='{annie.id}']")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # the card fits its column
    shot(page, "results-annotators", CARD)

    page.click("[data-testid=exclusion-annie]")  # reversible
    page.wait_for_selector("tr[data-annotator=annie][data-excluded=false]")
    assert not training_policy_for(project).excluded_annotators.exists()
    assert list(AnnotatorExclusionChange.objects.values_list("action", flat=True)) == ["included", "excluded"]


def test_the_quality_page_shows_statistics_and_links_disagreements_to_their_items(
    page, live_server, login, browser_user, make_browser_project, sent_tasks
):
    admin = browser_user("root", admin=True)
    people = [browser_user(name) for name in ("annie", "bert", "cleo")]
    project = make_browser_project(annotators=people, lines=lines(4), labels_per_item=3)

    for person, choices in zip(people, (["A", "A", "A", "A"], ["A", "A", "B", "A"], ["A", "B", "A", "A"]), strict=True):
        label_in_order(project, person, choices)
    make_champion(project, {"good": [2.0, -1.0, 0.5, 0.1], "bad": [0.0, 1.5, 0.0, 4.0]})
    items = list(project.items.order_by("id").values_list("id", flat=True))

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/quality/")
    page.wait_for_selector(f"[data-testid=disagreement-{items[3]}]")
    rows = page.eval_on_selector_all("[data-testid^=disagreement-]", "rows => rows.map(row => row.dataset.testid)")
    assert rows == [f"disagreement-{items[3]}", f"disagreement-{items[1]}"]  # most confident first
    link = page.get_attribute(f"[data-testid=disagreement-{items[3]}] a", "href")
    assert link == f"/projects/{project.id}/items/{items[3]}/"
    page.wait_for_function("() => document.querySelector('[data-region=alpha]').textContent !== '…'")
    assert page.text_content("[data-region=agreement]").endswith("%")
    assert "of 12" in page.text_content("[data-region=position-sub]")
    shot(page, "console-quality")
