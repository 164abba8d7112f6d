"""A submit is bounded and idempotent: absurd time and flag spam are refused or folded,
and concurrent retries of one submit all get its label, never a 409."""
import threading
import uuid
from collections import Counter

import pytest
from django.db import connections

from annotation.models import Label
from annotation.services import label_submit
from annotation.submission import MAX_FLAGS, MAX_SECONDS_SPENT
from config.errors import DomainError
from tests.real_services import require_postgresql


def claim(client, project):
    response = client.post(f"/api/projects/{project.id}/next-item/")
    assert response.status_code == 200, response.content
    return response.json()["assignment"]["id"]


def submit(client, assignment_id, **extra):
    body = {"choice": "A", "client_id": str(uuid.uuid4()), "seconds_spent": 2.5, **extra}
    return client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")


@pytest.mark.django_db
@pytest.mark.parametrize("seconds", [1e308, MAX_SECONDS_SPENT + 1, -1])
def test_implausible_seconds_spent_is_a_field_error(api_client_for, project, annotator, seconds):
    client = api_client_for(annotator)
    response = submit(client, claim(client, project), seconds_spent=seconds)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid" and "seconds_spent" in body["fields"]
    assert not Label.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("seconds", [float("inf"), float("nan"), 1e308, MAX_SECONDS_SPENT + 0.5, True])
def test_the_service_refuses_what_the_serializer_would(project, annotator, seconds):
    from annotation.assignment import assignment_claim_next

    assignment = assignment_claim_next(project=project, annotator=annotator)
    with pytest.raises(DomainError) as error:
        label_submit(assignment_id=assignment.id, annotator=annotator, client_id=uuid.uuid4(), choice="A", seconds_spent=seconds)
    assert list(error.value.fields) == ["seconds_spent"]


@pytest.mark.django_db
def test_a_whole_day_is_still_accepted(api_client_for, project, annotator):
    client = api_client_for(annotator)
    response = submit(client, claim(client, project), seconds_spent=MAX_SECONDS_SPENT)
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_a_thousand_duplicate_flags_are_refused(api_client_for, project, annotator):
    client = api_client_for(annotator)
    flags = [{"flag": "unsafe", "position": "A"}] * 1000
    response = submit(client, claim(client, project), flags=flags)
    assert response.status_code == 400, response.content
    assert "flags" in response.json()["fields"]
    assert not Label.objects.exists()


@pytest.mark.django_db
def test_duplicate_flags_are_stored_once(api_client_for, project, annotator):
    client = api_client_for(annotator)
    flags = [{"flag": "unsafe", "position": "A"}] * (MAX_FLAGS - 3) + [
        {"flag": "unsafe", "position": "B"},
        {"flag": "broken_prompt", "position": "A"},  # item-level: the position is dropped
        {"flag": "broken_prompt"},
    ]
    response = submit(client, claim(client, project), flags=flags)
    assert response.status_code == 201, response.content
    stored = Label.objects.get().flags
    assert len(stored) == 3
    assert Counter(flag["flag"] for flag in stored) == {"unsafe": 2, "broken_prompt": 1}


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_submit_all_get_its_label(make_project, annotator):
    require_postgresql("Racing retries of one submit on the assignment row lock")
    from annotation.assignment import assignment_claim_next

    project = make_project(annotators=[annotator], prompts=5)
    client_id = uuid.uuid4()
    for round_ in range(5):  # the race is timing-dependent: run it a few times
        assignment = assignment_claim_next(project=project, annotator=annotator)
        assert assignment is not None, f"round {round_}: no item left"
        client_id = uuid.uuid4()
        start = threading.Barrier(10)
        results, errors = [], []

        def retry():
            try:
                start.wait()
                results.append(
                    label_submit(assignment_id=assignment.id, annotator=annotator, client_id=client_id, choice="A", seconds_spent=3)
                )
            except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=retry) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, f"round {round_}: {errors!r}"
        assert sorted(created for _, created in results) == [False] * 9 + [True]
        assert len({label.id for label, _ in results}) == 1
        assert Label.objects.filter(client_id=client_id).count() == 1
