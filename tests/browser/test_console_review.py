"""The review pages in a browser: a reviewer finds a disagreeing label, opens its item, rejects it
with a reason, sees the decision in the history and reverts it.

Screenshots go to a temporary folder unless CONSOLE_SCREENSHOTS names one:

    CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/browser/test_console_review.py
"""
import uuid

import pytest

from annotation.assignment import assignment_claim_next
from annotation.models import ComparisonItem, Label, LabelReview
from annotation.services import label_submit
from tests.browser.helpers import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def label_as_shown(project, user, choice, **fields):
    lease = assignment_claim_next(project=project, annotator=user)
    lease.display_order = sorted(lease.display_order)
    lease.save(update_fields=["display_order"])
    return label_submit(assignment_id=lease.id, annotator=user, client_id=uuid.uuid4(), choice=choice, **fields)[0]


@pytest.fixture
def reviewed_project(make_browser_project, browser_user):
    annotators = [browser_user(name) for name in ("ada", "bo", "cy")]
    lines = [
        record("reverse-list", "How do I reverse a list in **Python**?", [
            ("Use slicing: `items[::-1]` returns a reversed copy.", "model-large"),
            ("Call `items.reverse()`; it returns the list.", "model-small"),
        ]),
        record("capital", "What is the capital of Australia?", [
            ("Canberra.", "model-large"),
            ("Sydney.", "model-small"),
        ]),
    ]
    project = make_browser_project(name="Review demo", annotators=annotators, lines=lines, labels_per_item=3)
    labels = [
        label_as_shown(project, annotators[0], "A", strength=3, rationale="Slicing is correct and says it copies."),
        label_as_shown(project, annotators[1], "A", strength=2),
        label_as_shown(project, annotators[2], "B", rationale="Shorter", flags=[{"flag": "factual_error", "position": "B"}]),
        label_as_shown(project, annotators[0], "A", strength=4),
        label_as_shown(project, annotators[1], "A"),
        label_as_shown(project, annotators[2], "A", strength=1),
    ]
    reviewer = browser_user("rita")
    project.reviewers.add(reviewer)
    return project, labels, reviewer


def test_reviewer_finds_the_labels_the_reward_model_contradicts(page, live_server, login, reviewed_project, sent_tasks):
    from tests.labelling import make_champion

    project, labels, reviewer = reviewed_project
    # The champion prefers model-small's answer on the first item, which four of the people did not.
    make_champion(project, {"model-small": [2.0], "model-large": [0.0]})
    login(reviewer)
    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")
    page.select_option("[data-testid=filter-model-disagreement]", "true")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 2")
    shown = page.eval_on_selector_all("[data-testid=label-row]", "rows => rows.map(row => row.dataset.labelId)")
    assert shown == [str(labels[0].id), str(labels[1].id)]
    page.select_option("[data-testid=filter-model-disagreement]", "false")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 4")


def test_reviewer_rejects_a_disagreeing_label_and_reverts_it(page, live_server, login, reviewed_project, shots):
    project, labels, reviewer = reviewed_project
    dissent = labels[2]
    login(reviewer)
    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")
    assert page.locator("[data-testid=label-row]").count() == 6
    shots(page, "console-label-browser")

    page.select_option("[data-testid=filter-disagreement]", "true")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 1")
    row = page.locator("[data-testid=label-row]")
    assert row.get_attribute("data-label-id") == str(dissent.id)
    assert "B preferred" in row.inner_text() and "model-small" in row.inner_text()

    row.locator("[data-testid=open-item]").click()
    page.wait_for_url(f"**/projects/{project.id}/items/{dissent.item_id}/")
    card = page.locator(f"[data-testid=item-label][data-label-id='{dissent.id}']")
    card.wait_for()
    assert page.locator("[data-testid=item-label]").count() == 3

    card.locator("[data-testid=review-reject]").click()  # no reason yet: refused, said why
    error = card.locator("[data-testid=review-error]:not([hidden])")
    error.wait_for()
    assert "reason" in error.inner_text()
    card.locator("[data-testid=review-reason]").fill("Prefers the wrong answer: reverse() returns None.")
    card.locator("[data-testid=review-reject]").click()
    card = page.locator(f"[data-testid=item-label][data-label-id='{dissent.id}'][data-review-status=rejected]")
    card.wait_for()
    history = card.locator("[data-testid=history-entry]")
    assert history.count() == 1 and "reverse() returns None" in history.inner_text()
    assert "2 counted" in page.inner_text("[data-testid=item-summary]")
    assert Label.objects.get(id=dissent.id).review_status == "rejected"
    assert ComparisonItem.objects.get(id=dissent.item_id).label_count == 2
    shots(page, "console-item")

    card.locator("[data-testid=review-revert]").click()
    card = page.locator(f"[data-testid=item-label][data-label-id='{dissent.id}'][data-review-status=unreviewed]")
    card.wait_for()
    assert [entry.get_attribute("data-decision") for entry in card.locator("[data-testid=history-entry]").all()] == ["reject", "revert"]
    assert ComparisonItem.objects.get(id=dissent.item_id).label_count == 3
    assert LabelReview.objects.filter(label_id=dissent.id).count() == 2


