"""The leaderboard: model-vs-model comparisons from real labels, beside the champion's mean reward."""
from datetime import timedelta

import pytest
from django.utils import timezone

from training.leaderboard import leaderboard_for, model_comparisons_for
from tests.labelling import label_in_order, make_champion

pytestmark = pytest.mark.django_db


def url(project):
    return f"/api/projects/{project.id}/leaderboard/"


@pytest.fixture
def labelled(make_project, annotator):
    # "A" is the first-imported response, model-good's, because display order is pinned.
    project = make_project(annotators=[annotator], prompts=5)
    label_in_order(project, annotator, ["A", "A", "B", "tie", "both_bad"])
    return project


def test_labels_become_cross_model_comparisons_and_both_bad_is_left_out(labelled):
    assert sorted(model_comparisons_for(labelled)) == sorted(
        [("model-good", "model-bad", 1.0)] * 2 + [("model-bad", "model-good", 1.0), ("model-good", "model-bad", 0.5)]
    )


def test_admin_gets_the_board_from_real_labels(labelled, admin_user, api_client_for, sent_tasks, django_assert_max_num_queries):
    make_champion(labelled, {"model-good": [2.0, 1.0, 3.0], "model-bad": [-1.0]})
    client = api_client_for(admin_user)
    # Project, the tally, the keys of new labels, their rows with model names, champion, an earlier
    # champion with complete scores (this one is still scoring), scores: not per label.
    with django_assert_max_num_queries(7):
        response = client.get(url(labelled), {"bootstrap": 100})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["comparisons"], body["bootstrap_rounds"], body["champion_version"]) == (4, 100, 1)
    good, bad = body["models"]
    assert (good["model"], bad["model"]) == ("model-good", "model-bad")
    assert good["rating"] > 1000 > bad["rating"]
    assert good["rating"] + bad["rating"] == pytest.approx(2000)
    assert good["rating_ci"][0] <= good["rating"] <= good["rating_ci"][1]
    assert (good["comparisons"], good["wins"], good["losses"], good["ties"]) == (4, 2, 1, 1)
    assert (bad["wins"], bad["losses"], bad["ties"]) == (1, 2, 1)
    assert body["win_rate"] == {"model-good": {"model-bad": 0.625}, "model-bad": {"model-good": 0.375}}
    assert (good["mean_reward"], good["scored_responses"]) == (pytest.approx(2.0), 3)
    half = 1.96 * 1.0 / 3**0.5  # sd of [2, 1, 3] is 1
    assert good["mean_reward_ci"] == pytest.approx([2.0 - half, 2.0 + half], abs=1e-3)
    assert (bad["mean_reward"], bad["mean_reward_ci"], bad["scored_responses"]) == (-1.0, None, 1)


def test_the_board_is_the_same_on_every_load_and_empty_without_labels(labelled, make_project, admin_user, api_client_for):
    client = api_client_for(admin_user)
    assert client.get(url(labelled)).json() == client.get(url(labelled)).json()
    empty = client.get(url(make_project("Empty"))).json()
    assert empty == {"models": [], "win_rate": {}, "bootstrap_rounds": 200, "champion_version": None, "scores_version": None,
                     "comparisons": 0}


def test_scored_models_without_comparisons_are_listed_unrated(make_project, sent_tasks):
    project = make_project("Unlabelled")
    make_champion(project, {"model-good": [1.0, 2.0]})
    board = leaderboard_for(project, bootstrap_rounds=100)
    assert board["models"] == [
        {"model": "model-good", "rating": None, "rating_ci": None, "comparisons": 0, "wins": 0, "losses": 0, "ties": 0,
         "mean_reward": 1.5, "mean_reward_ci": pytest.approx([1.5 - 1.96 * 0.5, 1.5 + 1.96 * 0.5], abs=1e-3),
         "scored_responses": 2},
    ]


@pytest.mark.parametrize("rounds", ["99", "1001", "many"])
def test_bootstrap_rounds_are_bounded(labelled, admin_user, api_client_for, rounds):
    assert api_client_for(admin_user).get(url(labelled), {"bootstrap": rounds}).status_code == 400


def test_annotators_are_refused_and_other_projects_are_not_found(labelled, annotator, make_user, make_project, api_client_for):
    assert api_client_for(annotator).get(url(labelled)).status_code == 403
    other = make_project("Other", annotators=[make_user("someone")])
    assert api_client_for(annotator).get(url(other)).status_code == 404
    assert api_client_for(annotator).get("/api/projects/999999/leaderboard/").status_code == 404


def test_the_board_reads_stored_tallies_and_the_champions_summary(labelled, admin_user, api_client_for, sent_tasks,
                                                                  django_assert_num_queries):
    from annotation.models import Label
    from annotation.tallies import label_tallies_fold
    from training import services
    from training.leaderboard import _model_comparison_counts_from_labels, _model_rewards_from_scores, model_comparison_counts
    from training.models import ModelVersion

    version = make_champion(labelled, {"model-good": [2.0, 1.0, 3.0, 0.5, 1.5], "model-bad": [-1.0, 0.25, 0.0, 1.0, -2.0]})
    assert services.model_version_scoring_finish(version_id=version.id)
    version.refresh_from_db()
    assert version.reward_summary["models"] == _model_rewards_from_scores(labelled, version)
    # Old enough to be stored in the tally by beat's fold.
    Label.objects.filter(item__project=labelled).update(created_at=timezone.now() - timedelta(hours=1))
    label_tallies_fold()
    client = api_client_for(admin_user)
    first = client.get(url(labelled)).json()
    # Project, the comparison tally, the labels above its watermark (with model names), the
    # champion with its summary: no label and no score is read.
    with django_assert_num_queries(4):
        again = client.get(url(labelled)).json()
    assert again == first
    assert model_comparison_counts(labelled) == _model_comparison_counts_from_labels(labelled)
    # A rescoring under way (scored_at cleared) reads the scores again, and never the old summary.
    ModelVersion.objects.filter(id=version.id).update(scored_at=None)
    assert leaderboard_for(labelled)["models"] == first["models"]


def test_each_models_reward_is_the_mean_of_its_scores_with_a_95_percent_interval(make_project, sent_tasks):
    import statistics

    from training.leaderboard import _model_rewards_from_scores
    from training.ml.intervals import Z_95

    project = make_project("Summary", prompts=5)
    good = [2.0, 1.0, 3.0, 0.5, 1.5]
    version = make_champion(project, {"model-good": good, "model-bad": [-7.25]})
    rewards = _model_rewards_from_scores(project, version)
    half = Z_95 * statistics.stdev(good) / len(good) ** 0.5
    assert rewards["model-good"] == {"mean": pytest.approx(1.6), "ci": pytest.approx([1.6 - half, 1.6 + half]), "n": 5}
    assert rewards["model-bad"] == {"mean": -7.25, "ci": None, "n": 1}  # one score: no interval

    same = make_project("Equal scores", prompts=3)
    version = make_champion(same, {"model-good": [1e6 + 0.1] * 3})
    equal = _model_rewards_from_scores(same, version)["model-good"]
    # Rounding in the mean of squares must not turn a zero spread into an error or a wide interval.
    assert equal["n"] == 3 and equal["mean"] == pytest.approx(1e6 + 0.1)
    assert equal["ci"][1] - equal["ci"][0] == pytest.approx(0, abs=1e-3)
