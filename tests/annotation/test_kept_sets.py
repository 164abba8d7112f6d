"""The label browser's set filters: kept answers brought up to date item by item stay exact."""
import random

import pytest

from annotation import kept_sets, review, review_items
from annotation.agreement import item_ids_below_agreement
from annotation.models import ComparisonItemResponse, Label, Response
from annotation.review import BrowserFilters, label_review, project_disagreeing_label_ids, review_labels
from annotation.review_items import ItemFilters
from annotation.services import label_delete, label_undo
from config.errors import DomainError
from tests.console.review_fixtures import submit
from training import services as training_services
from training.model_quality import label_ids_disagreeing_with_champion
from training.models import TrainingRun

pytestmark = pytest.mark.django_db

THRESHOLD = 0.75


@pytest.fixture
def crowd(make_project, make_user, sent_tasks):
    """Four labels wanted per item, six annotators, a reviewer, and a champion with random scores."""
    users = [make_user(f"crowd{index}") for index in range(6)]
    project = make_project("Kept", annotators=users, prompts=8, labels_per_item=4)
    reviewer = make_user("kept-reviewer")
    project.reviewers.add(reviewer)
    run = TrainingRun.objects.create(project=project, trigger="manual", status="running")
    champion = training_services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="kept/v1", metrics={}, champion_metrics={}, promote=True,
        config={}, seed=0, code_version="test",
    )
    rng = random.Random(99)
    training_services.response_scores_store(
        version_id=champion.id,
        scores={response_id: rng.gauss(0, 1) for response_id in Response.objects.filter(
            prompt__project=project).values_list("id", flat=True)},
    )
    return project, users, reviewer


class FullReads:
    """How often each filter read its whole answer, counted around the real functions."""

    def __init__(self, monkeypatch):
        self.counts = {"disagreement": 0, "model": 0, "agreement": 0}
        majority = review.project_disagreeing_label_ids
        provider, inputs, items_provider = review.LABEL_ID_SETS[review.MODEL_DISAGREEMENT]
        below = review_items.item_ids_below_agreement

        def counted(name, function):
            def call(*args, **kwargs):
                if kwargs.get("item_ids") is None:
                    self.counts[name] += 1
                return function(*args, **kwargs)
            return call

        monkeypatch.setattr(review, "project_disagreeing_label_ids", counted("disagreement", majority))
        monkeypatch.setitem(review.LABEL_ID_SETS, review.MODEL_DISAGREEMENT,
                            (counted("model", provider), inputs, items_provider))
        monkeypatch.setattr(review_items, "item_ids_below_agreement", counted("agreement", below))

    def snapshot(self) -> dict:
        return dict(self.counts)


def browsed(project) -> dict:
    """Each filter's answer as the label browser reads it."""
    return {
        "disagreement": set(review_labels(project=project, filters=BrowserFilters(disagreement=True)).values_list("id", flat=True)),
        "model": set(review_labels(project=project, filters=BrowserFilters(model_disagreement=True)).values_list("id", flat=True)),
        "agreement": set(review_items.review_items(project=project, filters=ItemFilters(agreement_below=THRESHOLD))
                         .values_list("id", flat=True)),
    }


