"""Hostile or broken requests get a 4xx in the API's error shape, and nothing changes.

Deeply nested JSON bodies, unexpected exceptions in API views, probing model-version ids.
"""
import logging

import pytest
from django.test import RequestFactory
from rest_framework.test import APIClient

from annotation.models import Assignment, Label
from config.api_errors import server_error
from config.parsers import MAX_JSON_DEPTH, json_depth_exceeds
from tests.conftest import PASSWORD
from training import services
from training.models import ModelVersion, TrainingPolicy

pytestmark = pytest.mark.django_db

DEEP = 5000


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_raw(client, method: str, url: str, body: str):
    return getattr(client, method)(url, data=body.encode(), content_type="application/json")


def assert_parse_error(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "fields"}
    assert (body["code"], body["fields"]) == ("parse_error", {})
    assert "nested" in body["detail"]


def test_depth_scan_ignores_brackets_inside_strings():
    assert not json_depth_exceeds('{"a": "' + "[" * 1000 + '"}')
    assert not json_depth_exceeds(nested(MAX_JSON_DEPTH))
    assert json_depth_exceeds(nested(MAX_JSON_DEPTH + 1))
    assert not json_depth_exceeds('{"a": "\\"[[[[", "b": [[1]]}', limit=3)
    assert json_depth_exceeds('{"a": {"b": [1]}}', limit=2)


@pytest.mark.parametrize("authenticated", [False, True], ids=["anonymous", "signed-in"])
def test_deeply_nested_token_request_is_a_400(annotator, authenticated, settings):
    settings.DEBUG = True  # development mode: no debug page for anyone either
    client = APIClient()
    if authenticated:
        client.force_authenticate(user=annotator)
    body = '{"username":' + nested(DEEP) + ',"password":"x"}'
    assert_parse_error(post_raw(client, "post", "/api/auth/token/", body))
    # Still a working endpoint afterwards.
    ok = client.post("/api/auth/token/", {"username": "ann", "password": PASSWORD}, format="json")
    assert ok.status_code == 200 and ok.json()["token"]


def test_deeply_nested_bodies_are_refused_on_annotator_endpoints(api_client_for, project, annotator):
    client = api_client_for(annotator)
    url = f"/api/projects/{project.id}/next-item/"
    assert_parse_error(post_raw(client, "post", url, '{"exclude":' + nested(DEEP) + "}"))
    assert not Assignment.objects.filter(annotator=annotator).exists()

    claimed = client.post(url, format="json")
    assert claimed.status_code == 200, claimed.content
    assignment_id = claimed.json()["assignment"]["id"]
    body = '{"choice":"A","client_id":"6f1f7f5e-5c1a-4d8e-9a51-6a1b3a2f0c11","ratings":' + nested(10_000) + "}"
    assert_parse_error(post_raw(client, "post", f"/api/assignments/{assignment_id}/submit/", body))
    assert not Label.objects.exists()


def test_deeply_nested_policy_patch_changes_nothing(api_client_for, project, admin_user):
    client = api_client_for(admin_user)
    body = '{"mode":"incremental","excluded_annotator_ids":' + nested(DEEP) + "}"
    assert_parse_error(post_raw(client, "patch", f"/api/projects/{project.id}/training-policy/", body))
    assert not TrainingPolicy.objects.filter(project=project, mode="incremental").exists()


def test_anonymous_nested_body_is_refused_before_or_at_authentication(project):
    response = post_raw(APIClient(), "post", f"/api/projects/{project.id}/next-item/", '{"exclude":' + nested(DEEP) + "}")
    assert response.status_code in (400, 401)
    assert set(response.json()) == {"detail", "code", "fields"}


