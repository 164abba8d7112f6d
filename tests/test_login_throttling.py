"""Guessing passwords gets an account locked for a while (django-axes, config.auth), on the
API token endpoint and the login form alike; an admin can unlock it; tokens rotate and revoke."""
import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/auth/token/"
LOGIN_URL = "/accounts/login/"


def token_attempt(password, username="ann"):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password}, format="json")


def form_attempt(client, password, username="ann"):
    return client.post(LOGIN_URL, {"username": username, "password": password})


def test_the_defaults_come_from_the_environment_settings():
    assert settings.AXES_FAILURE_LIMIT == settings.LOGIN_FAILURE_LIMIT == 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() == settings.LOGIN_LOCKOUT_MINUTES * 60 == 15 * 60
    assert settings.AUTHENTICATION_BACKENDS[0] == "config.auth.LoginThrottleBackend"


def test_wrong_passwords_on_the_token_endpoint_lock_the_account(annotator):
    limit = settings.LOGIN_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = token_attempt("wrong")
        assert response.status_code == 400, response.content
    locked = token_attempt("wrong")
    assert locked.status_code == 429, locked.content
    body = locked.json()
    assert body["code"] == "locked_out"
    assert body["fields"] == {}
    assert "locked for 15 minutes" in body["detail"]
    assert body["retry_after_seconds"] == 15 * 60

    # The right password does not help while locked, nor does the login form.
    right = token_attempt(PASSWORD)
    assert right.status_code == 429 and right.json()["code"] == "locked_out"
    assert not Token.objects.filter(user=annotator).exists()
    page = form_attempt(Client(), PASSWORD)
    assert page.status_code == 429
    assert "this account is locked for 15 minutes" in page.content.decode()

    # Another account is untouched.
    assert token_attempt("wrong", username="nobody").status_code == 400


def test_wrong_passwords_on_the_login_form_lock_the_account(annotator, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        response = form_attempt(client, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    locked = form_attempt(client, "wrong")
    assert locked.status_code == 429
    text = locked.content.decode()
    assert "Too many failed sign-ins: this account is locked for 15 minutes." in text
    assert 'name="username"' in text  # still the login page, not a bare error
    assert locked["Retry-After"] == str(15 * 60)

    refused = form_attempt(client, PASSWORD)
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    assert token_attempt(PASSWORD).status_code == 429


def test_an_admin_unlocks_the_account_with_the_management_command(annotator, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        token_attempt("wrong")
    assert token_attempt(PASSWORD).status_code == 429

    call_command("axes_reset_username", "ann")

    response = token_attempt(PASSWORD)
    assert response.status_code == 200, response.content
    assert response.json()["token"] == Token.objects.get(user=annotator).key
    response = form_attempt(Client(), PASSWORD)
    assert response.status_code == 302


def test_signing_in_on_the_form_resets_the_count(annotator, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        assert token_attempt("wrong").status_code == 400
    assert form_attempt(Client(), PASSWORD).status_code == 302
    for _ in range(2):
        assert token_attempt("wrong").status_code == 400
    assert token_attempt(PASSWORD).status_code == 200


def test_superusers_see_and_clear_lockouts_in_django_admin(django_user_model, annotator, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        token_attempt("wrong")
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", password=PASSWORD))
    response = client.get("/admin/axes/accessattempt/")
    assert response.status_code == 200
    assert "ann" in response.content.decode()
    assert token_attempt(PASSWORD).status_code == 429

    attempt = AccessAttempt.objects.get(username="ann")
    response = client.post(f"/admin/axes/accessattempt/{attempt.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert token_attempt(PASSWORD).status_code == 200


def test_the_test_client_login_still_works(annotator):
    # Client.login() calls authenticate() without a request: nothing to throttle.
    assert Client().login(username="ann", password=PASSWORD)
    assert not Client().login(username="ann", password="wrong")


def test_rotating_a_token_replaces_it(annotator):
    old = token_attempt(PASSWORD).json()["token"]
    client = APIClient(HTTP_AUTHORIZATION=f"Token {old}")
    response = client.post("/api/auth/token/rotate/")
    assert response.status_code == 200, response.content
    new = response.json()["token"]
    assert new != old
    assert Token.objects.get(user=annotator).key == new

    assert client.get("/api/projects/").status_code == 401
    assert APIClient(HTTP_AUTHORIZATION=f"Token {new}").get("/api/projects/").status_code == 200


def test_revoking_a_token_ends_it(annotator):
    token = token_attempt(PASSWORD).json()["token"]
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete(TOKEN_URL).status_code == 204
    assert not Token.objects.filter(user=annotator).exists()
    assert client.get("/api/projects/").status_code == 401
    # Signing in again issues a fresh one.
    assert token_attempt(PASSWORD).json()["token"] != token


def test_rotate_and_revoke_need_a_signed_in_user():
    assert APIClient().post("/api/auth/token/rotate/").status_code == 401
    assert APIClient().delete(TOKEN_URL).status_code == 401
