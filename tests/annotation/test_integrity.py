"""Counters cannot drift for good: label_delete keeps them right, and check_integrity finds and
repairs what writes around the services (a deleted user, raw ORM updates) leave behind."""
import io
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.assignment import assignment_claim_next
from annotation.integrity import integrity_check, integrity_repair
from annotation.models import Assignment, ComparisonItem, Label
from annotation.services import label_delete, label_submit
from config.errors import NotFoundError

pytestmark = pytest.mark.django_db


def label_next(project, annotator) -> Label:
    assignment = assignment_claim_next(project=project, annotator=annotator)
    label, _ = label_submit(assignment_id=assignment.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    return label


def check_integrity(*args) -> tuple[int, str]:
    """Run the command as cron would: (exit status, what it printed)."""
    out = io.StringIO()
    try:
        call_command("check_integrity", *args, stdout=out)
    except CommandError as error:  # manage.py exits with error.returncode
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


@pytest.fixture
def team(make_user):
    return [make_user(name) for name in ("ann", "bob", "cy")]


@pytest.fixture
def labelled(make_project, team):
    """Two items that ann and bob have both labelled (two labels wanted per item)."""
    project = make_project(annotators=team, prompts=2, labels_per_item=2)
    for user in team[:2]:
        label_next(project, user)
        label_next(project, user)
    return project


# label_delete


def test_label_delete_frees_the_slot_for_someone_else_but_not_for_its_author(labelled, team):
    ann, bob, cy = team
    label = Label.objects.filter(annotator=bob).first()

    assignment = label_delete(label_id=label.id)

    assert assignment.status == Assignment.Status.SKIPPED
    assert "deleted by an administrator" in assignment.skip_reason
    assert ComparisonItem.objects.get(id=label.item_id).label_count == 1
    assert assignment_claim_next(project=labelled, annotator=cy).item_id == label.item_id
    assert assignment_claim_next(project=labelled, annotator=bob) is None
    assert integrity_check().clean


def test_label_delete_recounts_a_count_that_had_already_drifted(labelled):
    label = Label.objects.first()
    ComparisonItem.objects.filter(id=label.item_id).update(label_count=0)  # drifted low before the delete

    label_delete(label_id=label.id)

    assert ComparisonItem.objects.get(id=label.item_id).label_count == 1  # not -1, not an IntegrityError
    assert integrity_check().clean


def test_label_delete_of_a_missing_label_changes_nothing(labelled):
    with pytest.raises(NotFoundError):
        label_delete(label_id=10**9)
    assert integrity_check().clean


# check_integrity


def test_a_database_written_only_by_the_services_is_clean(labelled, team):
    label_delete(label_id=Label.objects.first().id)
    assignment_claim_next(project=labelled, annotator=team[2])

    status, output = check_integrity()

    assert status == 0
    assert "Checked 2 comparison items, 5 assignments, 3 labels in all projects:" in output
    for check in ("label_count", "submitted_without_label", "label_assignment_not_submitted", "label_without_assignment"):
        assert f"ok     {check}: no " in output
    assert "No drift found." in output


def test_deleting_a_user_leaves_counts_too_high_and_check_integrity_repairs_them(labelled, team):
    ann, bob, cy = team
    items = sorted(ComparisonItem.objects.values_list("id", flat=True))
    bob.delete()  # cascades bob's labels and assignments; label_count stays at 2
    assert list(ComparisonItem.objects.values_list("label_count", flat=True)) == [2, 2]
    assert assignment_claim_next(project=labelled, annotator=cy) is None  # both items look finished

    status, output = check_integrity()

    assert status == 1
    assert "DRIFT  label_count: 2 comparison items whose label_count differs from their number of labels" in output
    assert f"item {items[0]}: label_count 2, labels 1" in output
    assert "run again with --repair" in output

    status, output = check_integrity("--repair")

    assert status == 0
    assert (
        "Repaired: label_without_assignment 0, label_assignment_not_submitted 0, submitted_without_label 0, "
        "label_count 2." in output
    )
    assert output.rstrip().endswith("No drift found.")
    assert list(ComparisonItem.objects.values_list("label_count", flat=True)) == [1, 1]
    assert {label_next(labelled, cy).item_id, label_next(labelled, cy).item_id} == set(items)
    assert check_integrity()[0] == 0


def test_a_label_deleted_around_the_services_is_found_and_its_slot_freed(labelled, team):
    ann, bob, cy = team
    label = Label.objects.filter(annotator=bob).first()
    assignment_id = label.assignment_id
    Label.objects.filter(id=label.id).delete()  # raw ORM: no count, assignment still submitted

    report = integrity_check()

    assert {drift.check: drift.count for drift in report.drift} == {"label_count": 1, "submitted_without_label": 1}
    assert report.drift[1].examples == (f"assignment {assignment_id}: item {label.item_id}, annotator {bob.id}",)
    assert integrity_repair() == {
        "label_without_assignment": 0,
        "label_assignment_not_submitted": 0,
        "submitted_without_label": 1,
        "label_count": 1,
    }
    assert integrity_check().clean
    assert Assignment.objects.get(id=assignment_id).status == Assignment.Status.SKIPPED
    assert assignment_claim_next(project=labelled, annotator=cy).item_id == label.item_id
    assert assignment_claim_next(project=labelled, annotator=bob) is None


def test_a_labelled_item_whose_assignment_was_reopened_is_marked_submitted(labelled):
    label = Label.objects.first()
    Assignment.objects.filter(id=label.assignment_id).update(status=Assignment.Status.ACTIVE, finished_at=None)

    status, output = check_integrity()
    assert status == 1
    assert f"label {label.id}: assignment {label.assignment_id} is active" in output

    integrity_repair()

    assignment = Assignment.objects.get(id=label.assignment_id)
    assert (assignment.status, assignment.finished_at) == (Assignment.Status.SUBMITTED, label.created_at)
    assert integrity_check().clean


def test_a_label_whose_assignment_was_deleted_gets_one_back(labelled, team):
    ann, bob, cy = team
    gone, reused = Label.objects.filter(annotator=ann)[:2]
    Assignment.objects.filter(id=gone.assignment_id).delete()  # Label.assignment is SET_NULL
    # For the other, the assignment row is lost from the label but still there, reopened.
    Assignment.objects.filter(id=reused.assignment_id).update(status=Assignment.Status.ACTIVE)
    Label.objects.filter(id=reused.id).update(assignment=None)

    report = integrity_check()
    orphans = next(drift for drift in report.drift if drift.check == "label_without_assignment")
    assert orphans.count == 2

    assert integrity_repair()["label_without_assignment"] == 2

    assert integrity_check().clean
    gone.refresh_from_db()
    recreated = gone.assignment
    assert (recreated.annotator, recreated.item_id) == (ann, gone.item_id)
    assert recreated.status == Assignment.Status.SUBMITTED
    assert recreated.display_order == gone.display_order
    assert Label.objects.get(id=reused.id).assignment_id == reused.assignment_id
    assert assignment_claim_next(project=labelled, annotator=ann) is None  # not dealt the items again


def test_project_option_checks_and_repairs_one_project(labelled, make_project, team):
    other = make_project("Harmlessness", annotators=team)
    label_next(other, team[0])
    ComparisonItem.objects.filter(project=other).update(label_count=5)

    assert check_integrity("--project", "Helpfulness")[0] == 0
    status, output = check_integrity("--project", "Harmlessness")
    assert status == 1 and "in project 'Harmlessness'" in output and "3 comparison items whose" in output

    assert check_integrity("--project", "Harmlessness", "--repair")[0] == 0
    assert integrity_check().clean
    with pytest.raises(CommandError, match="No project named 'Nope'"):
        call_command("check_integrity", "--project", "Nope")


def test_many_drifted_rows_are_listed_by_a_few_examples(make_project, team):
    project = make_project(annotators=team, prompts=8)
    ComparisonItem.objects.filter(project=project).update(label_count=1)

    status, output = check_integrity()

    assert status == 1
    assert "8 comparison items whose" in output and "... and 3 more" in output


def test_check_and_repair_take_a_fixed_number_of_queries(make_project, team):
    def queries(prompts):
        ComparisonItem.objects.all().delete()
        project = make_project(f"P{prompts}", annotators=team, prompts=prompts, labels_per_item=2)
        for _ in range(prompts):
            label_next(project, team[0])
        Label.objects.filter(annotator=team[0]).delete()  # every item miscounted, every assignment drifted
        with CaptureQueriesContext(connection) as check:
            integrity_check()
        with CaptureQueriesContext(connection) as repair:
            integrity_repair()
        assert integrity_check().clean
        return len(check), len(repair)

    assert queries(2) == queries(12)
