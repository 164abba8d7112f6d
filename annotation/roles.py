"""Roles on Django's users, groups and permissions: who is an admin, a reviewer, an annotator.

=============================  ==============================  =====================================
Role                           Django permission               Granted by
=============================  ==============================  =====================================
admin (everything)             ``annotation.administer``       group "Admins" (superusers hold every
                                                               permission)
reviewer of a project          ``annotation.review`` on it     the project's ``reviewers``; on every
                                                               project: the permission itself, e.g.
                                                               group "Reviewers"
annotator of a project         ``annotation.annotate`` on it   the project's ``annotators`` (not
                                                               archived)
=============================  ==============================  =====================================

Django's permissions are global and these roles are mostly per project, so the per-project
part is an object permission answered by ``ProjectRoleBackend`` from the membership rows:
``user.has_perm(REVIEW, project)`` is true for a reviewer of that project. The selectors
(``annotation.selectors``) filter projects by the same rule in SQL, and a test checks that
the two agree for every role.

Global roles are read on every request, so they are loaded with the user in the same query
(``role_flags``: the token lookup of ``RoleTokenAuthentication`` and the session user of
``ProjectRoleBackend.get_user``) as a bit mask, rather than with ``has_perm``'s two extra
queries; a user loaded any other way costs one query.

An admin made in the console joins "Admins" and gets ``is_staff`` too (Django admin lets in
staff only); ``is_staff`` alone makes nobody an admin.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.models import IntegerField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from annotation.models import Project
from annotation.sql_rows import columns, instances

APP_LABEL = "annotation"
ADMINISTER = f"{APP_LABEL}.administer"
REVIEW = f"{APP_LABEL}.review"
ANNOTATE = f"{APP_LABEL}.annotate"
ADMINS_GROUP = "Admins"

# The global roles role_flags() loads with a user, one bit each in ``user.role_mask``.
_BITS = {ADMINISTER: 1, REVIEW: 2}
ROLE_MASK = "role_mask"

# Permission ids never change while the database lives; a flush (tests) re-creates the
# permissions with new ids and sends post_migrate, which clears this (AnnotationConfig.ready).
_permission_ids: dict[str, int] = {}


def _permission_id(permission: str) -> int | None:
    if permission not in _permission_ids:
        found = Permission.objects.filter(
            content_type__app_label=APP_LABEL, content_type__model="project", codename=permission.split(".", 1)[1]
        ).values_list("id", flat=True).first()
        if found is None:
            return None  # not migrated yet: nobody holds it but superusers
        _permission_ids[permission] = found
    return _permission_ids[permission]


def permission_ids_forget(**kwargs) -> None:
    _permission_ids.clear()


def _role_mask(user_id_column: str) -> RawSQL:
    """The global roles the user whose id is in ``user_id_column`` holds directly or through a group, as bits.

    Superusers are left to the caller (``user.is_superuser`` comes with the row). One raw
    subquery by permission id on the membership tables: every request loads it, and the ORM's
    Exists over ``auth_permission`` and content types cost milliseconds of compiling and
    planning each time; this costs about 0.2 ms.
    """
    ids = {bit: _permission_id(permission) for permission, bit in _BITS.items()}
    ids = {bit: permission_id for bit, permission_id in ids.items() if permission_id is not None}
    if not ids:
        return RawSQL("0", (), output_field=IntegerField())
    user_model, quote = get_user_model(), connection.ops.quote_name
    direct = quote(user_model.user_permissions.through._meta.db_table)
    member = quote(user_model.groups.through._meta.db_table)
    group_permission = quote(Group.permissions.through._meta.db_table)
    cases = " ".join("WHEN %s THEN %s" for _ in ids)
    listed = ", ".join("%s" for _ in ids)
    sql = (
        f"(SELECT COALESCE(SUM(DISTINCT CASE held.permission_id {cases} END), 0) FROM ("
        f"SELECT d.permission_id FROM {direct} d WHERE d.user_id = {user_id_column} AND d.permission_id IN ({listed})"
        f" UNION SELECT g.permission_id FROM {member} m JOIN {group_permission} g ON g.group_id = m.group_id"
        f" WHERE m.user_id = {user_id_column} AND g.permission_id IN ({listed})) held)"
    )
    params = [value for bit, permission_id in ids.items() for value in (permission_id, bit)]
    params += list(ids.values()) * 2
    return RawSQL(sql, params, output_field=IntegerField())


def _column(model, field: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(model._meta.db_table)}.{quote(model._meta.get_field(field).column)}"


def role_flags(model=None) -> dict[str, RawSQL]:
    """The annotation loading the global roles with a user (``role_mask``), on a query of ``model``:
    the user model (default) or a model with a ``user`` foreign key (DRF's Token)."""
    model = model or get_user_model()
    return {ROLE_MASK: _role_mask(_column(model, "id" if model is get_user_model() else "user"))}


def _holds(user, permission: str) -> bool:
    """Whether ``user`` holds the global ``permission``, active or not."""
    if user.is_superuser:
        return True
    mask = getattr(user, ROLE_MASK, None)
    if mask is None:  # loaded without role_flags: one query
        permission_id = _permission_id(permission)
        return permission_id is not None and get_user_model().objects.filter(id=user.id).filter(
            Q(user_permissions=permission_id) | Q(groups__permissions=permission_id)
        ).exists()
    return bool(mask & _BITS[permission])


def _has(user, permission: str) -> bool:
    return bool(user.is_authenticated and user.is_active and _holds(user, permission))


def user_is_admin(user) -> bool:
    return _has(user, ADMINISTER)


def user_reviews_every_project(user) -> bool:
    return _has(user, REVIEW)


def user_holds_admin_role(user) -> bool:
    """Admin or not, active or not (the People page's badge)."""
    return _holds(user, ADMINISTER)


def admin_role_holders() -> QuerySet:
    """Users holding ``ADMINISTER``, active or not (no DISTINCT, so it can be locked with select_for_update)."""
    admin_masks = [mask for mask in range(2 ** len(_BITS)) if mask & _BITS[ADMINISTER]]
    return get_user_model().objects.annotate(**role_flags()).filter(Q(is_superuser=True) | Q(**{f"{ROLE_MASK}__in": admin_masks}))


def admins() -> QuerySet:
    """The active admins."""
    return admin_role_holders().filter(is_active=True)


def _role_group(name: str, permission: str) -> Group:
    """The group made by migration 0010 (made again if it was deleted, or a test flushed the database)."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        group.permissions.add(Permission.objects.get(id=_permission_id(permission)))
    return group


def admin_role_set(*, user, is_admin: bool) -> None:
    """Make ``user`` an admin (join "Admins", get ``is_staff`` for Django admin) or not.

    Revoking takes away everything that made them one: the group, ``is_staff``, and a
    superuser's flag (set with ``createsuperuser``), which holds every permission.
    """
    group = _role_group(ADMINS_GROUP, ADMINISTER)
    if is_admin:
        user.groups.add(group)
    else:
        user.groups.remove(group)
        user.user_permissions.remove(_permission_id(ADMINISTER))
    changed = {"is_staff": is_admin} | ({} if is_admin else {"is_superuser": False})
    changed = {field: value for field, value in changed.items() if getattr(user, field) != value}
    if changed:
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(update_fields=list(changed))
    for cache in ("_perm_cache", "_group_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)
    user.__dict__.pop(ROLE_MASK, None)


class ProjectRoleBackend(ModelBackend):
    """Django's ModelBackend, plus the per-project roles as object permissions, and users loaded with their roles.

    ``has_perm(user, REVIEW, project)``: admins, holders of the review permission itself, and
    the project's reviewers. ``has_perm(user, ANNOTATE, project)``: admins, and the project's
    annotators while it is not archived (annotating is per project only). Other object
    permissions: none, as ModelBackend.
    """

    def get_user(self, user_id):
        user = get_user_model()._default_manager.annotate(**role_flags()).filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None

    def has_perm(self, user_obj, perm, obj=None):
        if obj is None:
            return super().has_perm(user_obj, perm)
        if not (isinstance(obj, Project) and user_obj.is_active and perm in (REVIEW, ANNOTATE)):
            return False
        if super().has_perm(user_obj, ADMINISTER):
            return True
        if perm == REVIEW:
            return super().has_perm(user_obj, REVIEW) or obj.reviewers.filter(id=user_obj.id).exists()
        return obj.status != Project.Status.ARCHIVED and obj.annotators.filter(id=user_obj.id).exists()


class RoleTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, with the user's global roles loaded in the token's query."""

    def authenticate_credentials(self, key):
        # SQL (annotation.sql_rows): every API call runs it, and the ORM's join took longer to
        # compile than to run.
        model, user_model, quote = self.get_model(), get_user_model(), connection.ops.quote_name
        if "\x00" in key or len(key) > model._meta.pk.max_length:
            # No key holds either; PostgreSQL would refuse the NUL (a 500), not answer "no such key".
            raise AuthenticationFailed(_("Invalid token."))
        user_id = f"token.{quote(model._meta.get_field('user').column)}"
        mask = _role_mask(user_id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT {columns(model, "token")}, {columns(user_model, "account")}, {mask.sql}
                    FROM {quote(model._meta.db_table)} token
                    JOIN {quote(user_model._meta.db_table)} account ON account.{quote(user_model._meta.pk.column)} = {user_id}
                    WHERE token.{quote(model._meta.pk.column)} = %s""",
                [*mask.params, key],
            )
            row = cursor.fetchone()
        if row is None:
            raise AuthenticationFailed(_("Invalid token."))
        token, user = instances(row, (model, user_model))
        token.user = user
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        setattr(user, ROLE_MASK, row[-1])
        return user, token
