"""The workbench at typing speed: background submits, their retries, and the lease budget."""
import json
import time

import pytest

from tests.browser.helpers import open_workbench, record, wait_for_assignment, wait_for_prefetch, wait_for_sent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY_INTERVAL_S = 0.2


def items(count: int) -> list[str]:
    return [
        record(f"s{index}", f"Question {index}: which answer is kinder?", [(f"Left {index}", "m1"), (f"Right {index}", "m2")])
        for index in range(count)
    ]


def beforeunload_blocks(page) -> bool:
    """Whether leaving the page now would ask first (the workbench cancels beforeunload)."""
    return page.evaluate(
        "() => { const e = new Event('beforeunload', {cancelable: true}); window.dispatchEvent(e); return e.defaultPrevented; }"
    )


def submits_of(requests, assignment_id) -> list[dict]:
    return [json.loads(r.post_data) for r in requests if r.url.endswith(f"/assignments/{assignment_id}/submit/")]


def test_twenty_items_at_a_key_every_fifth_of_a_second(page, live_server, login, browser_user, make_browser_project):
    from annotation.models import Label

    annotator = browser_user("speed-typist")
    project = make_browser_project(annotators=[annotator], lines=items(22))
    login(annotator)
    assignment_id = open_workbench(page, live_server, project)
    wait_for_prefetch(page)

    pressed = {}  # assignment id -> key
    keys = ["a", "b", "t"] * 7
    began = time.monotonic()
    for index, key in enumerate(keys[:20]):
        # A typist who reads nothing: a key every 0.2 s, but never before the item is there.
        time.sleep(max(0.0, began + index * KEY_INTERVAL_S - time.monotonic()))
        pressed[int(assignment_id)] = key
        page.keyboard.press(key)
        assignment_id = wait_for_assignment(page, previous=assignment_id)
    wait_for_sent(page)

    labels = list(Label.objects.filter(annotator=annotator))
    assert len(labels) == 20
    assert {label.assignment_id for label in labels} == set(pressed)  # each item once, none twice
    for label in labels:
        left, right = label.display_order
        expected = {"a": [[left], [right]], "b": [[right], [left]]}
        if pressed[label.assignment_id] == "t":
            assert label.is_tie
        else:
            assert not label.is_tie
            assert label.ranking == expected[pressed[label.assignment_id]]
    assert page.inner_text("[data-testid=progress]").startswith("20 done today")


@pytest.mark.parametrize("lost", ["request", "response"])
def test_a_lost_submit_is_retried_with_its_client_id(page, live_server, login, browser_user, make_browser_project, lost):
    """The network drops the first submit: before it reaches the server, or after (label stored, answer lost)."""
    from annotation.models import Label

    annotator = browser_user(f"speed-retry-{lost}")
    project = make_browser_project(annotators=[annotator], lines=items(4))
    login(annotator)
    requests = []
    page.on("request", lambda request: requests.append(request))
    failing = {"on": True, "reached_server": 0}

    def flaky(route):
        if not failing["on"]:
            route.continue_()
            return
        if lost == "response" and not failing["reached_server"]:
            route.fetch()  # the server stores the label; its answer never comes back
            failing["reached_server"] += 1
        route.abort("connectionreset")

    page.route("**/submit/", flaky)
    first = open_workbench(page, live_server, project)
    wait_for_prefetch(page)

    page.keyboard.press("a")
    second = wait_for_assignment(page, previous=first)  # the switch does not wait for the submit
    page.wait_for_selector("[data-testid=unsaved]:not([hidden])")
    assert page.inner_text("[data-testid=unsaved]").startswith("1 unsaved, retrying")
    assert beforeunload_blocks(page)

    page.keyboard.press("b")  # keeps working; this one queues behind the unsaved one
    third = wait_for_assignment(page, previous=second)
    assert third not in ("", first, second)
    page.wait_for_function("() => document.querySelector('#workbench').dataset.unsaved === '2'")
    assert submits_of(requests, second) == []  # in order: nothing overtakes the unsaved label

    failing["on"] = False
    page.wait_for_selector("[data-testid=unsaved]", state="hidden")
    wait_for_sent(page)
    assert not beforeunload_blocks(page)

    tries = submits_of(requests, first)
    assert len(tries) >= 2
    assert len({body["client_id"] for body in tries}) == 1
    assert Label.objects.filter(assignment_id=int(first)).count() == 1
    assert Label.objects.get(assignment_id=int(first)).ranking[0] == [Label.objects.get(assignment_id=int(first)).display_order[0]]
    assert Label.objects.filter(annotator=annotator).count() == 2
    # The first submit's tries all came before the second's.
    order = [r.url for r in requests if r.url.endswith("/submit/")]
    assert max(i for i, url in enumerate(order) if f"/{first}/" in url) < min(i for i, url in enumerate(order) if f"/{second}/" in url)


