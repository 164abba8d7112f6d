"""The Django admin lists every model, keeps labels and leases read-only, deletes labels and edits
projects only through the annotation services."""
import json
import uuid

import pytest

from annotation.assignment import assignment_claim_next
from annotation.models import Assignment, ComparisonItem, Label, Project, Prompt, Response
from annotation.services import label_submit, project_import_jsonl
from tests.conftest import prompt_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client, django_user_model):
    # tests/conftest.py's `admin_user` is a project admin (staff), not a Django superuser.
    superuser = django_user_model.objects.create_superuser("root", "root@example.org", "x" * 12)
    client.force_login(superuser)
    return client


def label_next(project, annotator) -> Label:
    assignment = assignment_claim_next(project=project, annotator=annotator)
    label, _ = label_submit(assignment_id=assignment.id, annotator=annotator, choice="A", client_id=uuid.uuid4())
    return label


def project_form(project: Project, **changes) -> dict:
    """What the admin's project page posts back when saved unchanged, with ``changes``."""
    form = {
        "name": project.name,
        "guidelines": project.guidelines,
        "labels_per_item": project.labels_per_item,
        "label_format": project.label_format,
        "criteria": json.dumps(project.criteria),
        "rationale_mode": project.rationale_mode,
        "selection_order": project.selection_order,
        "annotators": [user.id for user in project.annotators.all()],
        "_save": "Save",
    }
    return {**form, **changes}


@pytest.mark.parametrize(
    "path",
    ["project", "prompt", "response", "comparisonitem", "assignment", "label"],
)
def test_admin_changelists_render(superuser_client, project, path):
    assert superuser_client.get(f"/admin/annotation/{path}/").status_code == 200


@pytest.mark.parametrize("path", ["trainingrun", "modelversion", "responsescore", "trainingpolicy"])
def test_training_admin_changelists_render(superuser_client, path):
    assert superuser_client.get(f"/admin/training/{path}/").status_code == 200


def test_labels_cannot_be_added_in_the_admin(superuser_client):
    assert superuser_client.get("/admin/annotation/label/add/").status_code == 403


# Deleting labels


