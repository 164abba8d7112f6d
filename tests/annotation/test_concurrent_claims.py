"""Many annotators claiming at once never over-assign an item (PostgreSQL row locks)."""
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from annotation.assignment import assignment_claim_next
from annotation.models import Assignment


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_respect_the_wanted_overlap(make_project, make_user):
    if connection.vendor != "postgresql":
        pytest.fail("This test proves row locking and needs PostgreSQL: run it through scripts/test.")
    annotators = [make_user(f"racer{index}") for index in range(16)]
    project = make_project(annotators=annotators, prompts=5, labels_per_item=2)  # 5 items x 2 = 10 slots
    start = threading.Barrier(len(annotators))
    claimed, errors = [], []

    def claim_until_empty(user):
        try:
            start.wait()
            for _ in range(3):  # each racer tries a few times: renewals must not add slots either
                assignment = assignment_claim_next(project=project, annotator=user)
                if assignment is not None:
                    claimed.append((assignment.item_id, user.id))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_until_empty, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    per_item = Counter(item_id for item_id, _ in set(claimed))
    assert sorted(per_item.values()) == [2, 2, 2, 2, 2]
    assert Assignment.objects.count() == 10
    assert len({(a.item_id, a.annotator_id) for a in Assignment.objects.all()}) == 10