def test_submits_piling_up_never_take_a_fourth_lease(page, live_server, login, browser_user, make_browser_project):
    """A slow server: submits queue, the prefetch waits for a slot, and "done" never shows early."""
    from annotation.models import Assignment, Label

    annotator = browser_user("speed-slow")
    project = make_browser_project(annotators=[annotator], lines=items(6))
    login(annotator)
    held = []  # submits the "server" has not answered yet
    page.route("**/submit/", lambda route: held.append(route))
    first = open_workbench(page, live_server, project)
    wait_for_prefetch(page)

    page.keyboard.press("a")
    second = wait_for_assignment(page, previous=first)
    wait_for_prefetch(page)  # one submit out: room for the prefetch (screen + prefetched + outbox)
    page.keyboard.press("a")
    third = wait_for_assignment(page, previous=second)
    page.wait_for_function("() => Number(document.querySelector('#workbench').dataset.leaseWaits) > 0")
    assert page.get_attribute("#workbench", "data-queue") == "0"
    page.keyboard.press("a")  # nothing prefetched and no slot: waits, dimmed, for a submit to land
    page.wait_for_function("() => document.querySelector('#workbench').classList.contains('is-busy')")
    page.wait_for_timeout(300)
    active = Assignment.objects.filter(annotator=annotator, status=Assignment.Status.ACTIVE).count()
    assert active == 3
    assert len(held) == 1  # in order: one submit on the wire at a time
    assert page.get_attribute("#workbench", "data-pending") == "3"

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server catches up, one answer at a time
        page.wait_for_timeout(50)
        while held:
            held.pop(0).continue_()
        if page.get_attribute("#workbench", "data-pending") == "0" and not held:
            break
    shown = wait_for_assignment(page, previous=third)
    assert shown not in ("", first, second, third)
    assert Label.objects.filter(annotator=annotator).count() == 3
    assert page.is_hidden("[data-testid=empty-state]")


def test_undo_with_two_items_prefetched(page, live_server, login, browser_user, make_browser_project):
    """Undo while two items wait: the undone item comes back, then the one it displaced, then the rest."""
    from annotation.models import Label

    annotator = browser_user("speed-undo")
    project = make_browser_project(annotators=[annotator], lines=items(5))
    login(annotator)
    first = open_workbench(page, live_server, project)
    wait_for_prefetch(page, 2)  # screen + two prefetched: all three leases

    page.keyboard.press("a")
    second = wait_for_assignment(page, previous=first)
    page.wait_for_selector("[data-testid=undo-bar]:not([hidden])")
    page.keyboard.press("u")
    assert wait_for_assignment(page, previous=second) == first
    assert not Label.objects.filter(assignment_id=int(first)).exists()

    seen = [first]
    shown = first
    for key in ["b", "a", "a", "a", "a"]:
        page.keyboard.press(key)
        shown = wait_for_assignment(page, previous=shown)
        seen.append(shown)
    assert seen[1] == second  # the displaced item is next
    assert seen[-1] == ""  # then all done, none twice
    wait_for_sent(page)
    labels = {label.assignment_id: label for label in Label.objects.filter(annotator=annotator)}
    assert set(labels) == {int(id_) for id_ in seen[:-1]} and len(labels) == 5
    redone = labels[int(first)]
    assert redone.ranking == [[redone.display_order[1]], [redone.display_order[0]]]


def test_each_submit_brings_the_next_item_so_a_label_is_one_round_trip(
    page, live_server, login, browser_user, make_browser_project
):
    from annotation.models import Assignment, Label

    annotator = browser_user("one-trip")
    project = make_browser_project(annotators=[annotator], lines=items(16))
    login(annotator)
    requests = []
    page.on("request", lambda request: requests.append(request) if request.method == "POST" else None)
    assignment_id = open_workbench(page, live_server, project)
    wait_for_prefetch(page, count=2)

    for key in ["a", "b"] * 5:
        time.sleep(KEY_INTERVAL_S)
        page.keyboard.press(key)
        assignment_id = wait_for_assignment(page, previous=assignment_id)
    wait_for_sent(page)

    submits = [json.loads(r.post_data) for r in requests if r.url.endswith("/submit/")]
    next_items = [r for r in requests if r.url.endswith("/next-item/")]
    assert len(submits) == 10 and Label.objects.filter(annotator=annotator).count() == 10
    # The queue was full when typing began; every submit then refilled it itself, so the only
    # next-item calls are the first load and the first two prefetches.
    assert all("next" in body for body in submits)
    assert len(next_items) == 3
    assert page.locator("#workbench").get_attribute("data-queue") == "2"
    assert Assignment.objects.filter(annotator=annotator, status=Assignment.Status.ACTIVE).count() == 3