def computed_afresh(project) -> dict:
    return {
        "disagreement": project_disagreeing_label_ids(project=project),  # the functions themselves, not counted
        "model": label_ids_disagreeing_with_champion(project),
        "agreement": item_ids_below_agreement(project_id=project.id, threshold=THRESHOLD),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_added_and_reviewed_labels_patch_the_answers_and_anything_else_reads_afresh(crowd, monkeypatch, seed):
    project, users, reviewer = crowd
    rng = random.Random(seed)
    for _ in range(12):
        submit(project, rng.choice(users), choice=rng.choice("AB"))
    reads = FullReads(monkeypatch)
    assert browsed(project) == computed_afresh(project)
    assert reads.snapshot() == {"disagreement": 1, "model": 1, "agreement": 1}

    patched = afresh = 0
    for step in range(45):
        labels = list(Label.objects.filter(item__project=project).order_by("id"))
        action = rng.choice(["add", "add", "add", "reject", "correct", "revert", "undo", "delete"])
        before = reads.snapshot()
        if action == "add":
            open_users = [user for user in users if Label.objects.filter(item__project=project, annotator=user).count() < 8]
            submit(project, rng.choice(open_users), choice=rng.choice(["A", "B", "tie"]))
        elif action == "reject" and labels:
            label_review(label_id=rng.choice(labels).id, reviewer=reviewer, decision="reject", reason="checked")
        elif action == "correct" and labels:
            label = rng.choice(labels)
            rankings = [[["A"], ["B"]], [["B"], ["A"]], [["A", "B"]]]
            rng.shuffle(rankings)
            for corrected in rankings:  # what the annotator said is refused ("accept it instead")
                try:
                    label_review(label_id=label.id, reviewer=reviewer, decision="correct", reason="checked",
                                 corrected_ranking=corrected)
                    break
                except DomainError:
                    continue
        elif action == "revert":
            reviewed = [label for label in labels if label.review_status != Label.ReviewStatus.UNREVIEWED]
            if not reviewed:
                continue
            label_review(label_id=rng.choice(reviewed).id, reviewer=reviewer, decision="revert")
        elif action == "undo":
            unreviewed = [label for label in labels if label.review_status == Label.ReviewStatus.UNREVIEWED]
            if not unreviewed:
                continue
            label = unreviewed[-1]
            label_undo(label_id=label.id, annotator=label.annotator)
        elif action == "delete" and labels:
            label_delete(label_id=rng.choice(labels).id)
        else:
            continue
        assert browsed(project) == computed_afresh(project), (step, action)
        after = reads.snapshot()
        if action in ("undo", "delete"):
            # A label gone: only a full read can follow.
            assert after == {name: count + 1 for name, count in before.items()}, (step, action)
            afresh += 1
        else:
            assert after == before, (step, action)
            patched += 1
    assert patched > 20 and afresh > 3


def test_a_label_committed_after_a_newer_one_was_seen_is_not_missed(crowd):
    project, users, _ = crowd
    for user in users[:4]:
        submit(project, user, choice="A")
    seen = kept_sets.labels_state(project)
    # As if the newest label had not yet committed when the state was read: its id is under the
    # newest id seen, so only the count of labels made can tell it arrived.
    early = kept_sets.LabelsState(seen.project_created_at, seen.newest_label, seen.newest_review, seen.labels_made - 1)
    assert kept_sets.items_changed_between(project, early, seen) is None
    assert kept_sets.items_changed_between(project, seen, seen) == set()
    submit(project, users[4], choice="B")
    assert kept_sets.items_changed_between(project, seen, kept_sets.labels_state(project)) == {
        Label.objects.latest("id").item_id
    }


def test_after_the_full_read_interval_a_change_reads_everything_again(crowd, monkeypatch):
    project, users, _ = crowd
    submit(project, users[0], choice="A")
    submit(project, users[1], choice="B")
    reads = FullReads(monkeypatch)
    browsed(project)
    monkeypatch.setattr(kept_sets, "FULL_READ_AFTER_SECONDS", 0.0)
    browsed(project)  # nothing changed: the kept answers, whatever their age
    assert reads.snapshot() == {"disagreement": 1, "model": 1, "agreement": 1}
    submit(project, users[2], choice="A")
    assert browsed(project) == computed_afresh(project)
    assert reads.snapshot() == {"disagreement": 2, "model": 2, "agreement": 2}


def test_a_new_champion_score_reads_the_model_filter_afresh(crowd, monkeypatch):
    project, users, _ = crowd
    for user in users[:3]:
        submit(project, user, choice="A")
    reads = FullReads(monkeypatch)
    browsed(project)
    version = project.model_versions.get(status="champion")
    slot = ComparisonItemResponse.objects.filter(item__project=project).first()
    # Scores are only ever added: a rescoring's next chunk, or a late import's responses.
    new = Response.objects.create(prompt=slot.item.prompt, text="late", model_name="late")
    training_services.response_scores_store(version_id=version.id, scores={new.id: 0.0})
    assert browsed(project) == computed_afresh(project)
    assert reads.snapshot() == {"disagreement": 1, "model": 2, "agreement": 1}


def test_a_complete_champion_keeps_its_answer_while_another_project_rescores(crowd, make_project, monkeypatch):
    project, users, _ = crowd
    for user in users[:3]:
        submit(project, user, choice="A")
    version = project.model_versions.get(status="champion")
    training_services.response_scores_store(version_id=version.id, scores={
        response_id: 0.0 for response_id in Response.objects.filter(prompt__project=project)
        .exclude(scores__model_version=version).values_list("id", flat=True)
    })
    assert training_services.model_version_scoring_finish(version_id=version.id)
    reads = FullReads(monkeypatch)
    browsed(project)
    other = make_project("Other", prompts=2)
    run = TrainingRun.objects.create(project=other, trigger="manual", status="running")
    elsewhere = training_services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="other/v1", metrics={}, champion_metrics={}, promote=True,
        config={}, seed=0, code_version="test",
    )
    training_services.response_scores_store(version_id=elsewhere.id, scores={
        response_id: 1.0 for response_id in Response.objects.filter(prompt__project=other).values_list("id", flat=True)
    })
    assert browsed(project) == computed_afresh(project)
    assert reads.snapshot()["model"] == 1  # kept: nothing this project's filter reads changed
    # A top-up after an import completes the set again: read afresh.
    late = Response.objects.create(prompt=project.prompts.first(), text="late", model_name="late")
    training_services.response_scores_store(version_id=version.id, scores={late.id: 0.0})
    assert training_services.model_version_scoring_finish(version_id=version.id)
    assert browsed(project) == computed_afresh(project)
    assert reads.snapshot()["model"] == 2
