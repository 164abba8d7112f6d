"""Rescoring: resumable, tolerant of old checkpoints, and its failures are recorded."""
import pytest

from annotation.models import Response
from training import pipeline, services
from training.ml.model import build_tiny_model
from training.models import ModelVersion, ResponseScore, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def champion(project, settings, tmp_path, sent_tasks):
    """A champion whose checkpoint was saved by older code (its config names a retired field)."""
    settings.MODEL_STORE_DIR = tmp_path / "models"
    build_tiny_model(settings.MODEL_STORE_DIR / "old" / "v1")
    run = TrainingRun.objects.create(project=project, trigger="manual", status="running")
    return services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="old/v1", metrics={"accuracy": 0.9}, champion_metrics={},
        promote=True, config={"max_length": 64, "length_window": 50, "backbone_path": "/gone"}, seed=0,
        code_version="old",
    )


def test_rescoring_an_old_checkpoint_scores_every_response(champion, project):
    assert pipeline.rescore_project_responses(champion.id) == 6
    champion.refresh_from_db()
    assert champion.scored_at is not None and ResponseScore.objects.filter(model_version=champion).count() == 6


def test_rescoring_resumes_where_a_killed_worker_stopped(champion, project, settings):
    settings.SCORING_CHUNK_SIZE = 2
    done = list(Response.objects.filter(prompt__project=project).order_by("id")[:3])
    services.response_scores_store(version_id=champion.id, scores={response.id: 0.5 for response in done})
    assert ModelVersion.objects.get(id=champion.id).scored_at is None  # partial is not scored
    assert pipeline.rescore_project_responses(champion.id) == 3  # only the rest
    assert ResponseScore.objects.filter(model_version=champion, score=0.5).count() == 3  # kept, not redone
    assert pipeline.rescore_project_responses(champion.id) == 0  # a duplicate message does nothing


def test_a_failed_rescoring_is_recorded_and_the_next_attempt_clears_it(champion, settings):
    import shutil

    checkpoint = settings.MODEL_STORE_DIR / "old" / "v1"
    shutil.move(checkpoint, checkpoint.with_name("moved"))
    with pytest.raises(OSError):
        pipeline.rescore_project_responses(champion.id)
    champion.refresh_from_db()
    assert champion.scored_at is None and "old/v1" in champion.scoring_error

    shutil.move(checkpoint.with_name("moved"), checkpoint)
    pipeline.rescore_project_responses(champion.id)
    champion.refresh_from_db()
    assert champion.scored_at is not None and champion.scoring_error == ""


def test_a_completed_rescoring_gives_every_item_its_priority_from_the_new_scores(champion, project):
    from annotation.models import ComparisonItem
    from training.priorities import item_priority

    assert set(ComparisonItem.objects.filter(project=project).values_list("model_priority", flat=True)) == {0.0}
    pipeline.rescore_project_responses(champion.id)
    scores = dict(ResponseScore.objects.filter(model_version=champion).values_list("response_id", "score"))
    for item in ComparisonItem.objects.filter(project=project).prefetch_related("slots"):
        expected = item_priority({slot.response_id: scores[slot.response_id] for slot in item.slots.all()}, {})
        assert item.model_priority == pytest.approx(expected) and item.model_priority > 0


def test_rescoring_holds_one_page_of_responses_at_a_time(champion, project, make_project, settings, monkeypatch):
    """Every read of response texts is a keyset page with a LIMIT of SCORING_CHUNK_SIZE, and
    every batch scored and stored is at most that big: memory does not grow with the project."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    make_project("Another project")  # its responses come after these by id: read and scored never
    settings.SCORING_CHUNK_SIZE = 2
    scored_batches, stored_batches = [], []
    score, store = pipeline.score_response_heads, services.response_scores_store

    def counted_score(model, tokenizer, items, **kwargs):
        scored_batches.append(len(items))
        return score(model, tokenizer, items, **kwargs)

    def counted_store(**kwargs):
        stored_batches.append(len(kwargs["scores"]))
        return store(**kwargs)

    monkeypatch.setattr(pipeline, "score_response_heads", counted_score)
    monkeypatch.setattr(services, "response_scores_store", counted_store)
    with CaptureQueriesContext(connection) as queries:
        assert pipeline.rescore_project_responses(champion.id) == 6
    text_reads = [query["sql"] for query in queries.captured_queries if '"annotation_response"."text"' in query["sql"]]
    assert len(text_reads) == 4  # three full pages, then the empty one that ends the walk
    assert all(sql.rstrip().endswith("LIMIT 2") for sql in text_reads), text_reads
    # The scores side is bounded too, or PostgreSQL may merge each page against every earlier score.
    assert all('."response_id" > ' in sql for sql in text_reads), text_reads
    assert scored_batches == stored_batches == [2, 2, 2]
    assert ResponseScore.objects.filter(model_version=champion).count() == 6  # the other project's are not scored


def test_responses_imported_during_rescoring_are_scored_by_the_same_walk(champion, project, settings, monkeypatch):
    from annotation.models import Prompt

    settings.SCORING_CHUNK_SIZE = 4
    store = services.response_scores_store
    prompt = Prompt.objects.filter(project=project).first()

    def store_then_import(**kwargs):
        stored = store(**kwargs)
        if not Response.objects.filter(text="Imported while scoring.").exists():
            Response.objects.create(prompt=prompt, text="Imported while scoring.")
        return stored

    monkeypatch.setattr(services, "response_scores_store", store_then_import)
    assert pipeline.rescore_project_responses(champion.id) == 7
    champion.refresh_from_db()
    assert champion.scored_at is not None and ResponseScore.objects.filter(model_version=champion).count() == 7
