"""The stored label tallies give exactly what reading every label gives, whatever order labels arrive in.

Each step changes the labels (new ones settled or not, ids out of creation order, an undo, an
admin's deletion, a cascade) and then compares ``project_annotator_quality`` (with and
without an excluded annotator) and ``model_comparison_counts`` with the full computations
they replaced, kept as the reference.
"""
import io
import random
import uuid
from datetime import timedelta

import pytest
from django.core.management.color import no_style
from django.db import connection
from django.db.models import Count, Max, Q
from django.utils import timezone

from annotation.models import Assignment, ComparisonItem, Label, LabelTally
from annotation.progress import progress_recount
from annotation.quality import _project_annotator_quality_from_labels, project_annotator_quality
from annotation.review import label_review
from annotation.services import label_delete, label_submit, label_undo
from annotation.tallies import label_tallies_check, label_tallies_fold, label_tallies_rebuild, settle_age
from tests.annotation.test_hot_path_plans import big_project  # noqa: F401 (a fixture)
from training.leaderboard import _model_comparison_counts_from_labels, model_comparison_counts

pytestmark = pytest.mark.django_db


def settled_at():
    return timezone.now() - settle_age() - timedelta(minutes=1)


def add_label(item, annotator, rng, *, settled: bool, label_id: int | None = None) -> Label:
    """A label written directly (as a bulk load or a racing commit would), settled or just made."""
    first, second = item.slots.order_by("slot").values_list("response_id", flat=True)
    ranking, both_bad = rng.choice(
        [([[first], [second]], False), ([[second], [first]], False), ([[first, second]], False), ([[first, second]], True)]
    )
    label = Label.objects.create(
        **({"id": label_id} if label_id else {}), item=item, annotator=annotator, client_id=uuid.uuid4(),
        ranking=ranking, is_tie=len(ranking) == 1 and not both_bad, both_bad=both_bad, display_order=[first, second],
    )
    if settled:
        Label.objects.filter(id=label.id).update(created_at=settled_at())
    if label_id:
        with connection.cursor() as cursor:  # PostgreSQL's sequence does not see explicit ids
            for sql in connection.ops.sequence_reset_sql(no_style(), [Label]):
                cursor.execute(sql)
    return label


def assert_same_as_reading_every_label(project, excluded):
    """Before beat's fold (the labels not yet stored counted in memory) and after it."""
    for _ in range(2):
        for excluded_ids in ((), [excluded.id]):
            assert project_annotator_quality(project_id=project.id, excluded_annotator_ids=excluded_ids) == (
                _project_annotator_quality_from_labels(project_id=project.id, excluded_annotator_ids=excluded_ids)
            )
        assert model_comparison_counts(project) == _model_comparison_counts_from_labels(project)
        label_tallies_fold()


