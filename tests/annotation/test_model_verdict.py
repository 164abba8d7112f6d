"""The reward model's verdict, shown to annotators after they submit and only where the project allows it.

Off by default (seeing it first would bias them); on, the submit's answer carries it, in the
positions the annotator saw and never with a model name or response id. Nothing that shows an
item (next-item, skip, undo, a submit's `next`) ever carries it. Also the two project settings
that came with it: `reveal_model_verdict` and `uncertainty_random_share`.
"""
import json
import math
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.model_verdict import verdict_from_scores
from annotation.models import Project, Response
from annotation.services import project_create, project_import_jsonl, project_update
from tests.annotation.test_hot_path_queries import SUBMIT_QUERIES
from tests.labelling import make_champion
from training.services import model_version_scoring_finish

pytestmark = pytest.mark.django_db

GOOD, BAD = 2.0, 1.0  # the champion's scores of every prompt's good and bad answer
SURE = 1 / (1 + math.exp(-(GOOD - BAD)))  # its probability that the good one wins: sigmoid(1) = 0.73
# What a revealing project's submit adds: the version whose scores are shown, then the item's scores.
VERDICT_QUERIES = 2


def lease(client, project) -> dict:
    response = client.post(f"/api/projects/{project.id}/next-item/", {}, format="json")
    assert response.status_code == 200, response.content
    assert "model_verdict" not in json.dumps(response.json())
    return response.json()["assignment"]


def position_of(assignment: dict, word: str) -> str:
    """The position at which the response whose text contains ``word`` is shown."""
    return next(response["position"] for response in assignment["responses"] if word in response["text"])


def submit(client, assignment_id: int, **answer):
    body = {"client_id": str(uuid.uuid4()), **answer}
    return client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")


def reveal(project, on: bool = True) -> None:
    project_update(project=project, reveal_model_verdict=on)


@pytest.fixture
def champion(project, sent_tasks):
    """A champion that scored every response: the good answers GOOD, the bad ones BAD."""
    version = make_champion(project, {"model-good": [GOOD] * 3, "model-bad": [BAD] * 3})
    assert model_version_scoring_finish(version_id=version.id)
    return version


# ---------------------------------------------------------------- when there is none


def test_off_by_default_the_answer_has_no_verdict(project, annotator, api_client_for, champion):
    assert Project.objects.get(id=project.id).reveal_model_verdict is False
    client = api_client_for(annotator)
    response = submit(client, lease(client, project)["id"], choice="A")

    assert response.status_code == 201
    assert response.json()["model_verdict"] is None


def test_on_without_a_champion_the_verdict_is_null(project, annotator, api_client_for):
    reveal(project)
    client = api_client_for(annotator)
    response = submit(client, lease(client, project)["id"], choice="A")

    assert response.status_code == 201 and response.json()["model_verdict"] is None


def test_a_response_the_model_has_not_scored_means_no_verdict(project, annotator, api_client_for, sent_tasks):
    # Still scoring: only the first prompt's two answers have scores (no earlier complete champion).
    make_champion(project, {"model-good": [GOOD], "model-bad": [BAD]})
    reveal(project)
    client = api_client_for(annotator)

    first = lease(client, project)
    answered = submit(client, first["id"], choice=position_of(first, "good")).json()
    assert answered["model_verdict"] is not None and answered["model_verdict"]["version"] == 1
    second = lease(client, project)
    assert submit(client, second["id"], choice="A").json()["model_verdict"] is None


# ---------------------------------------------------------------- what it says


def test_pairwise_verdict_agrees_or_not_in_the_positions_shown(project, annotator, api_client_for, champion):
    reveal(project)
    client = api_client_for(annotator)

    shown = lease(client, project)
    good, bad = position_of(shown, "good"), position_of(shown, "bad")
    verdict = submit(client, shown["id"], choice=good).json()["model_verdict"]
    assert verdict["version"] == 1 and verdict["order"] == [good, bad]
    assert verdict["probability"] == pytest.approx(SURE)
    assert verdict["agrees"] is True

    shown = lease(client, project)
    good, bad = position_of(shown, "good"), position_of(shown, "bad")
    verdict = submit(client, shown["id"], choice=bad, strength=3).json()["model_verdict"]
    assert verdict["order"] == [good, bad] and verdict["agrees"] is False


@pytest.mark.parametrize("choice", ["tie", "both_bad"])
def test_a_tie_or_both_bad_neither_agrees_nor_disagrees(project, annotator, api_client_for, champion, choice):
    reveal(project)
    client = api_client_for(annotator)
    shown = lease(client, project)
    verdict = submit(client, shown["id"], choice=choice).json()["model_verdict"]

    assert verdict["order"] == [position_of(shown, "good"), position_of(shown, "bad")]
    assert verdict["agrees"] is None


