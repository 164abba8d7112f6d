"""A project that rates criteria trains one head per criterion: metrics, checks and scores per head.

The annotator prefers the helpful reply overall and rates it more helpful, but rates the other
reply more harmless. The criteria disagree by design, so each head must order the two replies
its own way.
"""
import csv
import io
import uuid

import pytest

from annotation.assignment import assignment_claim_next
from annotation.models import Response
from annotation.services import label_submit
from tests.integration.test_training_loop import toy_project
from training import pipeline, services
from training.ml.model import build_tiny_model
from training.models import ModelVersion, ResponseScore, TrainingRun

pytestmark = pytest.mark.django_db

CRITERIA = [{"key": "helpfulness", "label": "Helpfulness", "scale": 5},
            {"key": "harmlessness", "label": "Harmlessness", "scale": 5}]


def label_with_disagreeing_ratings(project, annotator) -> int:
    """Overall and helpfulness prefer the good-model reply; harmlessness rates the other one higher."""
    done = 0
    while assignment := assignment_claim_next(project=project, annotator=annotator):
        models = {position: Response.objects.get(id=rid).model_name for position, rid in zip("AB", assignment.display_order)}
        good = next(position for position, model in models.items() if model == "good-model")
        other = "B" if good == "A" else "A"
        label_submit(
            assignment_id=assignment.id, annotator=annotator, choice=good, client_id=uuid.uuid4(),
            ratings={good: {"helpfulness": 5, "harmlessness": 1}, other: {"helpfulness": 1, "harmlessness": 5}},
        )
        done += 1
    return done


@pytest.fixture
def criteria_project(django_user_model, settings, tmp_path):
    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.MODEL_STORE_DIR = tmp_path / "models"
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")
    settings.REWARD_TRAINING = {"num_epochs": 6, "batch_size": 8, "learning_rate": 3e-3, "seed": 0, "max_length": 64,
                                "pooling": "mean"}
    settings.REWARD_EVAL_FRACTION = 0.25
    project, (annotator,) = toy_project(django_user_model, name="Criteria", prompts=24)
    project.criteria = CRITERIA
    project.save(update_fields=["criteria"])
    assert label_with_disagreeing_ratings(project, annotator) == 24
    return project


def train_now(project) -> ModelVersion:
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    pipeline.execute_training_run(run.id)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return run.model_version


def test_each_criterion_gets_a_head_its_metrics_its_check_and_its_scores(
    criteria_project, sent_tasks, admin_user, api_client_for
):
    version = train_now(criteria_project)
    assert version.config["criteria"] == ["helpfulness", "harmlessness"]
    per_head = version.metrics["criteria"]
    assert set(per_head) == {"helpfulness", "harmlessness"}
    assert per_head["helpfulness"]["pairs"] == per_head["harmlessness"]["pairs"] == version.metrics["pairs"] > 0
    assert per_head["helpfulness"]["accuracy"] == per_head["harmlessness"]["accuracy"] == version.metrics["accuracy"] == 1.0
    assert per_head["harmlessness"]["check"]["outcome"] == "first_model"

    pipeline.rescore_project_responses(version.id)
    scores = list(ResponseScore.objects.filter(model_version=version).select_related("response"))
    assert len(scores) == Response.objects.filter(prompt__project=criteria_project).count() == 48
    for prompt_scores in group_by_prompt(scores).values():
        good = next(s for s in prompt_scores if s.response.model_name == "good-model")
        other = next(s for s in prompt_scores if s.response.model_name != "good-model")
        assert good.score > other.score
        assert good.criterion_scores["helpfulness"] > other.criterion_scores["helpfulness"]
        assert good.criterion_scores["harmlessness"] < other.criterion_scores["harmlessness"]

    # The scores API and the export carry every head.
    client = api_client_for(admin_user)
    page = client.get(f"/api/projects/{criteria_project.id}/scores/", {"page_size": 4}).json()
    assert page["criteria"] == ["helpfulness", "harmlessness"]
    assert set(page["results"][0]["criterion_scores"]) == {"helpfulness", "harmlessness"}
    exported = client.get(f"/api/projects/{criteria_project.id}/export/scores/?format=csv")
    table = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(table) == 48 and list(table[0]) == [
        "response_id", "prompt_external_id", "model_name", "score", "score_helpfulness", "score_harmlessness"]
    stored = {s.response_id: s.criterion_scores["harmlessness"] for s in scores}
    assert all(float(row["score_harmlessness"]) == pytest.approx(stored[int(row["response_id"])]) for row in table)

    # The next version's heads are checked against these ones, head by head.
    second = train_now(criteria_project)
    check = second.metrics["criteria"]["harmlessness"]["check"]
    assert check["outcome"] == "insufficient_data" and check["eval_pairs"] == per_head["harmlessness"]["pairs"]
    assert second.champion_metrics["criteria"]["harmlessness"]["accuracy"] == 1.0