@pytest.fixture
def crowd(make_project, make_user):
    users = [make_user(f"crowd{index}") for index in range(5)]
    project = make_project("Crowd", annotators=users, prompts=40, labels_per_item=5)
    other = make_project("Elsewhere", annotators=users, prompts=5, labels_per_item=5)
    return project, other, users


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folding_in_steps_equals_reading_every_label(crowd, seed):
    project, other, users = crowd
    rng = random.Random(seed)
    items = list(ComparisonItem.objects.filter(project=project).order_by("id"))
    unlabelled = [(item, user) for item in items for user in users]
    rng.shuffle(unlabelled)

    def add(count: int, *, settled_share: float) -> list[Label]:
        return [add_label(*unlabelled.pop(), rng, settled=rng.random() < settled_share) for _ in range(count)]

    # Labels in another project never count here.
    for item in ComparisonItem.objects.filter(project=other):
        add_label(item, users[0], rng, settled=True)
        add_label(item, users[1], rng, settled=True)

    assert_same_as_reading_every_label(project, users[2])
    assert not LabelTally.objects.filter(project=project).exists()  # nothing of its own settled: nothing written
    add(60, settled_share=1.0)
    assert_same_as_reading_every_label(project, users[2])
    tally = LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT)
    assert tally.folded == 60 and not tally.folded_above

    add(40, settled_share=0.5)
    assert_same_as_reading_every_label(project, users[3])

    # Ids out of creation order: a settled label far above a young one with a smaller id. The
    # watermark stays below the young one; the settled one is listed above it.
    top = Label.objects.aggregate(top=Max("id"))["top"]
    item, user = unlabelled.pop()
    high = add_label(item, user, rng, settled=True, label_id=top + 50)
    item, user = unlabelled.pop()
    low = add_label(item, user, rng, settled=False, label_id=top + 10)
    assert_same_as_reading_every_label(project, users[2])
    tally = LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT)
    assert tally.watermark < low.id and high.id in tally.folded_above
    # A label that commits late, below labels already read: picked up on the next read.
    item, user = unlabelled.pop()
    add_label(item, user, rng, settled=False, label_id=top + 5)
    assert_same_as_reading_every_label(project, users[4])
    # Once the young ones settle, the watermark passes them all.
    Label.objects.filter(item__project=project).update(created_at=settled_at())
    assert_same_as_reading_every_label(project, users[2])
    tally = LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT)
    assert tally.watermark == high.id and tally.folded_above == []
    assert tally.folded == Label.objects.filter(item__project=project).count()

    # An undo (of a young label, as the undo window allows) in the middle of more labels.
    add(10, settled_share=0.5)
    item, claimant = unlabelled.pop()
    lease = Assignment.objects.create(item=item, annotator=claimant, display_order=list(
        item.slots.order_by("slot").values_list("response_id", flat=True)), expires_at=timezone.now() + timedelta(hours=1))
    undone, _ = label_submit(assignment_id=lease.id, annotator=claimant, client_id=uuid.uuid4(), choice="A")
    assert_same_as_reading_every_label(project, users[1])
    label_undo(label_id=undone.id, annotator=claimant)
    assert_same_as_reading_every_label(project, users[1])
    assert not LabelTally.objects.filter(project=project, stale=True).exists()

    # An administrator deletes a stored label: it leaves the tallies in place, no rebuild.
    stored = Label.objects.filter(item__project=project, created_at__lt=settled_at() + timedelta(seconds=30)).first()
    label_delete(label_id=stored.id)
    assert not LabelTally.objects.filter(project=project, stale=True).exists()
    add(10, settled_share=0.5)
    assert_same_as_reading_every_label(project, users[0])
    assert not LabelTally.objects.filter(project=project, stale=True).exists()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rejections_reverts_and_deletions_change_the_tallies_in_place(crowd, make_user, seed):
    """Reviews and deletions of labels stored, listed above the watermark or not yet stored, in
    any order, leave the tallies exactly what reading every label gives, without a rebuild."""
    project, _, users = crowd
    reviewer = make_user("reviewer")
    project.reviewers.add(reviewer)
    rng = random.Random(seed)
    items = list(ComparisonItem.objects.filter(project=project).order_by("id"))
    unlabelled = [(item, user) for item in items for user in users]
    rng.shuffle(unlabelled)
    for _ in range(90):
        add_label(*unlabelled.pop(), rng, settled=rng.random() < 0.8)
    label_tallies_fold()
    # Settled labels above young ones (a fifth of the first 90, and one far above the rest): listed
    # in folded_above, not under the watermark.
    top = Label.objects.aggregate(top=Max("id"))["top"]
    add_label(*unlabelled.pop(), rng, settled=True, label_id=top + 40)
    add_label(*unlabelled.pop(), rng, settled=False, label_id=top + 20)
    label_tallies_fold()
    assert top + 40 in LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT).folded_above

    def recount():
        """The items' counts and the progress rows, as the services would have kept them."""
        counted = Count("labels", filter=~Q(labels__review_status="rejected"))
        for item in ComparisonItem.objects.filter(project=project).annotate(counted=counted):
            ComparisonItem.objects.filter(id=item.id).update(label_count=item.counted)
        progress_recount(project=project)

    recount()
    rejected: list[int] = []
    for step in range(40):
        action = rng.choice(["reject", "reject", "revert", "delete", "add", "settle"])
        if action == "reject":
            label = rng.choice(list(Label.objects.filter(item__project=project).exclude(review_status="rejected")))
            label_review(label_id=label.id, reviewer=reviewer, decision="reject", reason="wrong")
            rejected.append(label.id)
        elif action == "revert" and rejected:
            label_review(label_id=rejected.pop(rng.randrange(len(rejected))), reviewer=reviewer, decision="revert")
        elif action == "delete":
            label = rng.choice(list(Label.objects.filter(item__project=project)))
            label_delete(label_id=label.id)
            if label.id in rejected:
                rejected.remove(label.id)
        elif action == "add" and unlabelled:
            add_label(*unlabelled.pop(), rng, settled=rng.random() < 0.5)
            recount()
        elif action == "settle":
            Label.objects.filter(item__project=project).update(created_at=settled_at())
        if step % 3 == 0:
            label_tallies_fold()  # the watermark moves past rejected labels too
        assert not LabelTally.objects.filter(project=project, stale=True).exists(), step
        assert_same_as_reading_every_label(project, users[step % len(users)])
    assert label_tallies_check()["rebuilt"] == 0  # each tally holds as many labels as it says
    stored = {tally.kind: tally.counts for tally in LabelTally.objects.filter(project=project)}
    label_tallies_rebuild(project=project)
    assert {tally.kind: tally.counts for tally in LabelTally.objects.filter(project=project)} == stored


