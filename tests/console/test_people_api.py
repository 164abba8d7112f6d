"""The people API (/api/users/...) and the people pages: access, shapes, bad input, and what
deactivation and invitations mean for signing in."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def admin_client(api_client_for, admin_user):
    return api_client_for(admin_user)


def invitation_path(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_list_shows_each_user_with_roles_status_and_labels(admin_client, admin_user, annotator, make_project, make_user):
    project = make_project(annotators=[annotator])
    reviewer = make_user("rita")
    project.reviewers.add(reviewer)
    body = admin_client.get("/api/users/").json()
    assert [user["username"] for user in body] == ["ann", "boss", "rita"]
    ann, boss, rita = body
    assert ann["annotator_of"] == [{"id": project.id, "name": project.name, "status": "active"}]
    assert ann["reviewer_of"] == [] and ann["is_admin"] is False and ann["labels"] == 0
    assert boss["is_admin"] is True and boss["is_active"] is True and boss["has_password"] is True
    assert rita["reviewer_of"][0]["id"] == project.id
    assert set(ann) == {
        "id", "username", "email", "is_admin", "is_active", "has_password", "last_login", "date_joined", "labels",
        "annotator_of", "reviewer_of",
    }


def test_create_with_an_invitation_answers_the_link(admin_client, make_project):
    project = make_project()
    response = admin_client.post(
        "/api/users/", {"username": "newbie", "annotator_of": [project.id]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["username"] == "newbie" and body["user"]["has_password"] is False
    assert body["user"]["annotator_of"][0]["id"] == project.id
    assert body["invitation"]["url"].startswith("http://testserver/invitation/")
    assert body["invitation"]["emailed"] is False


def test_create_with_a_password_answers_no_link(admin_client):
    response = admin_client.post(
        "/api/users/", {"username": "second", "password": "long-enough-pw", "is_admin": True}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["invitation"] is None
    created = User.objects.get(username="second")
    assert created.is_staff and created.check_password("long-enough-pw")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": "x" * 151}, "username"),
        ({"username": "bad name"}, "username"),
        ({"username": "nul\x00byte"}, "username"),
        ({"username": "ok", "email": "not-an-address"}, "email"),
        ({"username": "ok", "password": "short"}, "password"),
        ({"username": "ok", "password": "p" * 5000}, "password"),
        ({"username": "ok", "annotator_of": [10**30]}, "annotator_of"),
        ({"username": "ok", "annotator_of": "3"}, "annotator_of"),
        ({"username": "ok", "annotator_of": [424242]}, "annotator_of"),
        ({"username": "ok", "reviewer_of": [{"id": 1}]}, "reviewer_of"),
        ({"username": "ok", "is_admin": {"nested": [[["deep"]]]}}, "is_admin"),
        ({"username": "ok", "annotator_of": list(range(1, 1100))}, "annotator_of"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin_client, body, field):
    response = admin_client.post("/api/users/", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert not User.objects.filter(username="ok").exists()


def test_a_taken_username_is_a_409(admin_client, annotator):
    response = admin_client.post("/api/users/", {"username": "ANN"}, format="json")
    assert response.status_code == 409
    assert response.json()["fields"] == {"username": ["already taken"]}


def test_patch_changes_roles_and_refuses_what_would_lock_admins_out(admin_client, admin_user, annotator, make_project):
    project = make_project()
    response = admin_client.patch(
        f"/api/users/{annotator.id}/", {"reviewer_of": [project.id], "is_admin": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_admin"] is True and response.json()["reviewer_of"][0]["id"] == project.id

    own = admin_client.patch(f"/api/users/{admin_user.id}/", {"is_admin": False}, format="json")
    assert own.status_code == 403 and own.json()["fields"] == {"is_admin": ["your own account"]}
    assert admin_client.patch(f"/api/users/{admin_user.id}/", {"is_active": False}, format="json").status_code == 403
    assert admin_client.patch(f"/api/users/{annotator.id}/", {"is_active": "maybe"}, format="json").status_code == 400
    assert admin_client.patch("/api/users/999999/", {"is_active": False}, format="json").status_code == 404


def test_invitation_and_temporary_password_endpoints(admin_client, admin_user, annotator):
    link = admin_client.post(f"/api/users/{annotator.id}/invitation/")
    assert link.status_code == 201 and "/invitation/" in link.json()["url"]
    temporary = admin_client.post(f"/api/users/{annotator.id}/password/", {"password": "my-temp-password"}, format="json")
    assert temporary.status_code == 200 and temporary.json() == {"password": "my-temp-password"}
    generated = admin_client.post(f"/api/users/{annotator.id}/password/", {}, format="json").json()["password"]
    annotator.refresh_from_db()
    assert annotator.check_password(generated)
    assert admin_client.post(f"/api/users/{admin_user.id}/invitation/").status_code == 403
    assert admin_client.post(f"/api/users/{annotator.id}/password/", {"password": "x"}, format="json").status_code == 400


@pytest.mark.parametrize("who", ["annotator", "reviewer"])
def test_non_admins_get_403_on_every_people_endpoint_whatever_the_id(who, api_client_for, annotator, admin_user, make_user, make_project):
    user = annotator
    if who == "reviewer":
        user = make_user("rev")
        make_project(annotators=[annotator]).reviewers.add(user)
    client = api_client_for(user)
    for user_id in (annotator.id, admin_user.id, 999999):
        assert client.get(f"/api/users/{user_id}/").status_code == 403
        assert client.patch(f"/api/users/{user_id}/", {"is_admin": True}, format="json").status_code == 403
        assert client.post(f"/api/users/{user_id}/invitation/").status_code == 403
        assert client.post(f"/api/users/{user_id}/password/", {}, format="json").status_code == 403
    assert client.get("/api/users/").status_code == 403
    assert client.post("/api/users/", {"username": "sneaky", "is_admin": True}, format="json").status_code == 403
    assert not User.objects.filter(username="sneaky").exists()
    user.refresh_from_db()
    assert not user.is_staff


def test_anonymous_gets_401(annotator):
    client = APIClient()
    assert client.get("/api/users/").status_code == 401
    assert client.patch(f"/api/users/{annotator.id}/", {"is_admin": True}, format="json").status_code == 401


def test_a_deactivated_user_can_no_longer_sign_in_or_use_a_token_or_a_session(admin_client, annotator, project):
    token = Token.objects.create(user=annotator)
    browser = Client()
    assert browser.login(username="ann", password=PASSWORD)
    assert browser.get("/").status_code == 200

    assert admin_client.patch(f"/api/users/{annotator.id}/", {"is_active": False}, format="json").status_code == 200

    by_token = APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/projects/")
    assert by_token.status_code == 401 and "inactive" in by_token.json()["detail"].lower()
    assert APIClient().post("/api/auth/token/", {"username": "ann", "password": PASSWORD}).status_code == 400
    assert browser.get("/").status_code == 302  # the session no longer stands for anyone
    form = Client().post("/accounts/login/", {"username": "ann", "password": PASSWORD})
    assert form.status_code == 200 and "_auth_user_id" not in form.client.session

    # Reactivated, the same token works again.
    assert admin_client.patch(f"/api/users/{annotator.id}/", {"is_active": True}, format="json").status_code == 200
    assert APIClient(HTTP_AUTHORIZATION=f"Token {token.key}").get("/api/projects/").status_code == 200


def test_the_invitation_link_sets_a_password_signs_in_and_works_once(admin_client, make_project):
    project = make_project()
    body = admin_client.post("/api/users/", {"username": "invitee", "annotator_of": [project.id]}, format="json").json()
    link = invitation_path(body["invitation"]["url"])
    browser = Client()

    opened = browser.get(link)
    assert opened.status_code == 302 and opened.url.endswith("/set-password/")  # the token leaves the URL
    form = browser.get(opened.url)
    assert form.status_code == 200 and b"Choose your password" in form.content

    too_short = browser.post(opened.url, {"new_password1": "short", "new_password2": "short"})
    assert too_short.status_code == 200 and b"at least 8 characters" in too_short.content
    done = browser.post(opened.url, {"new_password1": "my-own-password", "new_password2": "my-own-password"})
    assert done.status_code == 302 and done.url == "/"
    home = browser.get("/")
    assert home.status_code == 200 and project.name.encode() in home.content
    assert User.objects.get(username="invitee").check_password("my-own-password")

    again = Client().get(link, follow=True)
    assert b"This link does not work" in again.content


def test_a_deactivated_users_link_does_not_work(admin_client, annotator):
    link = invitation_path(admin_client.post(f"/api/users/{annotator.id}/invitation/").json()["url"])
    admin_client.patch(f"/api/users/{annotator.id}/", {"is_active": False}, format="json")
    page = Client().get(link, follow=True)
    assert b"This link does not work" in page.content


@pytest.mark.parametrize("link", ["/invitation/x/y/", "/invitation/MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw/abc-def/",
                                  "/invitation/%00%00/set-password/", "/invitation/" + "A" * 5000 + "/t/"])
def test_a_forged_link_shows_the_invalid_page(link):
    page = Client().get(link)
    assert page.status_code == 200 and b"This link does not work" in page.content


def test_a_signed_in_user_changes_their_own_password(annotator):
    browser = Client()
    browser.force_login(annotator)
    assert browser.get("/account/password/").status_code == 200
    wrong = browser.post("/account/password/", {"old_password": "nope", "new_password1": "brand-new-pw", "new_password2": "brand-new-pw"})
    assert wrong.status_code == 200 and b"password-errors" in wrong.content
    changed = browser.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": "brand-new-pw", "new_password2": "brand-new-pw"},
        follow=True,
    )
    assert b"Your password was changed." in changed.content
    assert browser.get("/").status_code == 200  # still signed in
    annotator.refresh_from_db()
    assert annotator.check_password("brand-new-pw")
    assert Client().get("/account/password/").status_code == 302  # anonymous: to the login page


@pytest.mark.parametrize("path", ["/people/", "/people/{id}/"])
def test_people_pages_are_for_admins(path, admin_user, annotator, make_user, make_project):
    reviewer = make_user("rev")
    make_project(annotators=[annotator]).reviewers.add(reviewer)
    url = path.format(id=annotator.id)
    assert Client().get(url).status_code == 302
    for user in (annotator, reviewer):
        browser = Client()
        browser.force_login(user)
        assert browser.get(url).status_code == 403
    browser = Client()
    browser.force_login(admin_user)
    assert browser.get(url).status_code == 200
    assert browser.get("/people/999999/").status_code == 404


def test_the_list_costs_the_same_queries_for_many_users(admin_client, make_user, make_project, django_assert_num_queries):
    project = make_project()
    for index in range(12):
        project.annotators.add(make_user(f"many{index}"))
    with django_assert_num_queries(3):  # users with label counts, then one query per role
        assert len(admin_client.get("/api/users/").json()) == 13
