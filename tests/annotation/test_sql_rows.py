"""The hot path's hand-written queries load what the ORM would have loaded.

``annotation.sql_rows`` turns rows of SQL into model instances; the queries that use it (the
token's user, the locked assignment, the open leases, the locked item, the annotator's project)
must give the same instances, field by field and type by type, as the querysets they replace,
on SQLite here and on PostgreSQL in ``scripts/test``, and the same access decisions.
"""
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotation.assignment import _lock_item, _open_leases, assignment_claim_next
from annotation.models import Assignment, ComparisonItem, Project
from annotation.roles import ROLE_MASK, RoleTokenAuthentication, role_flags
from annotation.selectors import project_get_for_user, projects_for_user
from annotation.services import _locked_active_assignment, label_submit
from annotation.sql_rows import columns, instances, lock_clause
from config.errors import NotFoundError

pytestmark = pytest.mark.django_db


def assert_same_instance(loaded, expected) -> None:
    """Every concrete field equal and of the same type, and loaded from the database (not "adding")."""
    assert type(loaded) is type(expected)
    for field in type(expected)._meta.concrete_fields:
        ours, theirs = getattr(loaded, field.attname), getattr(expected, field.attname)
        assert (ours, type(ours)) == (theirs, type(theirs)), field.name
    assert loaded._state.adding is False and loaded._state.db == expected._state.db


def test_instances_read_each_model_from_its_columns(project, annotator):
    lease = assignment_claim_next(project=project, annotator=annotator)
    label_submit(assignment_id=lease.id, annotator=annotator, client_id=uuid.uuid4(), choice="A", ratings={})
    expected = Assignment.objects.select_related("item__prompt").get(id=lease.id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {columns(Assignment, "a")}, {columns(ComparisonItem, "i")} FROM {Assignment._meta.db_table} a
                JOIN {ComparisonItem._meta.db_table} i ON i.id = a.item_id WHERE a.id = %s""",
            [lease.id],
        )
        assignment, item = instances(cursor.fetchone(), (Assignment, ComparisonItem))
    assert_same_instance(assignment, expected)  # JSON, datetimes, text choices
    assert_same_instance(item, expected.item)


def test_the_locked_assignment_comes_with_its_item_and_project(project, annotator):
    lease = assignment_claim_next(project=project, annotator=annotator)
    expected = Assignment.objects.select_related("item__project").get(id=lease.id)
    loaded = _locked_active_assignment(assignment_id=lease.id, annotator=annotator)
    with CaptureQueriesContext(connection) as queries:
        assert_same_instance(loaded, expected)
        assert_same_instance(loaded.item, expected.item)
        assert_same_instance(loaded.item.project, expected.item.project)
    assert not queries.captured_queries


def test_the_locked_assignment_is_only_its_annotators(project, annotator, make_user):
    lease = assignment_claim_next(project=project, annotator=annotator)
    with pytest.raises(NotFoundError):
        _locked_active_assignment(assignment_id=lease.id, annotator=make_user("someone-else"))
    with pytest.raises(NotFoundError):
        _locked_active_assignment(assignment_id=lease.id + 1000, annotator=annotator)


def test_open_leases_and_the_locked_item_come_with_their_prompts(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=4)
    first = assignment_claim_next(project=project, annotator=annotator)
    second = assignment_claim_next(project=project, annotator=annotator, exclude_ids=[first.id])
    from django.utils import timezone

    leases = _open_leases(project=project, annotator=annotator, now=timezone.now())
    expected = list(Assignment.objects.select_related("item__prompt").filter(id__in=[first.id, second.id]).order_by("id"))
    assert [lease.id for lease in leases] == [first.id, second.id]
    for lease, orm in zip(leases, expected):
        assert_same_instance(lease, orm)
        assert_same_instance(lease.item.prompt, orm.item.prompt)
    item = _lock_item(first.item_id, wait=True)
    assert_same_instance(item, expected[0].item)
    assert_same_instance(item.prompt, expected[0].item.prompt)
    assert _lock_item(10**9, wait=False) is None


def test_the_token_query_loads_the_user_and_roles_as_the_orm_does(make_user):
    for user in (make_user("plain"), make_user("boss", admin=True)):
        key = Token.objects.create(user=user).key
        authenticated, token = RoleTokenAuthentication().authenticate_credentials(key)
        expected = get_user_model().objects.annotate(**role_flags()).get(id=user.id)
        assert_same_instance(authenticated, expected)
        assert_same_instance(token, Token.objects.get(key=key))
        assert getattr(authenticated, ROLE_MASK) == getattr(expected, ROLE_MASK)


def test_project_get_for_user_agrees_with_projects_for_user(make_project, make_user):
    member, outsider, admin = make_user("member"), make_user("outsider"), make_user("admin", admin=True)
    inactive = make_user("gone")
    projects = {status: make_project(f"p-{status}", annotators=[member, inactive]) for status in Project.Status.values}
    for status, project in projects.items():
        Project.objects.filter(id=project.id).update(status=status)
    inactive.is_active = False
    inactive.save()
    for user in (member, outsider, admin, inactive):
        allowed = set(projects_for_user(user).values_list("id", flat=True))
        for project in projects.values():
            try:
                found = project_get_for_user(user=user, project_id=project.id)
            except NotFoundError:
                found = None
            assert (found is not None) == (project.id in allowed), (user.username, project.status)
            if found is not None:
                assert_same_instance(found, Project.objects.get(id=project.id))


def test_lock_clause_follows_the_backend():
    if connection.features.has_select_for_update:
        assert lock_clause(of="item") == "FOR UPDATE OF item"
        assert lock_clause(of="item", skip_locked=True) == "FOR UPDATE OF item SKIP LOCKED"
    else:
        assert lock_clause(of="item", skip_locked=True) == ""
