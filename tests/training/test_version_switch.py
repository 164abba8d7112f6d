"""A new champion's scores replace the previous champion's in one step, never row by row.

While the new champion is still scoring, the Results page's table, its leaderboard and the
default scores export keep the previous champion's complete set; the switch happens when
``model_version_scoring_finish`` marks the new set complete.
"""
import json

import pytest

from annotation.models import Response
from tests.labelling import label_in_order, make_champion
from training import services

pytestmark = pytest.mark.django_db

V1 = {"model-good": [1.0, 2.0, 3.0, 4.0], "model-bad": [-1.0, -2.0, -3.0, -4.0]}


@pytest.fixture
def switching(make_project, sent_tasks):
    """v1, champion with every response scored; v2 promoted over it, half of its scores stored."""
    project = make_project(prompts=4)
    v1 = make_champion(project, V1)
    assert services.model_version_scoring_finish(version_id=v1.id)
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    v2 = services.training_run_complete(
        run_id=run.id, version=2, checkpoint_path=f"project-{project.id}/v2", metrics={"accuracy": 0.9, "pairs": 12},
        champion_metrics={"accuracy": 0.8}, promote=True, config={}, seed=0, code_version="test",
    )
    responses = list(Response.objects.filter(prompt__project=project).order_by("id"))
    v2_scores = {response.id: 100.0 + index for index, response in enumerate(responses)}
    half = dict(list(v2_scores.items())[:4])
    services.response_scores_store(version_id=v2.id, scores=half)
    return project, v2, v2_scores


def scores_page(client, project):
    body = client.get(f"/api/projects/{project.id}/scores/", {"page_size": 100}).json()
    return body, {row["response_id"]: row["score"] for row in body["results"]}


def test_the_previous_champion_is_shown_until_the_new_one_has_scored_every_response(
    switching, admin_user, api_client_for
):
    project, v2, v2_scores = switching
    client = api_client_for(admin_user)

    body, shown = scores_page(client, project)
    assert body["champion"]["version"] == 2 and body["champion"]["scored"] is False
    assert body["scores_version"] == 1
    assert sorted(shown.values()) == sorted(V1["model-good"] + V1["model-bad"])  # every row v1's, none v2's
    assert body["summary"] == {"responses": 8, "scored": 8, "champion_scored": 4}
    board = client.get(f"/api/projects/{project.id}/leaderboard/").json()
    assert (board["champion_version"], board["scores_version"]) == (2, 1)
    assert {row["model"]: row["mean_reward"] for row in board["models"]} == {"model-good": 2.5, "model-bad": -2.5}

    # Every score stored but the set not yet marked complete: still v1's, whole.
    services.response_scores_store(version_id=v2.id, scores=v2_scores)
    body, shown = scores_page(client, project)
    assert body["scores_version"] == 1 and sorted(shown.values()) == sorted(V1["model-good"] + V1["model-bad"])

    assert services.model_version_scoring_finish(version_id=v2.id)
    body, shown = scores_page(client, project)
    assert body["scores_version"] == 2 and body["champion"]["scored"] is True
    assert shown == v2_scores
    assert body["summary"] == {"responses": 8, "scored": 8, "champion_scored": 8}
    board = client.get(f"/api/projects/{project.id}/leaderboard/").json()
    assert board["scores_version"] == 2
    assert sum(row["mean_reward"] * row["scored_responses"] for row in board["models"]) == sum(v2_scores.values())


def test_the_default_scores_export_is_the_complete_set(switching, admin_user, api_client_for):
    project, v2, v2_scores = switching
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.id}/export/scores/?format=jsonl"

    def exported() -> dict:
        lines = b"".join(client.get(url).streaming_content).decode().splitlines()
        return {row["response_id"]: row["score"] for row in map(json.loads, lines)}

    assert sorted(exported().values()) == sorted(V1["model-good"] + V1["model-bad"])
    services.response_scores_store(version_id=v2.id, scores=v2_scores)
    services.model_version_scoring_finish(version_id=v2.id)
    assert exported() == v2_scores


def test_a_first_champion_shows_its_own_scores_while_it_scores(make_project, admin_user, api_client_for):
    project = make_project(prompts=2)
    make_champion(project, {"model-good": [1.0]})  # one of four scored, nothing earlier to show
    body, shown = scores_page(api_client_for(admin_user), project)
    assert body["scores_version"] == 1 and sorted(filter(None, shown.values())) == [1.0]
    assert body["summary"] == {"responses": 4, "scored": 1, "champion_scored": 1}


def test_what_people_and_model_disagree_on_is_read_from_the_scores_shown(switching, make_user, admin_user, api_client_for):
    """The Quality page's disagreements, the Annotators card's agreement with the model and the
    label browser's model filter judge with the same version as the Results table: v1's whole
    set while v2 scores (v2's half would contradict two of the four labels), then v2's."""
    project, v2, v2_scores = switching
    person = make_user("judge")
    project.annotators.add(person)
    label_in_order(project, person, ["A"] * 4)  # the lower id, model-good: v1 agrees, v2 does not
    client = api_client_for(admin_user)
    base = f"/api/projects/{project.id}/"

    def judged() -> tuple:
        disagreements = client.get(base + "model-disagreements/").json()
        report = client.get(base + "annotator-report/").json()
        browsed = client.get(base + "review/labels/", {"model_disagreement": "true"}).json()["results"]
        return (disagreements["champion"]["version"], len(disagreements["results"]),
                report["annotators"][0]["model_agreement"], len(browsed))

    assert judged() == (1, 0, {"compared": 4, "agreed": 4, "rate": 1.0}, 0)
    services.response_scores_store(version_id=v2.id, scores=v2_scores)
    assert judged() == (1, 0, {"compared": 4, "agreed": 4, "rate": 1.0}, 0)  # complete, not yet switched
    assert services.model_version_scoring_finish(version_id=v2.id)
    assert judged() == (2, 4, {"compared": 4, "agreed": 0, "rate": 0.0}, 4)
