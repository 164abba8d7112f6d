"""Who may call what: every API endpoint and page, for each role, in one table.

Roles, relative to the project "Ours" whose objects every request names:

- ``anonymous``: not signed in;
- ``outsider``: annotator of another project ("Theirs") only;
- ``annotator``: annotator of Ours;
- ``reviewer``: reviewer of Ours (annotates nothing);
- ``other_reviewer``: reviewer of Theirs only;
- ``admin``: in the group "Admins" (``annotation.roles``).

Each row lists the status codes in that order. Project-scoped objects (projects, labels,
leases, model versions) of a project one cannot see answer 404, like missing ids, so ids
cannot be probed; 403 is for members who may see the project but not do this (annotators on
admin endpoints) and for non-admins on the people endpoints, which are not project-scoped.
docs/security.md ("Admin console: roles") gives the reasons.
"""
import uuid
from dataclasses import dataclass

import pytest
from django.test import Client
from rest_framework.test import APIClient

from training import services as training_services

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "annotator", "reviewer", "other_reviewer", "admin")


@dataclass
class World:
    users: dict
    project: object
    other: object
    label_id: int
    lease_id: int
    version_id: int


@pytest.fixture
def world(make_user, make_project, api_client_for, sent_tasks) -> World:
    users = {
        "annotator": make_user("annie"),
        "reviewer": make_user("rev"),
        "outsider": make_user("outsider"),
        "other_reviewer": make_user("other-rev"),
        "admin": make_user("root", admin=True),
    }
    project = make_project("Ours", annotators=[users["annotator"]], prompts=3)
    project.reviewers.add(users["reviewer"])
    other = make_project("Theirs", annotators=[users["outsider"]], prompts=1)
    other.reviewers.add(users["other_reviewer"])

    annotator = api_client_for(users["annotator"])
    first = annotator.post(f"/api/projects/{project.id}/next-item/").json()["assignment"]["id"]
    label = annotator.post(
        f"/api/assignments/{first}/submit/", {"choice": "A", "client_id": str(uuid.uuid4())}, format="json"
    ).json()["label"]["id"]
    lease = annotator.post(f"/api/projects/{project.id}/next-item/").json()["assignment"]["id"]

    run, _ = training_services.training_run_request(project=project, trigger="manual")
    training_services.training_run_start(run_id=run.id)
    version = training_services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path=f"project-{project.id}/v1", metrics={"accuracy": 0.8},
        champion_metrics={}, promote=False, config={}, seed=0, code_version="test",
    )
    return World(users=users, project=project, other=other, label_id=label, lease_id=lease, version_id=version.id)


def submit_body():
    return {"choice": "A", "client_id": str(uuid.uuid4())}


# (name, method, path, body or a function making it, expected statuses in ROLES order)
API = [
    ("projects", "get", "/api/projects/", None, "401 200 200 200 200 200"),
    ("project", "get", "/api/projects/{p}/", None, "401 404 200 200 404 200"),
    ("project-patch", "patch", "/api/projects/{p}/", {"guidelines": "Changed."}, "401 404 403 404 404 200"),
    ("next-item", "post", "/api/projects/{p}/next-item/", {}, "401 404 200 404 404 200"),
    ("labels", "get", "/api/projects/{p}/labels/", None, "401 404 200 200 404 200"),
    ("annotator-quality", "get", "/api/projects/{p}/annotator-quality/", None, "401 404 403 200 404 200"),
    ("import-history", "get", "/api/projects/{p}/imports/", None, "401 404 403 404 404 200"),
    # No file: an admin gets past the access check to the 400 naming the field.
    ("import", "post-multipart", "/api/projects/{p}/imports/", {}, "401 404 403 404 404 400"),
    ("undo", "post", "/api/labels/{label}/undo/", {}, "401 404 200 404 404 404"),
    ("submit", "post", "/api/assignments/{lease}/submit/", submit_body, "401 404 201 404 404 404"),
    ("skip", "post", "/api/assignments/{lease}/skip/", {}, "401 404 200 404 404 404"),
    ("heartbeat", "post", "/api/assignments/{lease}/heartbeat/", {}, "401 404 200 404 404 404"),
    ("scores", "get", "/api/projects/{p}/scores/", None, "401 404 403 404 404 200"),
    ("model-versions", "get", "/api/projects/{p}/model-versions/", None, "401 404 403 404 404 200"),
    ("training-policy", "get", "/api/projects/{p}/training-policy/", None, "401 404 403 404 404 200"),
    ("training-policy-patch", "patch", "/api/projects/{p}/training-policy/", {}, "401 404 403 404 404 200"),
    ("promote", "post", "/api/model-versions/{version}/promote/", {}, "401 404 403 404 404 200"),
    ("training-runs", "get", "/api/projects/{p}/training-runs/", None, "401 404 403 404 404 200"),
    ("train-now", "post", "/api/projects/{p}/training-runs/", {}, "401 404 403 404 404 202"),
    ("export-pairs", "get", "/api/projects/{p}/export/pairs/", None, "401 404 403 404 404 200"),
    ("export-labels", "get", "/api/projects/{p}/export/labels/", None, "401 404 403 404 404 200"),
    ("export-scores", "get", "/api/projects/{p}/export/scores/?version=1", None, "401 404 403 404 404 200"),
    ("export-leaderboard", "get", "/api/projects/{p}/export/leaderboard/", None, "401 404 403 404 404 200"),
    # The admin's 404 says the snapshot file is gone (none was written here), not "no such version".
    ("snapshot", "get", "/api/model-versions/{version}/snapshot/", None, "401 404 403 404 404 404"),
    ("leaderboard", "get", "/api/projects/{p}/leaderboard/", None, "401 404 403 404 404 200"),
    ("users", "get", "/api/users/", None, "401 403 403 403 403 200"),
    ("user-create", "post", "/api/users/", {"username": "new-person"}, "401 403 403 403 403 201"),
    ("user", "get", "/api/users/{annotator}/", None, "401 403 403 403 403 200"),
    ("user-patch", "patch", "/api/users/{annotator}/", {"reviewer_of": []}, "401 403 403 403 403 200"),
    ("user-invitation", "post", "/api/users/{annotator}/invitation/", {}, "401 403 403 403 403 201"),
    ("user-password", "post", "/api/users/{annotator}/password/", {}, "401 403 403 403 403 200"),
]