def test_a_cascade_around_the_services_is_found_by_the_check(crowd):
    project, _, users = crowd
    rng = random.Random(7)
    for item in ComparisonItem.objects.filter(project=project).order_by("id")[:10]:
        for user in users[:3]:
            add_label(item, user, rng, settled=True)
    assert_same_as_reading_every_label(project, users[0])
    assert label_tallies_check()["rebuilt"] == 0

    ComparisonItem.objects.filter(project=project).order_by("id").first().delete()  # the admin, cascading
    assert label_tallies_check() == {"checked": 2, "rebuilt": 2}
    assert_same_as_reading_every_label(project, users[0])


def test_a_rebuild_after_a_bulk_load_stores_every_settled_label(crowd):
    project, _, users = crowd
    rng = random.Random(3)
    for item in ComparisonItem.objects.filter(project=project).order_by("id")[:12]:
        for user in users:
            add_label(item, user, rng, settled=rng.random() < 0.8)
    assert label_tallies_rebuild(project=project) == 2
    settled = Label.objects.filter(item__project=project, created_at__lt=timezone.now() - settle_age()).count()
    assert {tally.folded for tally in LabelTally.objects.filter(project=project)} == {settled}
    assert_same_as_reading_every_label(project, users[1])


# Scoped project look-up, the tally row, the keys of the labels above its watermark (with their
# items' other labels), usernames: when this process has read every one of those labels before.
QUALITY_QUERIES = 4
# One more for the rows of the labels it has not read yet.
QUALITY_NEW_LABELS_QUERIES = QUALITY_QUERIES + 1
# With more settled labels waiting than LABEL_TALLY_READ_FOLD_LIMIT (beat behind): a savepoint,
# the tally row locked, saved, released.
QUALITY_STORING_QUERIES = QUALITY_NEW_LABELS_QUERIES + 4


@pytest.mark.parametrize("labelled_items", [4, 36])
def test_annotator_quality_costs_the_same_queries_whatever_the_labels(
    crowd, labelled_items, admin_user, api_client_for, django_assert_num_queries, settings
):
    project, _, users = crowd
    rng = random.Random(labelled_items)
    items = list(ComparisonItem.objects.filter(project=project).order_by("id"))
    for item in items[:labelled_items]:
        for user in users[:3]:
            add_label(item, user, rng, settled=True)
    client = api_client_for(admin_user)
    url = f"/api/projects/{project.id}/annotator-quality/"
    label_tallies_fold()

    with django_assert_num_queries(QUALITY_QUERIES):  # nothing new
        assert client.get(url).status_code == 200
    for user in users[3:]:
        add_label(items[0], user, rng, settled=False)
    with django_assert_num_queries(QUALITY_NEW_LABELS_QUERIES):  # new, not settled: counted, not stored
        body = client.get(url).json()
    assert body == _project_annotator_quality_from_labels(project_id=project.id)
    with django_assert_num_queries(QUALITY_QUERIES):  # the same again: their rows are known
        assert client.get(url).json() == body
    for item in items[labelled_items:labelled_items + 2]:
        add_label(item, users[0], rng, settled=True)
        add_label(item, users[1], rng, settled=True)
    with django_assert_num_queries(QUALITY_NEW_LABELS_QUERIES):  # settled, left for beat to store
        body = client.get(url).json()
    assert body == _project_annotator_quality_from_labels(project_id=project.id)
    folded = LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT).folded
    assert folded == labelled_items * 3

    settings.LABEL_TALLY_READ_FOLD_LIMIT = 3  # beat is behind: the read stores them itself
    add_label(items[labelled_items + 2], users[2], rng, settled=True)
    with django_assert_num_queries(QUALITY_STORING_QUERIES):
        body = client.get(url).json()
    assert body == _project_annotator_quality_from_labels(project_id=project.id)
    assert LabelTally.objects.get(project=project, kind=LabelTally.Kind.AGREEMENT).folded == folded + 5


def test_rows_kept_between_reads_never_stand_for_a_new_label_with_a_reused_id(crowd):
    """A process keeps the rows of labels it has read; a new label given a deleted one's id
    (SQLite does that) is read afresh, not answered with the deleted label's row."""
    project, _, users = crowd
    rng = random.Random(5)
    items = list(ComparisonItem.objects.filter(project=project).order_by("id"))
    for item in items[:3]:
        for user in users[:3]:
            add_label(item, user, rng, settled=False)
    assert_same_as_reading_every_label(project, users[0])
    newest = Label.objects.filter(item__project=project).order_by("-id").first()
    reused_id, item, annotator, ranking = newest.id, newest.item, newest.annotator, newest.ranking
    newest.delete()  # and written again before the next read
    seed = 0
    while True:  # the same id, a different verdict: a kept row would count the deleted label's
        reused = add_label(item, annotator, random.Random(seed), settled=False, label_id=reused_id)
        if reused.ranking != ranking:
            break
        reused.delete()
        seed += 1
    assert_same_as_reading_every_label(project, users[0])