def test_skips_tab(page, live_server, login, reviewed_project, browser_user):
    from annotation.services import assignment_skip

    from annotation.review import label_review

    project, labels, reviewer = reviewed_project
    late = browser_user("dee")
    project.annotators.add(late)
    # Both items are full: a rejection reopens one for the newcomer, who skips it.
    label_review(label_id=labels[0].id, reviewer=reviewer, decision="reject", reason="Too terse")
    lease = assignment_claim_next(project=project, annotator=late)
    assignment_skip(assignment_id=lease.id, annotator=late, reason="Not my field")
    login(reviewer)
    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")
    page.click("[data-testid=tab-skips]")
    page.wait_for_selector("[data-testid=skip-row]")
    assert "Not my field" in page.inner_text("[data-testid=skip-row]")
    page.fill("[data-testid=filter-skip-reason]", "nothing like it")
    page.wait_for_selector("[data-testid=review-empty]")


def test_admin_makes_an_item_gold_from_a_label_changes_the_answer_and_clears_it(page, live_server, login, reviewed_project, browser_user, shots):
    project, labels, reviewer = reviewed_project
    item = ComparisonItem.objects.get(id=labels[0].item_id)
    large, small = item.slots.order_by("slot").values_list("response_id", flat=True)
    login(browser_user("ana", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/items/{item.id}/")
    card = page.locator(f"[data-testid=item-label][data-label-id='{labels[0].id}']")
    card.wait_for()
    assert page.locator("[data-testid=response-number]").all_inner_texts() == ["1", "2"]
    assert "Not a gold item" in page.inner_text("[data-testid=gold-answer-text]")
    assert page.locator("[data-region=gold-badge]").is_hidden()

    card.locator("[data-testid=gold-from-label]").click()  # ada preferred A, model-large's answer
    page.locator("[data-region=gold-badge]:not([hidden])").wait_for()
    assert "1 model-large > 2 model-small" in page.inner_text("[data-testid=gold-answer-text]")
    assert page.input_value("[data-testid=gold-input]") == "1 > 2"
    assert ComparisonItem.objects.get(id=item.id).gold_ranking == [[large], [small]]
    shots(page, "console-item-gold")

    page.fill("[data-testid=gold-input]", "3 > 1")  # no response 3: said on the page, nothing sent
    page.click("[data-testid=gold-save]")
    error = page.locator("[data-testid=gold-error]:not([hidden])")
    error.wait_for()
    assert "No response 3" in error.inner_text()
    page.fill("[data-testid=gold-input]", "2")  # one response left out: the server's refusal, shown
    page.click("[data-testid=gold-save]")
    page.wait_for_function("() => document.querySelector('[data-testid=gold-error]').textContent.includes('exactly')")
    assert ComparisonItem.objects.get(id=item.id).gold_ranking == [[large], [small]]

    page.fill("[data-testid=gold-input]", "2 > 1")
    page.click("[data-testid=gold-save]")
    page.wait_for_function("() => document.querySelector('[data-testid=gold-answer-text]').innerText.includes('2 model-small > 1 model-large')")
    assert ComparisonItem.objects.get(id=item.id).gold_ranking == [[small], [large]]

    page.click("[data-testid=gold-clear]")
    page.wait_for_function("() => document.querySelector('[data-testid=gold-answer-text]').textContent.includes('Not a gold item')")
    assert page.locator("[data-region=gold-badge]").is_hidden()
    assert ComparisonItem.objects.get(id=item.id).gold_ranking is None


def test_a_reviewer_sees_the_gold_answer_and_who_got_it_wrong_but_cannot_change_it(page, live_server, login, reviewed_project):
    from annotation.gold import item_gold_set

    project, labels, reviewer = reviewed_project
    item = ComparisonItem.objects.get(id=labels[0].item_id)
    large, small = item.slots.order_by("slot").values_list("response_id", flat=True)
    item_gold_set(item=item, ranking=[[large], [small]])
    login(reviewer)
    page.goto(f"{live_server.url}/projects/{project.id}/items/{item.id}/")
    page.locator("[data-testid=item-label]").first.wait_for()
    assert "model-large > 2 model-small" in page.inner_text("[data-testid=gold-answer-text]")
    assert page.locator("[data-testid=gold-input], [data-testid=gold-save], [data-testid=gold-clear], [data-testid=gold-from-label]").count() == 0
    assert page.locator("[data-testid=label-gold]").all_inner_texts() == ["matches gold", "matches gold", "contradicts gold"]

    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")
    page.select_option("[data-testid=filter-gold]", "wrong")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 1")
    row = page.locator("[data-testid=label-row]")
    assert row.get_attribute("data-label-id") == str(labels[2].id)
    assert row.locator("[data-testid=gold-badge]").inner_text() == "gold ✗"


def test_admin_finds_an_unlabelled_item_in_the_items_tab_and_makes_it_gold(
    page, live_server, login, make_browser_project, browser_user, shots
):
    annotator = browser_user("ada")
    project = make_browser_project(name="Items demo", annotators=[annotator], lines=[
        record("capital", "What is the capital of Australia?", [("Canberra.", "model-large"), ("Sydney.", "model-small")]),
        record("boiling", "At what temperature does water boil at sea level?", [("100 °C.", "model-large"), ("90 °C.", "model-small")]),
    ])
    labelled = label_as_shown(project, annotator, "A")
    unlabelled = ComparisonItem.objects.filter(project=project).exclude(id=labelled.item_id).get()
    right, wrong = unlabelled.slots.order_by("slot").values_list("response_id", flat=True)
    login(browser_user("ana", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")
    page.click("[data-testid=tab-items]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=item-row]').length === 2")
    assert page.locator("[data-testid=filter-annotator]").is_hidden()  # a label filter, not an item one
    assert page.locator("[data-testid=item-progress]").all_inner_texts() == ["1 of 1", "0 of 1"]
    assert page.locator("[data-testid=item-agreement]").all_inner_texts() == ["—", "—"]  # one label: nothing to agree with
    shots(page, "console-items")
    page.select_option("[data-testid=filter-item-progress]", "unlabelled")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=item-row]').length === 1")
    row = page.locator("[data-testid=item-row]")
    assert row.get_attribute("data-item-id") == str(unlabelled.id) and "boiling" in row.inner_text()

    row.locator("[data-testid=open-item]").click()
    page.wait_for_url(f"**/projects/{project.id}/items/{unlabelled.id}/")
    page.wait_for_selector("[data-testid=gold-input]")
    assert "No labels on this item yet" in page.inner_text("[data-testid=item-labels]")
    page.fill("[data-testid=gold-input]", "1 > 2")
    page.click("[data-testid=gold-save]")
    page.locator("[data-region=gold-badge]:not([hidden])").wait_for()
    assert ComparisonItem.objects.get(id=unlabelled.id).gold_ranking == [[right], [wrong]]

    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.click("[data-testid=tab-items]")
    page.select_option("[data-testid=filter-item-gold]", "true")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=item-row]').length === 1")
    assert page.locator("[data-testid=item-row] [data-testid=gold-badge]").inner_text() == "gold"


def test_an_annotators_wrong_gold_labels_are_one_click_from_the_results_page(page, live_server, login, reviewed_project, browser_user):
    from annotation.gold import item_gold_set

    project, labels, reviewer = reviewed_project
    item = ComparisonItem.objects.get(id=labels[0].item_id)
    item_gold_set(item=item, ranking=labels[0].ranking)  # what ada and bo said; cy said B
    login(browser_user("ana", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    link = page.locator("[data-testid=wrong-gold-link]")
    link.wait_for()
    assert link.count() == 1 and link.inner_text() == "1 wrong"  # cy's, nobody else's
    link.click()
    page.wait_for_url("**/labels/browse/?*gold=wrong*")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=label-row]').length === 1")
    assert page.locator("[data-testid=label-row]").get_attribute("data-label-id") == str(labels[2].id)
    assert page.input_value("[data-testid=filter-gold]") == "wrong"
    assert page.input_value("[data-testid=filter-annotator]") == str(labels[2].annotator_id)

    page.goto(f"{live_server.url}/projects/{project.id}/quality/")  # the project's figure links there too
    link = page.locator("[data-testid=wrong-gold-link]")
    link.wait_for()
    assert link.inner_text() == "see the 1 wrong" and link.get_attribute("href").endswith("/labels/browse/?gold=wrong")
    page.goto(f"{live_server.url}/projects/{project.id}/labels/browse/")
    page.wait_for_selector("[data-testid=label-row]")

    # The address follows the filters, so the view can be bookmarked: here, the Items tab's open items.
    page.click("[data-testid=tab-items]")
    page.select_option("[data-testid=filter-item-progress]", "finished")
    page.wait_for_function("() => location.search.includes('tab=items') && location.search.includes('progress=finished')")
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=item-row]').length === 1")  # the other item is gold
    assert page.locator("[data-testid=tab-items]").get_attribute("aria-selected") == "true"
    assert page.input_value("[data-testid=filter-item-progress]") == "finished"
    assert page.inner_text("[data-testid=item-agreement]") == "100 %"  # A, A, A

    # Where people disagree: the first item's A, A, B agree on one comparison of three.
    page.select_option("[data-testid=filter-item-progress]", "")
    page.fill("[data-testid=filter-item-agreement]", "0.5")
    page.wait_for_function("() => location.search.includes('agreement_below=0.5')")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=item-row]').length === 1")
    assert page.locator("[data-testid=item-row]").get_attribute("data-item-id") == str(item.id)
    assert page.inner_text("[data-testid=item-agreement]") == "33 %"