def fill(path: str, world: World) -> str:
    return path.format(
        p=world.project.id, label=world.label_id, lease=world.lease_id, version=world.version_id,
        annotator=world.users["annotator"].id,
    )


def call(client, method: str, path: str, body):
    body = body() if callable(body) else body
    if method == "post-multipart":
        return client.post(path, body, format="multipart")
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, body, format="json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "method", "path", "body", "expected"), API, ids=[row[0] for row in API])
def test_api_access(world, role, name, method, path, body, expected):
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(user=world.users[role])
    response = call(client, method, fill(path, world), body)
    want = int(expected.split()[ROLES.index(role)])
    assert response.status_code == want, (name, role, getattr(response, "content", b"")[:300])
    if want == 404 and role != "admin":
        # Forbidden looks exactly like missing: the same body as for an id nobody has.
        assert response.json()["code"] == "not_found"
    if name == "snapshot" and role == "admin":
        assert "snapshot" in response.json()["detail"]


def test_a_reviewer_reads_every_label_of_their_project_and_annotators_only_their_own(world, api_client_for):
    path = f"/api/projects/{world.project.id}/labels/?include=texts"
    for role in ("reviewer", "admin", "annotator"):
        labels = api_client_for(world.users[role]).get(path).json()["results"]
        assert [label["id"] for label in labels] == [world.label_id], role
        # Annotation stays blind for everyone but admins.
        assert ("model_name" in labels[0]["responses"][0]) is (role == "admin"), role
    outsider_label_view = api_client_for(world.users["outsider"]).get(f"/api/projects/{world.other.id}/labels/").json()
    assert outsider_label_view["results"] == []


def test_ids_of_another_projects_objects_are_404_for_every_member_of_this_one(world, api_client_for):
    other = world.other.id
    for role in ("annotator", "reviewer"):
        client = api_client_for(world.users[role])
        for path in ("", "labels/", "annotator-quality/", "scores/", "model-versions/", "training-policy/", "export/labels/"):
            response = client.get(f"/api/projects/{other}/{path}")
            assert response.status_code == 404, (role, path)
            assert response.json() == client.get(f"/api/projects/987654/{path}").json(), (role, path)


PAGES = [
    ("home", "/", "302 200 200 200 200 200"),
    ("annotate", "/projects/{p}/annotate/", "302 404 200 404 404 200"),
    ("results", "/projects/{p}/results/", "302 404 403 404 404 200"),
    ("people", "/people/", "302 403 403 403 403 200"),
    ("person", "/people/{annotator}/", "302 403 403 403 403 200"),
    ("account-password", "/account/password/", "302 200 200 200 200 200"),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("name", "path", "expected"), PAGES, ids=[row[0] for row in PAGES])
def test_page_access(world, role, name, path, expected):
    browser = Client()
    if role != "anonymous":
        browser.force_login(world.users[role])
    response = browser.get(fill(path, world))
    want = int(expected.split()[ROLES.index(role)])
    assert response.status_code == want, (name, role)
    if want == 302:
        assert response.url.startswith("/accounts/login/")