def test_deleting_a_label_in_the_admin_hands_the_item_to_someone_else(superuser_client, make_project, make_user):
    first, second = make_user("first"), make_user("second")
    project = make_project(annotators=[first, second], prompts=1)  # one item, one label wanted
    label = label_next(project, first)
    item = ComparisonItem.objects.get()
    assert item.label_count == 1
    assert assignment_claim_next(project=project, annotator=second) is None  # the item is done

    confirm = superuser_client.get(f"/admin/annotation/label/{label.id}/delete/")
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content
    response = superuser_client.post(f"/admin/annotation/label/{label.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Label.objects.exists()
    item.refresh_from_db()
    assert item.label_count == 0
    assert Assignment.objects.get(annotator=first).status == Assignment.Status.SKIPPED
    again = assignment_claim_next(project=project, annotator=second)
    assert again is not None and again.item_id == item.id
    # The annotator whose label was removed is not dealt the same item again.
    assert assignment_claim_next(project=project, annotator=first) is None


def test_bulk_deleting_labels_in_the_admin_keeps_every_count_right(superuser_client, make_project, make_user):
    annotators = [make_user(f"annotator{index}") for index in range(3)]
    project = make_project(annotators=annotators, prompts=2, labels_per_item=2)
    kept = label_next(project, annotators[0])
    doomed = [label_next(project, user) for user in (annotators[0], annotators[1], annotators[1])]
    assert sorted(ComparisonItem.objects.values_list("label_count", flat=True)) == [2, 2]
    selected = {"action": "delete_selected", "_selected_action": [label.id for label in doomed]}

    confirm = superuser_client.post("/admin/annotation/label/", selected)
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content
    response = superuser_client.post("/admin/annotation/label/", {**selected, "post": "yes"})

    assert response.status_code == 302
    assert list(Label.objects.values_list("id", flat=True)) == [kept.id]
    counts = dict(ComparisonItem.objects.values_list("id", "label_count"))
    assert counts == {kept.item_id: 1, **{item_id: 0 for item_id in counts if item_id != kept.item_id}}
    # Each item has room again, and a third annotator is dealt both.
    dealt = {label_next(project, annotators[2]).item_id, label_next(project, annotators[2]).item_id}
    assert dealt == set(counts)


def test_items_prompts_responses_and_assignments_cannot_be_deleted_one_by_one(superuser_client, project, annotator):
    assignment = assignment_claim_next(project=project, annotator=annotator)
    for path, row in (
        ("comparisonitem", ComparisonItem.objects.first()),
        ("prompt", Prompt.objects.first()),
        ("response", Response.objects.first()),
        ("assignment", assignment),
    ):
        assert superuser_client.get(f"/admin/annotation/{path}/{row.id}/delete/").status_code == 403, path
        assert superuser_client.post(f"/admin/annotation/{path}/{row.id}/delete/", {"post": "yes"}).status_code == 403
        assert b"delete_selected" not in superuser_client.get(f"/admin/annotation/{path}/").content, path
    assert Assignment.objects.filter(id=assignment.id).exists()


def test_a_project_can_still_be_deleted_whole(superuser_client, project, annotator):
    label_next(project, annotator)
    confirm = superuser_client.get(f"/admin/annotation/project/{project.id}/delete/")
    assert b"Are you sure" in confirm.content

    response = superuser_client.post(f"/admin/annotation/project/{project.id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Project.objects.exists()
    assert not ComparisonItem.objects.exists() and not Label.objects.exists() and not Assignment.objects.exists()


# Projects through project_create / project_update


def test_changing_the_label_format_after_import_shows_the_services_sentence(superuser_client, project):
    response = superuser_client.post(
        f"/admin/annotation/project/{project.id}/change/", project_form(project, label_format="ranking")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "label_format": ["The label format cannot change once items are imported."]
    }
    project.refresh_from_db()
    assert project.label_format == Project.LabelFormat.PAIRWISE


def test_a_duplicate_name_shows_the_services_sentence_on_add_and_change(superuser_client, make_project, project):
    other = make_project("Harmlessness")

    added = superuser_client.post("/admin/annotation/project/add/", project_form(project, annotators=[]))
    changed = superuser_client.post(
        f"/admin/annotation/project/{other.id}/change/", project_form(other, name=project.name)
    )

    sentence = ["A project named 'Helpfulness' already exists."]
    assert added.status_code == 200 and added.context["adminform"].form.errors == {"name": sentence}
    assert changed.status_code == 200 and changed.context["adminform"].form.errors == {"name": sentence}
    assert sorted(Project.objects.values_list("name", flat=True)) == ["Harmlessness", "Helpfulness"]


def test_settings_the_services_refuse_show_as_form_errors(superuser_client, project):
    bad_criteria = json.dumps([{"key": "helpfulness", "scale": 10}])

    zero = superuser_client.post(
        f"/admin/annotation/project/{project.id}/change/", project_form(project, labels_per_item=0)
    )
    criteria = superuser_client.post(
        f"/admin/annotation/project/{project.id}/change/", project_form(project, criteria=bad_criteria)
    )

    assert zero.context["adminform"].form.errors == {"labels_per_item": ["labels_per_item must be between 1 and 50."]}
    assert criteria.context["adminform"].form.errors == {"criteria": ["criteria[0].scale must be 5 or 7."]}
    project.refresh_from_db()
    assert (project.labels_per_item, project.criteria) == (1, [])


def test_projects_are_created_and_edited_in_the_admin(superuser_client, make_user, annotator):
    colleague = make_user("colleague")
    form = {
        "name": "Tone",
        "guidelines": "",
        "labels_per_item": 2,
        "label_format": "ranking",
        "criteria": json.dumps([{"key": "clarity"}]),
        "rationale_mode": "required",
        "selection_order": "random",
        "annotators": [annotator.id],
        "_save": "Save",
    }
    assert superuser_client.post("/admin/annotation/project/add/", form).status_code == 302
    project = Project.objects.get(name="Tone")
    # project_create normalised the criteria.
    assert project.criteria == [{"key": "clarity", "label": "Clarity", "scale": 5, "required": False}]
    assert list(project.annotators.all()) == [annotator]
    project_import_jsonl(project=project, lines=[prompt_record("t-1", "Q?", "good", "bad")])

    page = superuser_client.get(f"/admin/annotation/project/{project.id}/change/")
    assert b'class="selectfilter" data-field-name="annotators"' in page.content  # filter_horizontal
    response = superuser_client.post(
        f"/admin/annotation/project/{project.id}/change/",
        project_form(project, annotators=[annotator.id, colleague.id], guidelines="Be kind."),
    )

    assert response.status_code == 302
    project.refresh_from_db()
    assert project.guidelines == "Be kind."
    assert set(project.annotators.all()) == {annotator, colleague}