def test_sane_nesting_still_parses(api_client_for, project, admin_user):
    response = api_client_for(admin_user).patch(
        f"/api/projects/{project.id}/training-policy/", {"mode": "incremental"}, format="json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("debug", [False, True])
def test_unexpected_exception_in_an_api_view_is_a_json_500(api_client_for, project, admin_user, monkeypatch, caplog, settings, debug):
    settings.DEBUG = debug

    def explode(project):
        raise RuntimeError("kaboom")

    monkeypatch.setattr("training.selectors.model_versions_for", explode)
    client = api_client_for(admin_user)
    with caplog.at_level(logging.ERROR, logger="config.api_errors"):
        response = client.get(f"/api/projects/{project.id}/model-versions/")
    assert response.status_code == 500
    body = response.json()
    assert (body["code"], body["fields"]) == ("server_error", {})
    assert body["detail"].startswith("Server error")
    assert "kaboom" not in response.content.decode()
    record = next(r for r in caplog.records if r.name == "config.api_errors")
    assert record.exc_info and record.exc_info[0] is RuntimeError


def test_handler500_answers_json_under_api_only():
    factory = RequestFactory()
    api = server_error(factory.get("/api/projects/"))
    assert api.status_code == 500 and api["Content-Type"] == "application/json"
    page = server_error(factory.get("/projects/"))
    assert page.status_code == 500 and "json" not in page["Content-Type"]


def test_schema_needs_sign_in_unless_public(settings, annotator):
    settings.API_SCHEMA_PUBLIC = False
    assert APIClient().get("/api/schema/").status_code == 401
    client = APIClient()
    client.force_authenticate(user=annotator)
    assert client.get("/api/schema/").status_code == 200
    settings.API_SCHEMA_PUBLIC = True
    assert APIClient().get("/api/schema/").status_code == 200


def _version_of(project) -> ModelVersion:
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path=f"project-{project.id}/v1", metrics={"accuracy": 0.8},
        champion_metrics={}, promote=False, config={}, seed=0, code_version="test",
    )


def test_promote_gives_one_answer_for_missing_and_foreign_versions(api_client_for, make_project, annotator, make_user, sent_tasks):
    theirs = make_project("Theirs", annotators=[make_user("other")])
    foreign = _version_of(theirs)
    missing_id = foreign.id + 1000
    client = api_client_for(annotator)

    answers = [client.post(f"/api/model-versions/{version_id}/promote/") for version_id in (foreign.id, missing_id)]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json() == {"detail": "No such model version.", "code": "not_found", "fields": {}}
    foreign.refresh_from_db()
    assert foreign.status != ModelVersion.Status.CHAMPION


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/password_reset/", "/accounts/password_change/", "/accounts/reset/done/"])
def test_djangos_mail_based_password_pages_are_not_served(client, path):
    """No mail server is configured: an admin's invitation link resets passwords instead (docs/security.md)."""
    assert client.post(path, {"email": "someone@example.org"}).status_code == 404


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=xx"])
def test_a_body_with_more_fields_than_django_allows_is_a_400(make_user, api_client_for, settings, content_type):
    """DATA_UPLOAD_MAX_NUMBER_FIELDS tripped inside DRF's parser used to be a 500 (found by the fuzzer)."""
    admin, someone = make_user("boss-fields", admin=True), make_user("someone")
    fields = [("reviewer_of", str(i)) for i in range(1, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 50)]
    if content_type.startswith("multipart"):
        body = "".join(f'--xx\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields) + "--xx--\r\n"
    else:
        body = "&".join(f"{k}={v}" for k, v in fields)
    response = api_client_for(admin).generic("PATCH", f"/api/users/{someone.id}/", body, content_type=content_type)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request" and "fields" in response.json()["detail"].lower()
    assert not someone.reviewed_projects.exists()


@pytest.mark.parametrize("key", ["abc\x00def", "f" * 41, "x" * 5000], ids=["nul-byte", "one-too-long", "huge"])
def test_a_malformed_api_token_is_a_401(project, key):
    # PostgreSQL refuses a string with a NUL byte outright: asked for such a key, it raised (a 500).
    response = APIClient(HTTP_AUTHORIZATION=f"Token {key}").get("/api/projects/")
    assert response.status_code == 401, response.content
    assert response.json()["detail"] == "Invalid token."