def test_reads_write_nothing_and_the_fold_stores_what_settled(crowd):
    project, _, users = crowd
    rng = random.Random(11)
    for item in ComparisonItem.objects.filter(project=project).order_by("id")[:6]:
        for user in users[:3]:
            add_label(item, user, rng, settled=True)
    assert_same_as_reading_every_label(project, users[0])
    before = {tally.id: tally.version for tally in LabelTally.objects.filter(project=project)}
    young = add_label(ComparisonItem.objects.filter(project=project).order_by("id")[7], users[0], rng, settled=False)
    settled = add_label(ComparisonItem.objects.filter(project=project).order_by("id")[8], users[0], rng, settled=True)
    project_annotator_quality(project_id=project.id)
    model_comparison_counts(project)
    assert {tally.id: tally.version for tally in LabelTally.objects.filter(project=project)} == before

    assert label_tallies_fold(project=project) == {"projects": 1, "folded": 2}  # one label, in each of two tallies
    for tally in LabelTally.objects.filter(project=project):
        assert tally.watermark == settled.id or settled.id in tally.folded_above
        assert young.id > tally.watermark and young.id not in tally.folded_above
    assert label_tallies_fold(project=project)["folded"] == 0  # safe to run twice


def test_the_fold_runs_from_beat_and_from_a_command(crowd, settings):
    from django.core.management import call_command

    from annotation.tasks import fold_label_tallies

    assert settings.CELERY_BEAT_SCHEDULE["fold-label-tallies"]["task"] == fold_label_tallies.name
    project, _, users = crowd
    add_label(ComparisonItem.objects.filter(project=project).first(), users[0], random.Random(1), settled=True)
    assert fold_label_tallies() == {"projects": 2, "folded": 2}
    add_label(ComparisonItem.objects.filter(project=project).last(), users[0], random.Random(2), settled=True)
    out = io.StringIO()
    call_command("fold_label_tallies", "--project", "Crowd", stdout=out)
    assert out.getvalue() == "Folded 2 labels into the tallies of 1 projects.\n"


def test_a_quiet_projects_watermark_moves_past_other_projects_labels(crowd):
    """Reads of a project whose own labels are few must not walk every later label of the others."""
    project, other, users = crowd
    rng = random.Random(7)
    add_label(ComparisonItem.objects.filter(project=project).first(), users[0], rng, settled=True)
    label_tallies_fold()
    for item in ComparisonItem.objects.filter(project=other):
        for user in users[:3]:
            add_label(item, user, rng, settled=True)
    young = add_label(ComparisonItem.objects.filter(project=other).first(), users[3], rng, settled=False)

    assert_same_as_reading_every_label(project, users[1])

    # Up to the last settled label of any project; not past the young one, which may have
    # neighbours still committing.
    for tally in LabelTally.objects.filter(project=project):
        assert tally.watermark == young.id - 1
        assert tally.folded == 1 and tally.folded_above == []


def test_reading_the_tallies_never_scans_the_labels(big_project):
    """PostgreSQL plans of the reads and of beat's fold storing newly settled labels: every big table through an index."""
    from django.test.utils import CaptureQueriesContext

    from tests.annotation.test_hot_path_plans import _explained

    project, users = big_project
    Label.objects.filter(item__project=project).update(created_at=settled_at())
    label_tallies_rebuild(project=project)
    rng = random.Random(5)
    for item in ComparisonItem.objects.filter(project=project, label_count=0).order_by("id")[:3]:
        add_label(item, users[0], rng, settled=True)
        add_label(item, users[1], rng, settled=False)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    with CaptureQueriesContext(connection) as queries:
        project_annotator_quality(project_id=project.id)
        model_comparison_counts(project)
        label_tallies_fold(project=project)
    assert LabelTally.objects.filter(project=project, folded=Label.objects.filter(
        item__project=project, created_at__lt=settled_at() + timedelta(seconds=30)).count()).count() == 2
    explained = _explained([query["sql"] for query in queries.captured_queries])
    assert len(explained) >= 6
    assert [(sql[:200], tables) for sql, tables in explained if tables] == []


@pytest.mark.parametrize("command", ["rebuild_label_tallies", "fold_label_tallies", "render_markdown", "check_integrity"])
def test_commands_name_an_unknown_project_instead_of_doing_all(command):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="No project named 'nope'"):
        call_command(command, "--project", "nope")
