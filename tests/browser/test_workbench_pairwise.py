"""Pairwise labelling and the workbench flow (undo, skip, leases, prefetch), keyboard only."""
import json
import time

import pytest

from tests.browser.helpers import (
    open_workbench,
    record,
    shown_texts,
    wait_for_assignment,
    wait_for_prefetch,
    wait_for_sent,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CRITERIA = [
    {"key": "helpfulness", "label": "Helpfulness", "scale": 5, "required": True},
    {"key": "honesty", "label": "Honesty", "scale": 7, "required": False},
]


def items(count: int) -> list[str]:
    return [
        record(f"q{index}", f"Question {index}: name a prime above {10 * index}.", [(f"Left {index}", "m1"), (f"Right {index}", "m2")])
        for index in range(count)
    ]


def label_for(assignment_id):
    from annotation.models import Label

    return Label.objects.get(assignment_id=int(assignment_id))


def test_strength_tie_and_both_bad(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("pair-keys")
    project = make_browser_project(annotators=[annotator], lines=items(4))
    login(annotator)
    first = open_workbench(page, live_server, project)

    page.keyboard.press("Shift+B")  # arms B: the next digit is the strength
    assert page.is_visible(".wb-actions--pairwise.is-armed [data-testid=choose-B].is-armed")
    page.keyboard.press("4")
    second = wait_for_assignment(page, previous=first)
    page.keyboard.press("a")  # no strength selected: stored without one
    third = wait_for_assignment(page, previous=second)
    page.keyboard.press("t")
    fourth = wait_for_assignment(page, previous=third)
    page.keyboard.press("x")
    assert wait_for_assignment(page, previous=fourth) == ""
    assert page.inner_text("[data-testid=progress]") == "4 done today · 0 remaining"

    much_b = label_for(first)
    left, right = much_b.display_order
    assert (much_b.ranking, much_b.strength, much_b.is_tie, much_b.both_bad) == ([[right], [left]], 4, False, False)
    plain_a = label_for(second)
    assert (plain_a.ranking, plain_a.strength) == ([[plain_a.display_order[0]], [plain_a.display_order[1]]], None)
    tie = label_for(third)
    assert (tie.is_tie, tie.both_bad, tie.strength) == (True, False, None)
    both_bad = label_for(fourth)
    assert (both_bad.is_tie, both_bad.both_bad, both_bad.strength) == (False, True, None)


def test_required_ratings_rationale_and_flags(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("pair-criteria")
    project = make_browser_project(annotators=[annotator], lines=items(1), criteria=CRITERIA, rationale_mode="required")
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)

    page.keyboard.press("a")  # nothing rated, no rationale: refused before it leaves the page
    for field in ("ratings.A.helpfulness", "ratings.B.helpfulness"):
        assert page.inner_text(f"[data-field='{field}'] .field-error") == "is required"
    assert "is required" in page.inner_text("[data-error-for=rationale]")
    assert page.locator("[data-field='ratings.A.honesty'] .field-error").is_hidden()  # optional
    assert page.get_attribute("#workbench", "data-assignment-id") == assignment_id

    page.keyboard.press("Escape")  # the failed submit focused the first error; start over with R
    page.keyboard.press("r")
    for key in ["4", "6", "2"]:  # A helpfulness, A honesty, B helpfulness; each digit moves on
        page.keyboard.press(key)
    page.keyboard.press("Escape")  # B honesty stays empty (optional)
    assert page.locator("[data-field='ratings.B.helpfulness'] .field-error").is_hidden()

    page.keyboard.press("f")  # first flag toggle: A unsafe
    page.keyboard.press("ArrowRight")  # A factual error
    page.keyboard.press("Space")
    page.keyboard.press("End")  # the item's "broken prompt"
    page.keyboard.press("Space")
    page.keyboard.press("Escape")

    page.keyboard.press("n")
    page.keyboard.type("A names a prime; B does not answer.")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # submits the choice made before (A)
    assert wait_for_assignment(page, previous=assignment_id) == ""

    label = label_for(assignment_id)
    a_id, b_id = label.display_order
    assert label.ranking == [[a_id], [b_id]]
    assert label.ratings == {str(a_id): {"helpfulness": 4, "honesty": 6}, str(b_id): {"helpfulness": 2}}
    assert sorted(label.flags, key=json.dumps) == sorted(
        [{"flag": "factual_error", "response_id": a_id}, {"flag": "broken_prompt", "response_id": None}], key=json.dumps
    )
    assert label.rationale == "A names a prime; B does not answer."


def test_server_field_errors_bring_the_item_back(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("pair-400")
    project = make_browser_project(annotators=[annotator], lines=items(2))
    login(annotator)
    first = open_workbench(page, live_server, project)
    wait_for_prefetch(page)
    refusal = {"detail": "rationale: too vague", "code": "invalid", "fields": {"rationale": ["too vague, say which fact is wrong"]}}
    page.route(
        "**/submit/",
        lambda route: route.fulfill(status=400, content_type="application/json", body=json.dumps(refusal)),
    )

    page.keyboard.press("b")  # the next item shows at once; the refusal brings this one back
    page.wait_for_function(
        "(id) => document.querySelector('#workbench').dataset.assignmentId === id && "
        "!document.querySelector('[data-error-for=rationale]').hidden",
        arg=first,
    )
    assert page.inner_text("[data-error-for=rationale]") == "too vague, say which fact is wrong"
    assert page.get_attribute("#workbench", "data-queue") == "1"  # the other item waits, still leased

    page.unroute("**/submit/")
    page.fill("[data-region=rationale]", "B misstates the prime.")
    page.keyboard.press("Control+Enter")
    second = wait_for_assignment(page, previous=first)
    assert second != first
    wait_for_sent(page)
    label = label_for(first)
    assert label.ranking[0] == [label.display_order[1]]
    assert label.rationale == "B misstates the prime."


def test_undo_brings_the_item_back_and_keeps_only_the_new_answer(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label

    annotator = browser_user("pair-undo")
    project = make_browser_project(annotators=[annotator], lines=items(2))
    login(annotator)
    first = open_workbench(page, live_server, project)
    before = shown_texts(page)
    wait_for_prefetch(page)

    page.keyboard.press("a")
    second = wait_for_assignment(page, previous=first)
    page.wait_for_selector("[data-testid=undo-bar]:not([hidden])")
    assert "Saved: A better" in page.inner_text("[data-testid=undo-bar]")
    page.keyboard.press("u")
    assert wait_for_assignment(page, previous=second) == first
    assert shown_texts(page) == before  # same item, same left/right order
    assert not Label.objects.filter(assignment_id=first).exists()

    page.keyboard.press("b")
    assert wait_for_assignment(page, previous=first) == second  # the item that was waiting comes back
    page.keyboard.press("t")
    assert wait_for_assignment(page, previous=second) == ""

    # Both submits may be in flight at once, so label ids need not follow the screen order.
    labels = {label.assignment_id: label for label in Label.objects.filter(annotator=annotator)}
    assert set(labels) == {int(first), int(second)}
    redone = labels[int(first)]
    assert redone.ranking == [[redone.display_order[1]], [redone.display_order[0]]]  # B, not the undone A
    assert labels[int(second)].is_tie


def test_skip_with_a_written_reason(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Assignment

    annotator = browser_user("pair-skip")
    project = make_browser_project(annotators=[annotator], lines=items(2))
    login(annotator)
    first = open_workbench(page, live_server, project)

    page.keyboard.press("s")
    page.keyboard.press("4")  # "Other…" asks for a sentence
    page.keyboard.type("Same question as q0, asked twice")
    page.keyboard.press("Enter")
    second = wait_for_assignment(page, previous=first)
    page.keyboard.press("s")
    page.keyboard.press("Escape")  # changed my mind: nothing skipped
    assert page.is_hidden("#skip-dialog")
    page.keyboard.press("s")
    page.keyboard.press("2")
    assert wait_for_assignment(page, previous=second) == ""

    reasons = dict(Assignment.objects.filter(annotator=annotator).values_list("id", "skip_reason"))
    assert reasons == {int(first): "Other: Same question as q0, asked twice", int(second): "Can't judge"}


def test_late_submit_after_the_lease_went_to_someone_else(page, live_server, login, browser_user, make_browser_project, settings):
    from annotation.assignment import assignment_claim_next
    from annotation.models import Label

    settings.ASSIGNMENT_LEASE_SECONDS = 2
    settings.WORKBENCH_HEARTBEAT_SECONDS = 3600  # this page never renews its lease
    slow, quick = browser_user("lease-slow"), browser_user("lease-quick")
    project = make_browser_project(annotators=[slow, quick], lines=items(1))
    login(slow)
    assignment_id = open_workbench(page, live_server, project)
    assert page.get_attribute("#workbench", "data-heartbeat-ms") == "3600000"

    time.sleep(2.5)
    taken = assignment_claim_next(project=project, annotator=quick)
    assert taken is not None and taken.item_id == label_item(assignment_id)

    page.keyboard.press("a")
    assert wait_for_assignment(page, previous=assignment_id) == ""
    toast = page.locator(".toast--error").first.inner_text()
    assert toast.startswith("Not saved: ") and "expired" in toast
    assert not Label.objects.filter(annotator=slow).exists()


def label_item(assignment_id) -> int:
    from annotation.models import Assignment

    return Assignment.objects.get(id=int(assignment_id)).item_id


def test_prefetched_item_switches_without_a_request(page, live_server, login, browser_user, make_browser_project, settings):
    settings.WORKBENCH_HEARTBEAT_SECONDS = 0.3
    annotator = browser_user("pair-prefetch")
    project = make_browser_project(annotators=[annotator], lines=items(3))
    login(annotator)
    requests = []
    page.on("request", lambda request: requests.append(request))

    with page.expect_response(lambda r: "next-item" in r.url and json.loads(r.request.post_data or "{}").get("exclude")) as prefetch:
        first = open_workbench(page, live_server, project)
    prefetched = str(prefetch.value.json()["assignment"]["id"])
    wait_for_prefetch(page)
    # Both leases are kept alive: the item on screen and the one waiting.
    page.wait_for_function(
        "(ids) => ids.every(id => performance.getEntriesByType('resource').some(e => e.name.endsWith('/assignments/' + id + '/heartbeat/')))",
        arg=[first, prefetched],
    )

    mark = len(requests)
    page.keyboard.press("a")
    second = wait_for_assignment(page, previous=first)
    switch_ms = float(page.get_attribute("#workbench", "data-last-switch-ms"))
    print(f"\nswitch to the prefetched item: {switch_ms:.1f} ms")

    assert second == prefetched
    assert switch_ms < 100
    after = requests[mark:]
    submits = [r for r in after if r.url.endswith("/submit/")]
    assert [r.url.rsplit("/", 3)[-3] for r in submits] == [first]
    # Any next-item request after the key press is the prefetch of the item after this one.
    for request in (r for r in after if r.url.endswith("/next-item/")):
        assert int(second) in json.loads(request.post_data)["exclude"]
