"""People and roles: who may label, review and administer, and how they get in.

Admins (``annotation.roles``: the "Admins" group) create users, give them projects to annotate and to review, make or
revoke admins, deactivate accounts and reset passwords. Every write here is keyword-only
and atomic, and refuses with a ``config.errors.DomainError`` that changes nothing.

Two rules keep the platform administrable, whatever requests race:

* an admin cannot revoke their own admin, deactivate themselves, or reset their own
  password here (they would lock themselves out mid-request; ``/account/password/`` is
  for changing one's own password);
* the last active admin cannot be removed.

Both are checked with the active admins' rows locked (``_lock_admins``), and the acting
admin is re-read under that lock: two admins revoking each other at the same moment are
serialised, and the second finds it is no longer an admin.

Sign-up is by invitation: a one-time link built like Django's password reset (uid +
``default_token_generator``), valid for ``PASSWORD_RESET_TIMEOUT`` seconds. The token hashes
the password, so the link stops working once used, and issuing a new link (which also
ends the current password) invalidates every earlier one.
"""
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotation.models import Assignment, Label, Project
from annotation.roles import admin_role_holders, admin_role_set, admins, role_flags, user_is_admin
from config.auth import token_revoke
from config.errors import ConflictError, DomainError, NotFoundError, PermissionDeniedError

User = get_user_model()


# --------------------------------------------------------------------------- reads


def users_with_roles() -> QuerySet:
    """Every user with what the People page shows: projects annotated and reviewed, labels made.

    Three queries whatever the number of users: the users with their label counts (a
    correlated count over the (annotator, client_id) index), and one prefetch per role.
    """
    labels = (
        Label.objects.filter(annotator=OuterRef("pk")).order_by().values("annotator").annotate(n=Count("id")).values("n")
    )
    projects = Project.objects.only("id", "name", "status").order_by("name")
    return (
        User.objects.annotate(label_count=Coalesce(Subquery(labels), 0), **role_flags())
        .prefetch_related(
            Prefetch("annotation_projects", queryset=projects), Prefetch("reviewed_projects", queryset=projects)
        )
        .order_by("username")
    )


def user_get_for_admin(*, admin, user_id: int):
    """The user ``user_id`` with its roles, for an admin; PermissionDenied for anyone else (before
    the lookup, so non-admins learn nothing about which ids exist), NotFoundError for a missing id."""
    require_people_admin(admin)
    user = users_with_roles().filter(id=user_id).first()
    if user is None:
        raise NotFoundError("No such user.")
    return user


def require_people_admin(user) -> None:
    if not user_is_admin(user):
        raise PermissionDeniedError("Only admins can manage people.")


def active_admin_count() -> int:
    return admins().count()


def projects_by_ids(*, ids: Iterable[int], field: str) -> list[Project]:
    """The projects named by ``ids`` (admins may assign any project); DomainError naming
    ``field`` and the ids that do not exist."""
    wanted = set(ids)
    projects = list(Project.objects.filter(id__in=wanted).order_by("id"))
    missing = sorted(wanted - {project.id for project in projects})
    if missing:
        shown = ", ".join(str(project_id) for project_id in missing[:10])
        raise DomainError(f"{field}: no such project: {shown}.", fields={field: [f"unknown project ids: {shown}"]})
    return projects


# --------------------------------------------------------------------------- invitations


@dataclass(frozen=True)
class Invitation:
    """A one-time link to choose a password. ``emailed``: it was also sent to the user's address."""

    url: str
    expires_at: datetime
    emailed: bool


# Builds the absolute link from the uid and token: the caller knows the host and the route.
InvitationUrl = Callable[[str, str], str]


def email_configured() -> bool:
    """Whether settings name a mail server or backend; Django's default (SMTP on localhost) is
    not one, and this deployment configures none, so links are shown to the admin to pass on."""
    return any(settings.is_overridden(name) for name in ("EMAIL_BACKEND", "EMAIL_HOST"))


def _invitation(*, user, url_for: InvitationUrl, subject: str) -> Invitation:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    url = url_for(uid, default_token_generator.make_token(user))
    expires_at = timezone.now() + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    emailed = bool(user.email) and email_configured()
    if emailed:
        body = (
            f"Hello {user.get_username()},\n\nChoose your password for Preference Studio here:\n\n{url}\n\n"
            f"The link works once, until {expires_at:%Y-%m-%d %H:%M} UTC.\n"
        )
        # After commit: a rolled-back invitation must not reach anyone's inbox.
        transaction.on_commit(lambda: send_mail(subject, body, None, [user.email]))
    return Invitation(url=url, expires_at=expires_at, emailed=emailed)