def test_ranking_verdict_orders_every_position_and_checks_the_first_group(make_user, api_client_for, sent_tasks):
    annotator = make_user("ranker")
    project = project_create(name="Ranked", label_format="ranking", annotators=[annotator], reveal_model_verdict=True)
    lines = [
        json.dumps({
            "external_id": f"r{index}",
            "conversation": [{"role": "user", "content": f"Question {index}?"}],
            "responses": [
                {"text": f"top answer {index}", "model": "m-top"},
                {"text": f"middle answer {index}", "model": "m-mid"},
                {"text": f"low answer {index}", "model": "m-low"},
            ],
        })
        for index in range(2)
    ]
    project_import_jsonl(project=project, lines=lines, source="ranked.jsonl")
    version = make_champion(project, {"m-top": [3.0, 3.0], "m-low": [1.0, 1.0], "m-mid": [2.5, 2.5]})
    assert model_version_scoring_finish(version_id=version.id)
    client = api_client_for(annotator)

    shown = lease(client, project)
    top, mid, low = (position_of(shown, word) for word in ("top", "middle", "low"))
    verdict = submit(client, shown["id"], ranking=[[mid, top], [low]]).json()["model_verdict"]
    assert verdict["order"] == [top, mid, low]
    assert verdict["probability"] == pytest.approx(1 / (1 + math.exp(-0.5)))  # top against the runner-up
    assert verdict["agrees"] is True  # the model's favourite is in the first group

    shown = lease(client, project)
    top, mid, low = (position_of(shown, word) for word in ("top", "middle", "low"))
    verdict = submit(client, shown["id"], ranking=[[low], [top], [mid]]).json()["model_verdict"]
    assert verdict["order"] == [top, mid, low] and verdict["agrees"] is False


def test_equal_top_scores_make_no_claim():
    verdict = verdict_from_scores(version=2, scores={11: 1.0, 12: 1.0}, display_order=[12, 11], ranking=[[11], [12]], makes_no_claim=False)
    assert verdict == {"version": 2, "order": ["A", "B"], "probability": 0.5, "agrees": None}
    assert verdict_from_scores(version=2, scores={11: 1.0}, display_order=[12, 11], ranking=[[11], [12]], makes_no_claim=False) is None


# ---------------------------------------------------------------- blind, and only after the submit


def test_the_verdict_names_no_model_and_no_response(project, annotator, api_client_for, champion):
    reveal(project)
    client = api_client_for(annotator)
    shown = lease(client, project)
    answer = submit(client, shown["id"], choice="A").json()

    verdict = answer["model_verdict"]
    # Four fields, none of which can hold an id or a name: a version number, letters, a probability, a flag.
    assert set(verdict) == {"version", "order", "probability", "agrees"}
    assert sorted(verdict["order"]) == ["A", "B"]
    assert isinstance(verdict["probability"], float) and isinstance(verdict["agrees"], bool)
    names = set(Response.objects.filter(prompt__project=project).values_list("model_name", flat=True))
    assert names == {"model-good", "model-bad"}
    assert not any(name in json.dumps(answer) for name in names)


def test_nothing_that_shows_an_item_carries_it(project, annotator, api_client_for, champion):
    reveal(project)
    client = api_client_for(annotator)

    shown = lease(client, project)  # lease() checks the next-item answer
    answer = client.post(
        f"/api/assignments/{shown['id']}/submit/",
        {"choice": "A", "client_id": str(uuid.uuid4()), "next": {"exclude": [shown["id"]]}},
        format="json",
    ).json()
    assert answer["model_verdict"] is not None
    assert "model_verdict" not in json.dumps(answer["next"])  # the next item comes without one

    skipped = client.post(f"/api/assignments/{answer['next']['assignment']['id']}/skip/", {"next": {"exclude": []}}, format="json")
    assert skipped.status_code == 200 and "model_verdict" not in json.dumps(skipped.json())
    assert "model_verdict" not in json.dumps(client.get(f"/api/projects/{project.id}/labels/").json())


