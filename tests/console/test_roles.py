"""The roles are Django's groups and permissions (annotation.roles), and the selectors agree with them."""
import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation import people, selectors
from annotation.models import Project
from annotation.roles import ADMINISTER, ANNOTATE, REVIEW, ProjectRoleBackend, RoleTokenAuthentication, admins
from tests.console.review_fixtures import submit

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_groups_hold_the_role_permissions():
    assert set(Group.objects.get(name="Admins").permissions.values_list("codename", flat=True)) == {"administer"}
    assert set(Group.objects.get(name="Reviewers").permissions.values_list("codename", flat=True)) == {"review"}
    assert set(Permission.objects.filter(content_type__app_label="annotation", content_type__model="project")
               .values_list("codename", flat=True)) >= {"administer", "review", "annotate"}


def test_the_admin_role_is_the_admins_group_not_is_staff(make_user, django_user_model):
    someone = make_user("someone")
    client = token_client(someone)
    assert client.get("/api/users/").status_code == 403
    someone.is_staff = True  # Django admin's flag alone makes nobody an admin here
    someone.save()
    assert client.get("/api/users/").status_code == 403
    someone.groups.add(Group.objects.get(name="Admins"))  # as Django admin or an SSO sync would
    assert client.get("/api/users/").status_code == 200
    page = Client()
    page.force_login(someone, backend="annotation.roles.ProjectRoleBackend")
    assert page.get("/people/").status_code == 200
    someone.groups.clear()
    assert client.get("/api/users/").status_code == 403
    assert page.get("/people/").status_code == 403
    boss = django_user_model.objects.create_superuser("root", password="a-long-enough-secret")
    assert token_client(boss).get("/api/users/").status_code == 200


def test_the_reviewers_group_reviews_every_project_and_nothing_more(make_user, make_project):
    annotator = make_user("ann")
    project = make_project("Ours", annotators=[annotator], prompts=2)
    submit(project, annotator, choice="A")
    checker = make_user("checker")
    client = token_client(checker)
    labels = f"/api/projects/{project.id}/review/labels/"
    assert client.get(labels).status_code == 404
    checker.groups.add(Group.objects.get(name="Reviewers"))
    assert client.get(labels).status_code == 200
    assert len(client.get(labels).json()["results"]) == 1
    assert client.post(f"/api/projects/{project.id}/next-item/").status_code == 404  # reviewing is not annotating
    assert client.get("/api/users/").status_code == 403


def test_object_permissions_and_the_selectors_agree_for_every_role(make_user, make_project):
    annotator, reviewer, checker, boss, nobody, gone = (
        make_user(name, admin=name == "boss") for name in ("ann", "rev", "checker", "boss", "nobody", "gone")
    )
    checker.groups.add(Group.objects.get(name="Reviewers"))
    ours = make_project("Ours", annotators=[annotator, gone], prompts=1)
    ours.reviewers.add(reviewer, gone)
    archived = make_project("Old", annotators=[annotator], prompts=1)
    archived.status = Project.Status.ARCHIVED
    archived.save()
    theirs = make_project("Theirs", prompts=1)
    gone.is_active = False
    gone.save()
    backend = ProjectRoleBackend()
    for user in (annotator, reviewer, checker, boss, nobody, gone):
        loaded = backend.get_user(user.id) or user  # an inactive user is not loaded: check the plain object
        for project in (ours, archived, theirs):
            may_review = selectors.projects_for_reviewer(loaded).filter(id=project.id).exists()
            may_annotate = selectors.projects_for_user(loaded).filter(id=project.id).exists()
            assert user.has_perm(REVIEW, project) == may_review, (user.username, project.name, "review")
            assert user.has_perm(ANNOTATE, project) == may_annotate, (user.username, project.name, "annotate")
    assert boss.has_perm(ADMINISTER) and not reviewer.has_perm(ADMINISTER)
    assert annotator.has_perm(ANNOTATE, ours) and not annotator.has_perm(ANNOTATE, archived)
    assert checker.has_perm(REVIEW, theirs) and not reviewer.has_perm(REVIEW, theirs)
    assert not gone.has_perm(REVIEW, ours) and backend.get_user(gone.id) is None


def test_global_roles_come_with_the_user_in_one_query(make_user, django_assert_num_queries):
    boss = make_user("boss", admin=True)
    key = Token.objects.create(user=boss).key
    with django_assert_num_queries(1):
        user, _ = RoleTokenAuthentication().authenticate_credentials(key)
        assert selectors.user_is_project_admin(user)
    with django_assert_num_queries(1):
        user = ProjectRoleBackend().get_user(boss.id)
        assert selectors.user_is_project_admin(user) and not selectors.user_reviews_every_project(user)


def test_revoking_admin_takes_away_every_source_of_it(make_user, django_user_model):
    boss = make_user("boss", admin=True)
    root = django_user_model.objects.create_superuser("root", password="a-long-enough-secret")
    direct = make_user("direct")
    direct.user_permissions.add(Permission.objects.get(content_type__app_label="annotation", codename="administer"))
    assert set(admins().values_list("username", flat=True)) == {"boss", "root", "direct"}
    people.user_update(actor=boss, user=root, is_admin=False)
    people.user_update(actor=boss, user=direct, is_admin=False)
    root.refresh_from_db()
    assert not root.is_superuser and not root.is_staff
    assert list(admins().values_list("username", flat=True)) == ["boss"]
    body = token_client(boss).get(f"/api/users/{root.id}/").json()
    assert body["is_admin"] is False
    people.user_update(actor=boss, user=direct, is_admin=True)
    assert token_client(boss).get(f"/api/users/{direct.id}/").json()["is_admin"] is True
    assert direct.groups.filter(name="Admins").exists()