def _end_credentials(user) -> None:
    """The password stops working, and with it the user's sessions (Django checks a hash of the
    password on each request) and API token."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    token_revoke(user=user)


# --------------------------------------------------------------------------- writes


def _lock_admins(*, actor) -> None:
    """Lock every active admin's row (id order, so two callers cannot deadlock) and check that
    ``actor`` is still one of them."""
    admin_ids = list(
        admins().select_for_update().order_by("id").values_list("id", flat=True)
    )
    if actor.id not in admin_ids:
        raise PermissionDeniedError("Only admins can manage people.")


def _check_password(password: str, *, user) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise DomainError(f"password: {' '.join(exc.messages)}", fields={"password": list(exc.messages)}) from exc


def _check_username(username: str) -> None:
    try:
        User.username_validator(username)
    except ValidationError as exc:
        raise DomainError(f"username: {' '.join(exc.messages)}", fields={"username": list(exc.messages)}) from exc
    # Case-insensitively unique, so "Ann" and "ann" are never two people on the page.
    if User.objects.filter(username__iexact=username).exists():
        raise ConflictError(f"The username {username!r} is taken.", fields={"username": ["already taken"]})


def user_create(
    *,
    actor,
    username: str,
    email: str = "",
    is_admin: bool = False,
    annotator_of: Iterable[int] = (),
    reviewer_of: Iterable[int] = (),
    password: str | None = None,
    invitation_url: InvitationUrl | None = None,
) -> tuple[object, Invitation | None]:
    """Create a user with their roles. Returns ``(user, invitation)``.

    With ``password`` (checked against ``AUTH_PASSWORD_VALIDATORS``) the user can sign in at
    once and ``invitation`` is None; without it the password is unusable and ``invitation_url``
    builds the one-time link to choose one.
    """
    if password is None and invitation_url is None:
        raise TypeError("user_create needs a password or an invitation_url")
    _check_username(username)
    annotated = projects_by_ids(ids=annotator_of, field="annotator_of")
    reviewed = projects_by_ids(ids=reviewer_of, field="reviewer_of")
    candidate = User(username=username, email=email)
    if password is not None:
        _check_password(password, user=candidate)
    try:
        with transaction.atomic():
            _lock_admins(actor=actor)
            user = User.objects.create_user(username=username, email=email, password=password)
            if is_admin:
                admin_role_set(user=user, is_admin=True)
            user.annotation_projects.add(*annotated)
            user.reviewed_projects.add(*reviewed)
            invitation = None
            if password is None:
                invitation = _invitation(user=user, url_for=invitation_url, subject="Your Preference Studio account")
    except IntegrityError as exc:
        # Two admins creating the same name at once: the database's unique index decides.
        raise ConflictError(f"The username {username!r} is taken.", fields={"username": ["already taken"]}) from exc
    return user, invitation


def user_update(
    *,
    actor,
    user,
    is_admin: bool | None = None,
    is_active: bool | None = None,
    annotator_of: Iterable[int] | None = None,
    reviewer_of: Iterable[int] | None = None,
):
    """Change a user's roles; ``None`` leaves a field as it is, a list replaces the projects.

    Deactivating ends the user's sign-ins (sessions and API token are refused for an inactive
    user) and lets their open leases lapse now, so the items go back to the pool at once
    instead of when the leases would have run out. Their labels stay.
    """
    annotated = None if annotator_of is None else projects_by_ids(ids=annotator_of, field="annotator_of")
    reviewed = None if reviewer_of is None else projects_by_ids(ids=reviewer_of, field="reviewer_of")
    with transaction.atomic():
        _lock_admins(actor=actor)
        user = User.objects.select_for_update().filter(id=user.id).first()
        if user is None:
            raise NotFoundError("No such user.")
        was_admin = admin_role_holders().filter(id=user.id).exists()
        removes_admin = was_admin and user.is_active and (is_admin is False or is_active is False)
        if removes_admin and active_admin_count() <= 1:
            raise ConflictError(
                "This is the last active admin: make someone else an admin first.",
                fields={"is_admin" if is_admin is False else "is_active": ["the last active admin"]},
            )
        if user.id == actor.id and is_admin is False:
            raise PermissionDeniedError("You cannot revoke your own admin.", fields={"is_admin": ["your own account"]})
        if user.id == actor.id and is_active is False:
            raise PermissionDeniedError("You cannot deactivate yourself.", fields={"is_active": ["your own account"]})
        if is_admin is not None and is_admin != was_admin:
            admin_role_set(user=user, is_admin=is_admin)
        changed = []
        if is_active is not None and is_active != user.is_active:
            user.is_active = is_active
            changed.append("is_active")
            if not is_active:
                Assignment.objects.filter(
                    annotator=user, status=Assignment.Status.ACTIVE, expires_at__gt=timezone.now()
                ).update(expires_at=timezone.now())
        if changed:
            user.save(update_fields=changed)
        if annotated is not None:
            user.annotation_projects.set(annotated)
        if reviewed is not None:
            user.reviewed_projects.set(reviewed)
    return user


def user_invitation_issue(*, actor, user, invitation_url: InvitationUrl) -> Invitation:
    """A fresh one-time link for ``user`` to choose a password (an invitation, or a reset).

    The current password stops working at once, and with it every earlier link, the user's
    sessions and API token: a reset is for a forgotten or exposed password.
    """
    with transaction.atomic():
        _lock_admins(actor=actor)
        if user.id == actor.id:
            raise PermissionDeniedError("Change your own password at /account/password/, not here.")
        user = User.objects.select_for_update().get(id=user.id)
        if not user.is_active:
            raise ConflictError("This account is deactivated: reactivate it first.", fields={"is_active": ["inactive"]})
        _end_credentials(user)
        return _invitation(user=user, url_for=invitation_url, subject="Reset your Preference Studio password")


def user_temporary_password_set(*, actor, user, password: str | None = None) -> str:
    """Give ``user`` a temporary password (``password``, or a random one); returns it.

    The old password, the user's sessions and API token stop working at once.
    """
    password = password if password is not None else secrets.token_urlsafe(12)
    with transaction.atomic():
        _lock_admins(actor=actor)
        if user.id == actor.id:
            raise PermissionDeniedError("Change your own password at /account/password/, not here.")
        user = User.objects.select_for_update().get(id=user.id)
        _check_password(password, user=user)
        user.set_password(password)
        user.save(update_fields=["password"])
        token_revoke(user=user)
    return password


def user_password_set(*, user, password: str):
    """The user's own new password (invitation accepted, or changed while signed in).

    Callers have checked who they are (the link's token, or the old password) and validated
    the password with Django's forms. The link's token hashes the password, so once this
    commits the link no longer works. Sets it on the instance given, which the caller then
    signs in or keeps signed in (Django's session hash follows the password).
    """
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