def test_a_retried_submit_answers_the_same_verdict(project, annotator, api_client_for, champion):
    reveal(project)
    client = api_client_for(annotator)
    shown = lease(client, project)
    body = {"choice": position_of(shown, "good"), "client_id": str(uuid.uuid4())}

    first = client.post(f"/api/assignments/{shown['id']}/submit/", body, format="json")
    retry = client.post(f"/api/assignments/{shown['id']}/submit/", body, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["model_verdict"] == first.json()["model_verdict"] and first.json()["model_verdict"]["agrees"]


# ---------------------------------------------------------------- cost on the hot path


@pytest.mark.parametrize("revealing", [False, True], ids=["off", "on"])
def test_a_submit_costs_no_query_more_unless_the_project_reveals(make_project, make_user, api_client_for, sent_tasks, revealing):
    annotator = make_user("counted")
    project = make_project(annotators=[annotator], labels_per_item=2)  # one annotator: the submit completes nothing
    version = make_champion(project, {"model-good": [GOOD] * 3, "model-bad": [BAD] * 3})
    assert model_version_scoring_finish(version_id=version.id)
    reveal(project, revealing)
    client = api_client_for(annotator)
    # As in test_hot_path_queries: the annotator has labelled before, so the rows it touches exist.
    assert submit(client, lease(client, project)["id"], choice="A").status_code == 201
    assignment_id = lease(client, project)["id"]

    with CaptureQueriesContext(connection) as queries:
        response = submit(client, assignment_id, choice="A")
    assert response.status_code == 201
    assert (response.json()["model_verdict"] is not None) is revealing
    assert len(queries.captured_queries) == SUBMIT_QUERIES + (VERDICT_QUERIES if revealing else 0)


# ---------------------------------------------------------------- the settings


def test_an_admin_sets_both_settings_and_an_annotator_cannot(project, admin_user, annotator, api_client_for):
    url = f"/api/projects/{project.id}/"
    shown = api_client_for(annotator).get(url).json()
    assert (shown["reveal_model_verdict"], shown["uncertainty_random_share"]) == (False, 0.2)

    refused = api_client_for(annotator).patch(url, {"reveal_model_verdict": True}, format="json")
    assert refused.status_code == 403

    changed = api_client_for(admin_user).patch(url, {"reveal_model_verdict": True, "uncertainty_random_share": 0.5}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["reveal_model_verdict"], changed.json()["uncertainty_random_share"]) == (True, 0.5)
    project.refresh_from_db()
    assert (project.reveal_model_verdict, project.uncertainty_random_share) == (True, 0.5)


def test_a_project_is_created_with_both_settings(admin_user, api_client_for):
    body = {"name": "Active", "selection_order": "uncertainty", "uncertainty_random_share": 0.1, "reveal_model_verdict": True}
    response = api_client_for(admin_user).post("/api/projects/", body, format="json")

    assert response.status_code == 201, response.content
    project = Project.objects.get(id=response.json()["id"])
    assert (project.selection_order, project.uncertainty_random_share, project.reveal_model_verdict) == ("uncertainty", 0.1, True)


@pytest.mark.parametrize("share", ["NaN", "nan", "inf", 1.5, -0.1, "lots", None])
def test_a_bad_random_share_is_a_400_naming_the_field(project, admin_user, api_client_for, share):
    client = api_client_for(admin_user)
    created = client.post("/api/projects/", {"name": "Bad share", "uncertainty_random_share": share}, format="json")
    assert created.status_code == 400, created.content
    assert "uncertainty_random_share" in created.json()["fields"]
    assert not Project.objects.filter(name="Bad share").exists()

    patched = client.patch(f"/api/projects/{project.id}/", {"uncertainty_random_share": share}, format="json")
    assert patched.status_code == 400 and "uncertainty_random_share" in patched.json()["fields"]
    project.refresh_from_db()
    assert project.uncertainty_random_share == 0.2


def test_the_service_refuses_nan_too(project):
    from config.errors import DomainError

    with pytest.raises(DomainError) as refused:
        project_update(project=project, uncertainty_random_share=float("nan"))
    assert "uncertainty_random_share" in refused.value.fields


# ---------------------------------------------------------------- undo


def test_a_label_whose_verdict_was_shown_cannot_be_undone(project, annotator, api_client_for, champion):
    """Undo, then submit again, would let the model's verdict decide the new answer."""
    client = api_client_for(annotator)
    hidden = submit(client, lease(client, project)["id"], choice="A").json()
    undone = client.post(f"/api/labels/{hidden['label']['id']}/undo/", {}, format="json")
    assert undone.status_code == 200 and "model_verdict" not in json.dumps(undone.json())  # off: undo as ever

    reveal(project)
    shown = submit(client, lease(client, project)["id"], choice="A").json()
    assert shown["model_verdict"] is not None
    refused = client.post(f"/api/labels/{shown['label']['id']}/undo/", {}, format="json")
    assert refused.status_code == 409 and "verdict" in refused.json()["detail"]
