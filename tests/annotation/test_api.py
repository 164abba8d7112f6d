"""The annotator API: authentication, scoping, blindness, idempotency, leases."""
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Label
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def claim(client, project):
    response = client.post(f"/api/projects/{project.id}/next-item/")
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, assignment_id, choice="A", **extra):
    body = {"choice": choice, "client_id": str(uuid.uuid4()), "seconds_spent": 2.5, **extra}
    return client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")


def test_anonymous_requests_are_refused(project):
    client = APIClient()
    assert client.post(f"/api/projects/{project.id}/next-item/").status_code == 401
    assert client.get("/api/projects/").json()["code"] == "not_authenticated"


def test_token_auth_works(project, annotator):
    token = APIClient().post("/api/auth/token/", {"username": "ann", "password": PASSWORD}).json()["token"]
    assert Token.objects.get(user=annotator).key == token
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    assert claim(client, project)["assignment"] is not None


def test_annotator_sees_only_their_projects(api_client_for, make_project, annotator, make_user):
    mine = make_project("Mine", annotators=[annotator])
    theirs = make_project("Theirs", annotators=[make_user("other")])
    client = api_client_for(annotator)

    assert [p["name"] for p in client.get("/api/projects/").json()] == ["Mine"]
    for path in ("next-item/", "labels/"):
        method = client.post if path == "next-item/" else client.get
        response = method(f"/api/projects/{theirs.id}/{path}")
        assert response.status_code == 404, path
        assert response.json()["detail"] == "No such project for this user."
    assert claim(client, mine)["assignment"] is not None


def test_annotator_cannot_read_or_use_another_annotators_work(api_client_for, make_project, annotator, make_user):
    colleague = make_user("colleague")
    project = make_project(annotators=[annotator, colleague], labels_per_item=2)
    mine, theirs = api_client_for(annotator), api_client_for(colleague)

    their_assignment = claim(theirs, project)["assignment"]["id"]
    assert submit(theirs, their_assignment).status_code == 201
    my_assignment = claim(mine, project)["assignment"]["id"]
    assert submit(mine, my_assignment).status_code == 201

    labels = mine.get(f"/api/projects/{project.id}/labels/").json()
    assert [label["annotator"] for label in labels["results"]] == ["ann"]
    assert labels["next"] is None
    # Another annotator's assignment is invisible, whatever its state.
    other_open = claim(theirs, project)["assignment"]["id"]
    for action in ("submit/", "skip/", "heartbeat/"):
        response = mine.post(f"/api/assignments/{other_open}/{action}", {"choice": "A", "client_id": str(uuid.uuid4())}, format="json")
        assert response.status_code == 404, action


def test_admin_endpoints_refuse_annotators(api_client_for, project, annotator, admin_user):
    for path in ("scores/", "model-versions/", "training-runs/", "annotator-quality/"):
        assert api_client_for(annotator).get(f"/api/projects/{project.id}/{path}").status_code == 403
        assert api_client_for(admin_user).get(f"/api/projects/{project.id}/{path}").status_code == 200
    labels = api_client_for(admin_user).get(f"/api/projects/{project.id}/labels/")
    assert labels.status_code == 200
    assert labels.json() == {"next": None, "previous": None, "results": []}


def test_next_item_is_blind_and_randomised_per_assignment(api_client_for, make_project, make_user):
    users = [make_user(f"a{index}") for index in range(12)]
    project = make_project(annotators=users, prompts=1, labels_per_item=12)
    orders = set()
    for user in users:
        body = claim(api_client_for(user), project)
        payload = body["assignment"]
        assert "model-good" not in str(payload) and "model-bad" not in str(payload)
        assert set(payload["responses"][0]) == {"position", "text", "html"}
        orders.add(tuple(r["text"] for r in payload["responses"]))
    # 12 fair coin flips all landing the same way has probability 2 / 4096.
    assert len(orders) == 2


def test_submit_maps_the_chosen_side_back_to_the_response_shown_there(api_client_for, project, annotator):
    client = api_client_for(annotator)
    payload = claim(client, project)["assignment"]
    response = submit(client, payload["id"], choice="B", strength=3, rationale="clearer")
    assert response.status_code == 201

    label = Label.objects.get()
    assignment = Assignment.objects.get(id=payload["id"])
    right_response_id = assignment.display_order[1]
    assert label.ranking == [[right_response_id], [assignment.display_order[0]]]
    assert (label.strength, label.rationale, label.seconds_spent, label.is_tie) == (3, "clearer", 2.5, False)
    assert assignment.status == "submitted"


def test_tie_and_bad_input(api_client_for, project, annotator):
    client = api_client_for(annotator)
    assignment_id = claim(client, project)["assignment"]["id"]
    bad = submit(client, assignment_id, choice="tie", strength=2)
    assert bad.status_code == 400 and bad.json()["detail"] == "A tie has no strength."
    bad = submit(client, assignment_id, choice="C")
    assert bad.status_code == 400 and "choice" in bad.json()["fields"]
    assert submit(client, assignment_id, choice="tie").status_code == 201
    assert Label.objects.get().is_tie is True


