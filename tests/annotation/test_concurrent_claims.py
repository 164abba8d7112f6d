"""Many annotators claiming at once never over-assign an item (PostgreSQL row locks),
and none of them is told the queue is empty while an item is still open to them."""
import threading
import uuid
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from django.db.models import Count

from annotation.assignment import assignment_claim_next
from annotation.models import Assignment, ComparisonItem, Label
from annotation.services import label_submit
from config.errors import ConflictError
from tests.real_services import require_postgresql


@pytest.fixture
def needs_postgresql():
    require_postgresql("Proving row locking between connections")


def make_annotators(prefix: str, count: int) -> list:
    # Plain rows without a password: hashing dozens of passwords would dominate the runtime.
    return [get_user_model().objects.create(username=f"{prefix}{index}") for index in range(count)]


def run_racers(users, work) -> list[BaseException]:
    """Run ``work(user)`` in one thread per user, all released at once; returns their errors."""
    start = threading.Barrier(len(users))
    errors = []

    def race(user):
        try:
            start.wait()
            work(user)
        except Exception as exc:  # noqa: BLE001 - surfaced by the caller's assertion
            errors.append(exc)
        finally:
            connections.close_all()  # each thread opened its own connection

    threads = [threading.Thread(target=race, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    return errors


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_respect_the_wanted_overlap(needs_postgresql, make_project):
    annotators = make_annotators("racer", 16)
    project = make_project(annotators=annotators, prompts=5, labels_per_item=2)  # 5 items x 2 = 10 slots
    claimed = []

    def claim_a_few_times(user):
        for _ in range(3):  # each racer tries a few times: renewals must not add slots either
            assignment = assignment_claim_next(project=project, annotator=user)
            if assignment is not None:
                claimed.append((assignment.item_id, user.id))

    assert run_racers(annotators, claim_a_few_times) == []
    per_item = Counter(item_id for item_id, _ in set(claimed))
    assert sorted(per_item.values()) == [2, 2, 2, 2, 2]
    assert Assignment.objects.count() == 10
    assert len({(a.item_id, a.annotator_id) for a in Assignment.objects.all()}) == 10


def still_open_to(user, *, project) -> int:
    """Items that could still be dealt to ``user``: short of leases and not already theirs.

    Counted from the rows, independently of the claim's own queries. Nothing lapses or
    is skipped in these tests, so this only falls over time: a count taken just after
    a claim said "done" is a lower bound on what was open when it said so.
    """
    return (
        ComparisonItem.objects.filter(project=project)
        .annotate(leases=Count("assignments"))
        .filter(leases__lt=project.labels_per_item)
        .exclude(assignments__annotator=user)
        .count()
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("labels_per_item", "prompts"), [(1, 300), (2, 150)])
def test_64_annotators_label_everything_and_nobody_is_told_done_early(
    needs_postgresql, make_project, labels_per_item, prompts
):
    annotators = make_annotators("crowd", 64)
    project = make_project(annotators=annotators, prompts=prompts, labels_per_item=labels_per_item)
    open_when_told_done = {}

    def label_until_done(user):
        # Sequential order is the worst case: every claimer reads the same first candidates.
        while (assignment := assignment_claim_next(project=project, annotator=user, ordering="sequential")) is not None:
            label_submit(assignment_id=assignment.id, annotator=user, choice="A", client_id=uuid.uuid4())
        open_when_told_done[user.username] = still_open_to(user, project=project)

    assert run_racers(annotators, label_until_done) == []
    assert len(open_when_told_done) == len(annotators)
    told_done_early = {name: still_open for name, still_open in open_when_told_done.items() if still_open}
    assert told_done_early == {}
    labels_on_item = Counter(Label.objects.filter(item__project=project).values_list("item_id", flat=True))
    assert len(labels_on_item) == prompts
    assert set(labels_on_item.values()) == {labels_per_item}
    label_counts = ComparisonItem.objects.filter(project=project).values_list("label_count", flat=True)
    assert set(label_counts) == {labels_per_item}
    leases = Assignment.objects.filter(item__project=project)
    assert not leases.exclude(status=Assignment.Status.SUBMITTED).exists()


@pytest.mark.django_db(transaction=True)
def test_a_claim_does_not_wait_for_a_lease_that_a_submit_holds(needs_postgresql, make_project):
    """Two tabs of one annotator: one submits an expired lease (assignment row, then the item's),
    the other's claim reaches the same item (item row, then that lease to renew it). Waiting for
    each other's row was a deadlock; the claim now passes the item by."""
    import time
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    (annotator,) = make_annotators("tabs", 1)
    project = make_project(annotators=[annotator], prompts=1)
    lease = assignment_claim_next(project=project, annotator=annotator)
    Assignment.objects.filter(id=lease.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    submit_holds_the_lease, claim_done = threading.Event(), threading.Event()

    def submit_tab():
        try:
            with transaction.atomic():
                list(Assignment.objects.select_for_update().filter(id=lease.id))  # as label_submit's first lock
                submit_holds_the_lease.set()
                claim_done.wait(timeout=10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=submit_tab)
    holder.start()
    assert submit_holds_the_lease.wait(timeout=10)
    started = time.monotonic()
    try:
        # The only item is the lease being submitted: "ask again" (a 409), by which time it is labelled.
        with pytest.raises(ConflictError):
            assignment_claim_next(project=project, annotator=annotator)
    finally:
        claim_done.set()
        holder.join(timeout=20)
    assert time.monotonic() - started < 2, "the claim waited for the submit's lock"
    assert Assignment.objects.get(id=lease.id).expires_at < timezone.now()  # not renewed under the submit
