"""annotation.people: creating users, their roles, the admin rules, invitations and passwords."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation import people
from annotation.assignment import assignment_claim_next
from annotation.models import Assignment
from annotation.roles import admins
from config.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

User = get_user_model()


def link_for(uid, token):
    return f"https://studio.example/invitation/{uid}/{token}/"


def token_of(invitation) -> str:
    return invitation.url.rstrip("/").rsplit("/", 1)[1]


def test_a_user_created_with_a_password_signs_in_with_it_and_gets_their_roles(admin_user, make_project):
    helpfulness, safety = make_project("Helpfulness"), make_project("Safety")
    user, invitation = people.user_create(
        actor=admin_user, username="carol", email="carol@example.org", password="a-long-enough-secret",
        annotator_of=[helpfulness.id], reviewer_of=[safety.id],
    )
    assert invitation is None
    assert user.check_password("a-long-enough-secret") and not user.is_staff
    assert list(user.annotation_projects.all()) == [helpfulness]
    assert list(user.reviewed_projects.all()) == [safety]


def test_a_password_that_fails_the_validators_is_refused_and_nothing_is_created(admin_user):
    with pytest.raises(DomainError) as refused:
        people.user_create(actor=admin_user, username="carol", password="short")
    assert "password" in refused.value.fields
    assert "at least 8 characters" in refused.value.message
    assert not User.objects.filter(username="carol").exists()


def test_an_invited_user_has_no_password_and_a_one_time_link(admin_user):
    user, invitation = people.user_create(actor=admin_user, username="dave", invitation_url=link_for)
    assert not user.has_usable_password()
    assert invitation.url.startswith("https://studio.example/invitation/")
    assert default_token_generator.check_token(user, token_of(invitation))
    assert timezone.now() + timedelta(days=2) < invitation.expires_at  # PASSWORD_RESET_TIMEOUT: 3 days
    assert invitation.emailed is False  # no mail server is configured
    # The link works once: choosing the password changes the hash the token is made of.
    people.user_password_set(user=user, password="dave-chose-this")
    assert not default_token_generator.check_token(user, token_of(invitation))


def test_usernames_are_unique_ignoring_case_and_checked_by_djangos_validator(admin_user, make_user):
    make_user("erin")
    with pytest.raises(ConflictError):
        people.user_create(actor=admin_user, username="Erin", invitation_url=link_for)
    with pytest.raises(DomainError) as refused:
        people.user_create(actor=admin_user, username="no spaces", invitation_url=link_for)
    assert "username" in refused.value.fields


def test_unknown_project_ids_are_named(admin_user, make_project):
    project = make_project()
    with pytest.raises(DomainError) as refused:
        people.user_create(actor=admin_user, username="fay", invitation_url=link_for, reviewer_of=[project.id, 999999])
    assert refused.value.fields == {"reviewer_of": ["unknown project ids: 999999"]}
    assert not User.objects.filter(username="fay").exists()


def test_only_active_admins_may_act(annotator, make_user):
    with pytest.raises(PermissionDeniedError):
        people.user_create(actor=annotator, username="gus", invitation_url=link_for)
    former = make_user("former", admin=True)
    former.is_active = False
    former.save()
    with pytest.raises(PermissionDeniedError):
        people.user_update(actor=former, user=annotator, is_admin=True)
    annotator.refresh_from_db()
    assert not annotator.is_staff


def test_an_admin_cannot_revoke_their_own_admin_or_deactivate_themselves(admin_user, make_user):
    make_user("second-admin", admin=True)
    with pytest.raises(PermissionDeniedError, match="your own admin"):
        people.user_update(actor=admin_user, user=admin_user, is_admin=False)
    with pytest.raises(PermissionDeniedError, match="deactivate yourself"):
        people.user_update(actor=admin_user, user=admin_user, is_active=False)
    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_active


def test_the_last_active_admin_cannot_be_removed(admin_user):
    with pytest.raises(ConflictError, match="last active admin"):
        people.user_update(actor=admin_user, user=admin_user, is_admin=False)
    with pytest.raises(ConflictError, match="last active admin"):
        people.user_update(actor=admin_user, user=admin_user, is_active=False)


def test_two_admins_revoking_each_other_leave_one_admin(admin_user, make_user):
    other = make_user("other-admin", admin=True)
    stale_view_of_other = User.objects.get(id=other.id)  # what the second request loaded before the first committed
    people.user_update(actor=admin_user, user=other, is_admin=False)
    # The second request re-reads its actor under the admins' lock: no longer an admin.
    with pytest.raises(PermissionDeniedError):
        people.user_update(actor=stale_view_of_other, user=admin_user, is_admin=False)
    assert list(admins().values_list("username", flat=True)) == ["boss"]


def test_memberships_are_replaced_and_other_fields_left_alone(admin_user, annotator, make_project):
    first, second = make_project("First", annotators=[annotator]), make_project("Second")
    people.user_update(actor=admin_user, user=annotator, annotator_of=[second.id])
    assert list(annotator.annotation_projects.all()) == [second]
    assert list(first.annotators.all()) == []
    people.user_update(actor=admin_user, user=annotator, reviewer_of=[first.id, second.id])
    assert list(annotator.annotation_projects.all()) == [second]  # untouched
    assert set(annotator.reviewed_projects.all()) == {first, second}
    people.user_update(actor=admin_user, user=annotator, is_admin=True)
    annotator.refresh_from_db()
    assert annotator.is_staff and annotator.is_active and annotator.groups.filter(name="Admins").exists()


def test_deactivating_lets_the_users_open_leases_lapse_at_once(admin_user, annotator, make_project):
    project = make_project(annotators=[annotator])
    lease = assignment_claim_next(project=project, annotator=annotator, exclude_ids=[], ordering="sequential")
    assert lease.expires_at > timezone.now()
    people.user_update(actor=admin_user, user=annotator, is_active=False)
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.ACTIVE and lease.expires_at <= timezone.now()
    annotator.refresh_from_db()
    assert not annotator.is_active
    # The item is free for someone else right away.
    colleague = User.objects.create_user("colleague", password=PASSWORD)
    project.annotators.add(colleague)
    again = assignment_claim_next(project=project, annotator=colleague, exclude_ids=[], ordering="sequential")
    assert again.item_id == lease.item_id


def test_a_new_link_ends_the_password_earlier_links_and_the_token(admin_user, annotator):
    token = Token.objects.create(user=annotator)
    first = people.user_invitation_issue(actor=admin_user, user=annotator, invitation_url=link_for)
    annotator.refresh_from_db()
    assert not annotator.check_password(PASSWORD)
    assert not Token.objects.filter(key=token.key).exists()
    second = people.user_invitation_issue(actor=admin_user, user=annotator, invitation_url=link_for)
    annotator.refresh_from_db()
    assert not default_token_generator.check_token(annotator, token_of(first))
    assert default_token_generator.check_token(annotator, token_of(second))


def test_no_link_for_oneself_or_for_a_deactivated_account(admin_user, annotator):
    with pytest.raises(PermissionDeniedError, match="/account/password/"):
        people.user_invitation_issue(actor=admin_user, user=admin_user, invitation_url=link_for)
    people.user_update(actor=admin_user, user=annotator, is_active=False)
    with pytest.raises(ConflictError, match="reactivate"):
        people.user_invitation_issue(actor=admin_user, user=annotator, invitation_url=link_for)


def test_a_temporary_password_replaces_the_old_one_and_is_validated(admin_user, annotator):
    Token.objects.create(user=annotator)
    with pytest.raises(DomainError) as refused:
        people.user_temporary_password_set(actor=admin_user, user=annotator, password="short")
    assert "password" in refused.value.fields
    annotator.refresh_from_db()
    assert annotator.check_password(PASSWORD)

    chosen = people.user_temporary_password_set(actor=admin_user, user=annotator)
    annotator.refresh_from_db()
    assert len(chosen) >= 12 and annotator.check_password(chosen) and not annotator.check_password(PASSWORD)
    assert not Token.objects.filter(user=annotator).exists()
    with pytest.raises(PermissionDeniedError):
        people.user_temporary_password_set(actor=admin_user, user=admin_user)


def test_the_link_is_emailed_only_when_a_mail_server_is_configured(admin_user, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        _, invitation = people.user_create(actor=admin_user, username="hal", email="hal@example.org", invitation_url=link_for)
    assert invitation.emailed is False and mail.outbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        _, invitation = people.user_create(actor=admin_user, username="ida", email="ida@example.org", invitation_url=link_for)
        _, without_address = people.user_create(actor=admin_user, username="jo", invitation_url=link_for)
    assert invitation.emailed is True and without_address.emailed is False
    assert [message.to for message in mail.outbox] == [["ida@example.org"]]
    assert invitation.url in mail.outbox[0].body


def test_users_with_roles_costs_three_queries_whatever_the_number_of_users(
    admin_user, make_user, make_project, django_assert_num_queries
):
    project = make_project(annotators=[make_user(f"u{index}") for index in range(5)])
    project.reviewers.add(admin_user)
    with django_assert_num_queries(3):
        users = list(people.users_with_roles())
    by_name = {user.username: user for user in users}
    assert [p.name for p in by_name["boss"].reviewed_projects.all()] == [project.name]
    assert [p.name for p in by_name["u0"].annotation_projects.all()] == [project.name]
    assert by_name["u0"].label_count == 0


def test_user_get_for_admin_refuses_non_admins_before_looking(annotator, admin_user):
    with pytest.raises(PermissionDeniedError):
        people.user_get_for_admin(admin=annotator, user_id=admin_user.id)
    with pytest.raises(NotFoundError):
        people.user_get_for_admin(admin=admin_user, user_id=10**12)