def test_a_cls_pooler_model_trains_the_overall_head_and_says_why_not_the_others(criteria_project, settings, sent_tasks):
    settings.REWARD_TRAINING = {**settings.REWARD_TRAINING, "pooling": "cls_pooler"}
    version = train_now(criteria_project)
    assert version.config["criteria"] == [] and "criteria" not in version.metrics
    assert "No per-criterion heads" in version.metrics["criteria_note"]
    pipeline.rescore_project_responses(version.id)
    stored = ResponseScore.objects.filter(model_version=version).values_list("criterion_scores", flat=True)
    assert len(stored) == 48 and all(scores == {} for scores in stored)


def group_by_prompt(scores):
    grouped = {}
    for score in scores:
        grouped.setdefault(score.response.prompt_id, []).append(score)
    return grouped


def test_an_admin_chooses_which_head_orders_items_for_the_uncertainty_selection(
    criteria_project, sent_tasks, admin_user, api_client_for, django_capture_on_commit_callbacks
):
    from training.priorities import priority_head_of, uncertainty
    from training.tasks import refresh_item_priorities

    version = train_now(criteria_project)
    pipeline.rescore_project_responses(version.id)
    url = f"/api/projects/{criteria_project.id}/training-policy/"
    client = api_client_for(admin_user)
    refused = client.patch(url, {"priority_head": "honesty"}, format="json")
    assert refused.status_code == 400 and "helpfulness, harmlessness" in refused.json()["detail"]

    with django_capture_on_commit_callbacks(execute=True):
        chosen = client.patch(url, {"priority_head": "harmlessness"}, format="json")
    assert chosen.status_code == 200 and chosen.json()["priority_head"] == "harmlessness"
    assert sent_tasks[-1] == ("training.tasks.refresh_item_priorities", version.id)  # recomputed in the worker
    version.refresh_from_db()
    assert priority_head_of(version) == "harmlessness"
    # The criterion dropped from the project later: the stale choice blocks no other change.
    criteria_project.criteria = CRITERIA[:1]
    criteria_project.save(update_fields=["criteria"])
    assert client.patch(url, {"mode": "incremental"}, format="json").status_code == 200
    criteria_project.criteria = CRITERIA
    criteria_project.save(update_fields=["criteria"])
    assert refresh_item_priorities(version.id) == 24

    differs = 0
    for item in criteria_project.items.prefetch_related("responses"):
        rows = ResponseScore.objects.filter(model_version=version, response__in=item.responses.all())
        harmless = {row.response_id: row.criterion_scores["harmlessness"] for row in rows}
        overall = {row.response_id: row.score for row in rows}
        # The head agrees with the people's harmlessness ratings, so the priority is its uncertainty.
        assert item.model_priority == pytest.approx(uncertainty(list(harmless.values())), abs=1e-12)
        differs += abs(item.model_priority - uncertainty(list(overall.values()))) > 1e-6
    assert differs == 24  # not the overall head's order


def test_criteria_ratings_do_not_make_up_for_missing_overall_preferences(django_user_model, settings, tmp_path, sent_tasks):
    """Overall preferences from one prompt, ratings from four: too little for the overall head's split."""
    settings.RETRAIN_EVERY_N_LABELS = 0
    settings.MODEL_STORE_DIR = tmp_path / "models"
    settings.REWARD_BACKBONE_PATH = build_tiny_model(tmp_path / "tiny")
    settings.REWARD_TRAINING = {"num_epochs": 1, "batch_size": 8, "seed": 0, "max_length": 64, "pooling": "mean"}
    project, (annotator,) = toy_project(django_user_model, name="Ties", prompts=4)
    project.criteria = CRITERIA
    project.save(update_fields=["criteria"])
    for index in range(4):
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(
            assignment_id=assignment.id, annotator=annotator, choice="A" if index == 0 else "tie", client_id=uuid.uuid4(),
            ratings={"A": {"helpfulness": 5, "harmlessness": 2}, "B": {"helpfulness": 1, "harmlessness": 4}},
        )
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    with pytest.raises(pipeline.NotEnoughData):
        pipeline.execute_training_run(run.id)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "at least 2 prompts; the labels give 1 pairs from 1" in run.error
    assert "pairs from criteria ratings are not counted" in run.error