def test_submit_is_idempotent_on_client_id(api_client_for, project, annotator):
    client = api_client_for(annotator)
    assignment_id = claim(client, project)["assignment"]["id"]
    body = {"choice": "A", "client_id": str(uuid.uuid4())}
    first = client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")
    retry = client.post(f"/api/assignments/{assignment_id}/submit/", body, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["label"]["id"] == retry.json()["label"]["id"]
    assert Label.objects.count() == 1


def test_queue_runs_dry_and_nobody_gets_an_item_twice(api_client_for, project, annotator):
    client = api_client_for(annotator)
    seen = []
    while (payload := claim(client, project)["assignment"]) is not None:
        seen.append(payload["item_id"])
        assert submit(client, payload["id"]).status_code == 201
    assert sorted(seen) == sorted(set(seen)) and len(seen) == 3
    assert claim(client, project)["progress"] == {"done_today": 3, "done_total": 3, "remaining": 0}


def test_overlap_is_respected_and_skip_returns_item_to_pool(api_client_for, make_project, make_user):
    first, second = make_user("first"), make_user("second")
    project = make_project(annotators=[first, second], prompts=1, labels_per_item=1)
    a, b = api_client_for(first), api_client_for(second)

    held = claim(a, project)["assignment"]
    assert claim(b, project)["assignment"] is None  # the only item is leased to `first`

    assert a.post(f"/api/assignments/{held['id']}/skip/", {"reason": "unclear prompt"}, format="json").status_code == 200
    assert Assignment.objects.get(id=held["id"]).skip_reason == "unclear prompt"
    assert claim(b, project)["assignment"]["item_id"] == held["item_id"]
    assert claim(a, project)["assignment"] is None  # a skipped item is not shown again to the skipper


def test_expired_lease_frees_the_item_and_late_submit_is_refused(api_client_for, make_project, make_user):
    first, second = make_user("first"), make_user("second")
    project = make_project(annotators=[first, second], prompts=1)
    a, b = api_client_for(first), api_client_for(second)
    held = claim(a, project)["assignment"]
    Assignment.objects.filter(id=held["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    taken = claim(b, project)["assignment"]
    assert taken["item_id"] == held["item_id"]
    late = submit(a, held["id"])
    assert late.status_code == 409
    assert "expired" in late.json()["detail"]
    assert submit(b, taken["id"]).status_code == 201


def test_heartbeat_extends_the_lease(api_client_for, project, annotator):
    client = api_client_for(annotator)
    held = claim(client, project)["assignment"]
    Assignment.objects.filter(id=held["id"]).update(expires_at=timezone.now() + timedelta(seconds=5))
    renewed = client.post(f"/api/assignments/{held['id']}/heartbeat/").json()
    assert Assignment.objects.get(id=held["id"]).expires_at > timezone.now() + timedelta(seconds=60)
    assert renewed["id"] == held["id"]


def test_openapi_schema_lists_the_annotation_and_training_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/api/projects/{project_id}/next-item/",
        "/api/assignments/{assignment_id}/submit/",
        "/api/assignments/{assignment_id}/skip/",
        "/api/projects/{project_id}/imports/",
        "/api/projects/{project_id}/scores/",
        "/api/projects/{project_id}/training-runs/",
    ):
        assert path in schema["paths"], path


def test_admins_create_and_configure_projects(api_client_for, admin_user, annotator, make_user):
    admin = api_client_for(admin_user)
    body = {
        "name": "Coding help", "guidelines": "Prefer **working** code.", "labels_per_item": 3,
        "label_format": "ranking", "criteria": [{"key": "correctness", "scale": 7, "required": True}],
        "rationale_mode": "required", "annotators": ["ann"],
    }
    assert api_client_for(annotator).post("/api/projects/", body, format="json").status_code == 403
    created = admin.post("/api/projects/", body, format="json")
    assert created.status_code == 201, created.content
    project = created.json()
    assert (project["label_format"], project["criteria"][0]["label"]) == ("ranking", "Correctness")
    assert admin.post("/api/projects/", body, format="json").status_code == 409  # the name is taken

    # The annotator now sees it; a bad username changes nothing.
    assert [p["name"] for p in api_client_for(annotator).get("/api/projects/").json()] == ["Coding help"]
    bad = admin.patch(f"/api/projects/{project['id']}/", {"annotators": ["ann", "ghost"]}, format="json")
    assert bad.status_code == 400 and bad.json()["detail"] == "No such user: ghost."

    make_user("newcomer")
    changed = admin.patch(
        f"/api/projects/{project['id']}/", {"annotators": ["newcomer"], "labels_per_item": 1}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["labels_per_item"] == 1
    assert api_client_for(annotator).get(f"/api/projects/{project['id']}/").status_code == 404


def test_label_format_is_fixed_once_items_exist(api_client_for, admin_user, project):
    response = api_client_for(admin_user).patch(f"/api/projects/{project.id}/", {"label_format": "ranking"}, format="json")
    assert response.status_code == 409 and "cannot change" in response.json()["detail"]


def test_skip_answers_with_progress(api_client_for, project, annotator):
    client = api_client_for(annotator)
    held = claim(client, project)["assignment"]
    body = client.post(f"/api/assignments/{held['id']}/skip/", {"reason": "broken"}, format="json").json()
    assert body["progress"] == {"done_today": 0, "done_total": 0, "remaining": 2}


def test_selection_order_is_a_project_setting(api_client_for, admin_user, make_project, annotator, monkeypatch):
    from annotation import assignment
    from annotation.assignment import register_ordering

    monkeypatch.setattr(assignment, "ORDERINGS", dict(assignment.ORDERINGS))  # keep the registry clean
    monkeypatch.setattr("annotation.services.ORDERINGS", assignment.ORDERINGS)

    project = make_project(annotators=[annotator], prompts=5)
    admin = api_client_for(admin_user)
    assert admin.patch(f"/api/projects/{project.id}/", {"selection_order": "vibes"}, format="json").status_code == 400

    register_ordering("newest_first", lambda items: items.order_by("-id"))
    assert admin.patch(f"/api/projects/{project.id}/", {"selection_order": "newest_first"}, format="json").status_code == 200
    first = claim(api_client_for(annotator), project)["assignment"]
    assert first["item_id"] == project.items.order_by("-id").first().id
