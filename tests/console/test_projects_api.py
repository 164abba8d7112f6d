"""Projects console API: create and configure projects, pause/resume/archive, the guidelines preview."""
import uuid

import pytest

from annotation.models import Assignment, Label, Project

pytestmark = pytest.mark.django_db


@pytest.fixture
def outsider(make_user, make_project):
    """An annotator of another project only."""
    user = make_user("outsider")
    make_project("Elsewhere", annotators=[user], prompts=1)
    return user


@pytest.fixture
def reviewer(make_user, project):
    user = make_user("rev")
    project.reviewers.add(user)
    return user


def lease(client, project, exclude=()):
    response = client.post(f"/api/projects/{project.id}/next-item/", {"exclude": list(exclude)}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, assignment_id, **extra):
    return client.post(
        f"/api/assignments/{assignment_id}/submit/", {"choice": "A", "client_id": str(uuid.uuid4()), **extra}, format="json"
    )


def patch(client, project, body):
    return client.patch(f"/api/projects/{project.id}/", body, format="json")


# ---------------------------------------------------------------- create and change


def test_an_admin_creates_a_project_with_every_setting(api_client_for, admin_user, annotator, make_user):
    make_user("rev")
    body = {
        "name": "Tone", "label_format": "ranking", "rationale_mode": "required", "labels_per_item": 3,
        "selection_order": "random", "gold_rate": 0.1, "guidelines": "Be *kind*.",
        "criteria": [{"key": "tone", "label": "Tone", "scale": 7, "required": True}, {"key": "brevity"}],
        "annotators": ["ann"], "reviewers": ["rev"],
    }
    response = api_client_for(admin_user).post("/api/projects/", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert {key: data[key] for key in ("label_format", "rationale_mode", "labels_per_item", "selection_order", "gold_rate", "status")} == {
        "label_format": "ranking", "rationale_mode": "required", "labels_per_item": 3, "selection_order": "random",
        "gold_rate": 0.1, "status": "active",
    }
    assert data["criteria"] == [
        {"key": "tone", "label": "Tone", "scale": 7, "required": True},
        {"key": "brevity", "label": "Brevity", "scale": 5, "required": False},
    ]
    assert (data["annotators"], data["reviewers"]) == (["ann"], ["rev"])
    assert data["guidelines_html"] == "<p>Be <em>kind</em>.</p>"
    project = Project.objects.get(id=data["id"])
    assert list(project.reviewers.values_list("username", flat=True)) == ["rev"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"gold_rate": 1.5}, "gold_rate", "gold_rate: Ensure this value is less than or equal to 1."),
        ({"gold_rate": -0.1}, "gold_rate", "gold_rate: Ensure this value is greater than or equal to 0."),
        ({"gold_rate": "lots"}, "gold_rate", "gold_rate: A valid number is required."),
        ({"uncertainty_random_share": "nan"}, "uncertainty_random_share", "uncertainty_random_share: A valid number is required."),
        ({"uncertainty_random_share": 1.5}, "uncertainty_random_share", None),
        ({"reveal_model_verdict": "perhaps"}, "reveal_model_verdict", None),
        ({"labels_per_item": 0}, "labels_per_item", "labels_per_item: Ensure this value is greater than or equal to 1."),
        ({"status": "deleted"}, "status", 'status: "deleted" is not a valid choice.'),
        ({"selection_order": "vibes"}, "selection_order", None),
        ({"reviewers": ["ghost"]}, "reviewers", "No such user: ghost."),
        ({"annotators": ["ghost"]}, "annotators", "No such user: ghost."),
        ({"criteria": [{"key": "not a key"}]}, "criteria[0]", "criteria[0].key must be a short identifier such as 'helpfulness'."),
        ({"criteria": [{"key": "tone", "scale": 6}]}, "criteria[0]", "criteria[0].scale must be 5 or 7."),
        ({"criteria": [{"key": "tone"}, {"key": "tone"}]}, "criteria[1]", "criteria[1].key 'tone' appears twice."),
        ({"criteria": [{"key": "tone", "label": "a\x00b"}]}, "criteria", None),
        ({"criteria": ["tone"]}, "criteria", None),
        ({"name": "x" * 201}, "name", "name: Ensure this field has no more than 200 characters."),
        ({"name": "a\x00b"}, "name", "name: Null characters are not allowed."),
        ({"guidelines": "g" * 100_001}, "guidelines", None),
    ],
)
def test_bad_settings_are_a_400_naming_the_field(api_client_for, admin_user, body, field, message):
    response = api_client_for(admin_user).post("/api/projects/", {"name": "Tone", **body}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    if message:
        assert response.json()["detail"] == message
    assert not Project.objects.filter(name="Tone").exists()


def test_the_same_rules_hold_on_patch(api_client_for, admin_user, project):
    admin = api_client_for(admin_user)
    bad = patch(admin, project, {"gold_rate": 2, "reviewers": ["ghost"]})
    assert bad.status_code == 400 and "gold_rate" in bad.json()["fields"]
    unknown = patch(admin, project, {"reviewers": ["ghost"]})
    assert unknown.status_code == 400 and unknown.json()["fields"] == {"reviewers": ["unknown: ghost"]}

    changed = patch(admin, project, {"gold_rate": 0.25, "reviewers": ["boss"], "guidelines": "New"})
    assert changed.status_code == 200, changed.content
    project.refresh_from_db()
    assert (project.gold_rate, project.guidelines) == (0.25, "New")
    assert list(project.reviewers.values_list("username", flat=True)) == ["boss"]
    # Fields left out stay as they were.
    assert changed.json()["annotators"] == ["ann"]


def test_label_format_is_locked_once_items_exist_with_a_message_naming_the_field(api_client_for, admin_user, project):
    response = patch(api_client_for(admin_user), project, {"label_format": "ranking"})

    assert response.status_code == 409
    assert response.json()["detail"] == "The label format cannot change once items are imported."
    assert "label_format" in response.json()["fields"]
    # Sending the format it already has (as the settings form does) is no change.
    assert patch(api_client_for(admin_user), project, {"label_format": "pairwise", "name": "Renamed"}).status_code == 200


def test_label_format_can_change_while_the_project_is_empty(api_client_for, admin_user):
    admin = api_client_for(admin_user)
    created = admin.post("/api/projects/", {"name": "Empty"}, format="json").json()
    response = admin.patch(f"/api/projects/{created['id']}/", {"label_format": "ranking"}, format="json")
    assert response.status_code == 200 and response.json()["label_format"] == "ranking"


def test_annotators_do_not_see_who_else_works_on_a_project(api_client_for, annotator, admin_user, project):
    theirs = api_client_for(annotator).get(f"/api/projects/{project.id}/").json()
    assert "annotators" not in theirs and "reviewers" not in theirs
    assert theirs["status"] == "active"
    assert api_client_for(admin_user).get(f"/api/projects/{project.id}/").json()["annotators"] == ["ann"]


def test_the_project_list_for_admins_costs_the_same_for_many_projects(
    api_client_for, admin_user, make_project, make_user, django_assert_num_queries
):
    client = api_client_for(admin_user)
    make_project("One", annotators=[make_user("a1")], prompts=1)
    # projects, annotators, reviewers (the session's user is forced, no query)
    with django_assert_num_queries(3):
        assert len(client.get("/api/projects/").json()) == 1
    for index in range(4):
        make_project(f"More {index}", annotators=[make_user(f"m{index}")], prompts=1)
    with django_assert_num_queries(3):
        assert len(client.get("/api/projects/").json()) == 5


# ---------------------------------------------------------------- pause, resume, archive


def test_a_paused_project_leases_nothing_and_says_so(api_client_for, admin_user, annotator, project):
    client = api_client_for(annotator)
    held = lease(client, project)["assignment"]
    assert patch(api_client_for(admin_user), project, {"status": "paused"}).status_code == 200

    answer = lease(client, project)
    assert answer["assignment"] is None and answer["paused"] is True
    assert answer["progress"]["remaining"] == 3
    # The item already on screen can still be labelled; the following one is not leased.
    submitted = submit(client, held["id"], next={"exclude": []})
    assert submitted.status_code == 201, submitted.content
    assert submitted.json()["next"]["assignment"] is None and submitted.json()["next"]["paused"] is True
    assert Assignment.objects.filter(annotator=annotator).count() == 1
    # Paused projects stay on the annotator's list.
    assert [p["status"] for p in client.get("/api/projects/").json()] == ["paused"]

    assert patch(api_client_for(admin_user), project, {"status": "active"}).status_code == 200
    resumed = lease(client, project)
    assert resumed["assignment"] is not None and resumed["paused"] is False


def test_skip_with_next_leases_nothing_in_a_paused_project(api_client_for, admin_user, annotator, project):
    client = api_client_for(annotator)
    held = lease(client, project)["assignment"]
    patch(api_client_for(admin_user), project, {"status": "paused"})

    skipped = client.post(f"/api/assignments/{held['id']}/skip/", {"next": {"exclude": []}}, format="json")

    assert skipped.status_code == 200, skipped.content
    assert skipped.json()["next"] == {"assignment": None, "progress": skipped.json()["progress"], "paused": True}


def test_an_archived_project_is_hidden_from_annotators_and_read_only(api_client_for, admin_user, annotator, project):
    admin, client = api_client_for(admin_user), api_client_for(annotator)
    held = lease(client, project)["assignment"]
    assert patch(admin, project, {"status": "archived"}).status_code == 200

    assert client.get("/api/projects/").json() == []
    assert client.post(f"/api/projects/{project.id}/next-item/", {}, format="json").status_code == 404
    # A lease held when it was archived can still be submitted (the label is not lost), but brings no next.
    submitted = submit(client, held["id"], next={"exclude": []})
    assert submitted.status_code == 201 and "next" not in submitted.json()
    assert Label.objects.filter(item__project=project).count() == 1

    for body in ({"guidelines": "x"}, {"annotators": []}, {"reviewers": ["boss"]}, {"status": "active", "name": "New"}):
        refused = patch(admin, project, body)
        assert refused.status_code == 409, body
        assert refused.json()["detail"] == "This project is archived and read-only: unarchive it before changing its settings."
        assert set(refused.json()["fields"]) == set(body) - {"status"}
    project.refresh_from_db()
    assert (project.guidelines, project.status, project.name) == ("Be **careful**.", "archived", "Helpfulness")
    # Admins still read it, and the next-item answer says it leases nothing.
    assert admin.get(f"/api/projects/{project.id}/").json()["status"] == "archived"
    answer = lease(admin, project)
    assert (answer["assignment"], answer["paused"]) == (None, True)

    assert patch(admin, project, {"status": "active"}).status_code == 200
    assert lease(client, project)["assignment"] is not None


# ---------------------------------------------------------------- access


def test_project_writes_check_access(api_client, api_client_for, annotator, outsider, reviewer, admin_user, project):
    other = Project.objects.get(name="Elsewhere")
    assert api_client.patch(f"/api/projects/{project.id}/", {"status": "paused"}, format="json").status_code == 401
    assert patch(api_client_for(outsider), project, {"status": "paused"}).status_code == 404
    assert patch(api_client_for(annotator), project, {"status": "paused"}).status_code == 403
    assert patch(api_client_for(reviewer), project, {"status": "paused"}).status_code == 404
    assert api_client_for(annotator).post("/api/projects/", {"name": "Mine"}, format="json").status_code == 403
    assert api_client_for(reviewer).post("/api/projects/", {"name": "Mine"}, format="json").status_code == 403
    project.refresh_from_db()
    assert project.status == "active"
    # An annotator of this project cannot reach the other project by its id.
    assert patch(api_client_for(annotator), other, {"status": "paused"}).status_code == 404
    assert patch(api_client_for(admin_user), project, {"status": "paused"}).status_code == 200


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


# ---------------------------------------------------------------- guidelines preview


def test_the_guidelines_preview_renders_sanitised_markdown_for_admins(api_client, api_client_for, annotator, reviewer, admin_user):
    url = "/api/projects/guidelines-preview/"
    text = "# Rules\n\nPrefer **correct** answers.<script>alert(1)</script> [x](javascript:alert(1))"

    response = api_client_for(admin_user).post(url, {"guidelines": text}, format="json")

    assert response.status_code == 200, response.content
    html = response.json()["html"]
    assert "<strong>correct</strong>" in html and "<h1>Rules</h1>" in html
    assert "<script" not in html and "javascript:" not in html
    assert api_client.post(url, {"guidelines": text}, format="json").status_code == 401
    assert api_client_for(annotator).post(url, {"guidelines": text}, format="json").status_code == 403
    assert api_client_for(reviewer).post(url, {"guidelines": text}, format="json").status_code == 403


@pytest.mark.parametrize("body", [{}, {"guidelines": "a\x00b"}, {"guidelines": "x" * 100_001}, {"guidelines": ["x"]}, {"guidelines": {"a": 1}}])
def test_bad_preview_input_is_a_400_naming_the_field(api_client_for, admin_user, body):
    response = api_client_for(admin_user).post("/api/projects/guidelines-preview/", body, format="json")
    assert response.status_code == 400
    assert "guidelines" in response.json()["fields"]
