"""People and roles API (admins only): users, their projects, admin rights, invitations, passwords.

Adapters: parse, check access (``annotation.people.require_people_admin`` before any lookup,
so a non-admin learns nothing about which user ids exist), call one service of
``annotation.people``, render. Every endpoint answers 403 to a signed-in non-admin.
"""
from django.urls import path, reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import people
from annotation.roles import user_holds_admin_role

# PostgreSQL's bigint: a larger id would fail in the database, not as a 400.
MAX_ID = 2**63 - 1
# More projects than any deployment has; bounds the work a hostile body can ask for.
MAX_PROJECTS = 1000
# Django's forms allow passwords this long; hashing a longer one is only work for nothing.
MAX_PASSWORD_LENGTH = 4096


def invitation_url_for(request):
    """Builds the absolute one-time link (the page is ``frontend:invitation``) from uid and token."""
    return lambda uid, token: request.build_absolute_uri(reverse("frontend:invitation", args=[uid, token]))


# --------------------------------------------------------------------------- shapes


class ProjectRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    is_admin = serializers.SerializerMethodField(
        help_text="Holds the admin role (group \"Admins\", or a superuser): annotation.roles."
    )
    is_active = serializers.BooleanField()
    has_password = serializers.SerializerMethodField(
        help_text="False until an invited user chooses a password (or after a reset link was issued)."
    )
    last_login = serializers.DateTimeField(allow_null=True)
    date_joined = serializers.DateTimeField()
    labels = serializers.IntegerField(source="label_count", help_text="Labels this user submitted, in every project.")
    annotator_of = ProjectRefSerializer(many=True, source="annotation_projects.all")
    reviewer_of = ProjectRefSerializer(many=True, source="reviewed_projects.all")

    def get_is_admin(self, user) -> bool:
        return user_holds_admin_role(user)

    def get_has_password(self, user) -> bool:
        return user.has_usable_password()


def _project_ids(help_text: str):
    return serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        max_length=MAX_PROJECTS, required=False, help_text=help_text,
    )


def _password(help_text: str):
    return serializers.CharField(
        required=False, write_only=True, trim_whitespace=False, max_length=MAX_PASSWORD_LENGTH, help_text=help_text
    )


class UserCreateSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="Letters, digits and @/./+/-/_ only.")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    is_admin = serializers.BooleanField(required=False, default=False)
    annotator_of = _project_ids("Ids of the projects this user annotates.")
    reviewer_of = _project_ids("Ids of the projects this user reviews.")
    password = _password(
        "An initial password (checked against the password validators). Leave it out to get a one-time "
        "invitation link instead."
    )


class UserUpdateSerializer(serializers.Serializer):
    is_admin = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False, help_text="False: the user can no longer sign in or use a token.")
    annotator_of = _project_ids("Ids of the projects this user annotates (replaces the list).")
    reviewer_of = _project_ids("Ids of the projects this user reviews (replaces the list).")


class InvitationSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The one-time link; it works once, until expires_at.")
    expires_at = serializers.DateTimeField()
    emailed = serializers.BooleanField(help_text="Also sent to the user's e-mail address (only when a mail server is configured).")


class UserCreatedSerializer(serializers.Serializer):
    user = UserSerializer()
    invitation = InvitationSerializer(allow_null=True, help_text="Null when a password was given.")


class TemporaryPasswordRequestSerializer(serializers.Serializer):
    password = _password("The temporary password; leave it out for a random one.")


class TemporaryPasswordSerializer(serializers.Serializer):
    password = serializers.CharField(help_text="The temporary password, to pass on to the user.")


# --------------------------------------------------------------------------- views


class UserListView(APIView):
    @extend_schema(responses=UserSerializer(many=True), summary="Every user with their roles (admins)")
    def get(self, request):
        people.require_people_admin(request.user)
        return Response(UserSerializer(people.users_with_roles(), many=True).data)

    @extend_schema(
        request=UserCreateSerializer,
        responses={201: UserCreatedSerializer, 409: OpenApiResponse(description="The username is taken.")},
        summary="Create a user with a password, or with a one-time invitation link (admins)",
    )
    def post(self, request):
        people.require_people_admin(request.user)
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, invitation = people.user_create(
            actor=request.user, invitation_url=invitation_url_for(request), **serializer.validated_data
        )
        body = {"user": people.user_get_for_admin(admin=request.user, user_id=user.id), "invitation": invitation}
        return Response(UserCreatedSerializer(body).data, status=status.HTTP_201_CREATED)


class UserDetailView(APIView):
    @extend_schema(responses=UserSerializer, summary="One user with their roles (admins)")
    def get(self, request, user_id: int):
        return Response(UserSerializer(people.user_get_for_admin(admin=request.user, user_id=user_id)).data)

    @extend_schema(
        request=UserUpdateSerializer,
        responses={200: UserSerializer, 409: OpenApiResponse(description="The last active admin cannot be removed.")},
        summary="Change a user's admin right, activity or projects (admins)",
        description="An admin cannot revoke their own admin or deactivate themselves (403); the last active "
        "admin cannot be removed (409). Deactivating lets the user's open leases lapse at once.",
    )
    def patch(self, request, user_id: int):
        user = people.user_get_for_admin(admin=request.user, user_id=user_id)
        serializer = UserUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        people.user_update(actor=request.user, user=user, **serializer.validated_data)
        return Response(UserSerializer(people.user_get_for_admin(admin=request.user, user_id=user_id)).data)


class UserInvitationView(APIView):
    @extend_schema(
        request=None,
        responses={201: InvitationSerializer},
        summary="A fresh one-time link to choose a password (admins)",
        description="The user's current password, earlier links, sessions and API token stop working at once.",
    )
    def post(self, request, user_id: int):
        user = people.user_get_for_admin(admin=request.user, user_id=user_id)
        invitation = people.user_invitation_issue(actor=request.user, user=user, invitation_url=invitation_url_for(request))
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)


class UserPasswordView(APIView):
    @extend_schema(
        request=TemporaryPasswordRequestSerializer,
        responses={200: TemporaryPasswordSerializer},
        summary="Give a user a temporary password (admins)",
        description="The old password, the user's sessions and API token stop working at once.",
    )
    def post(self, request, user_id: int):
        user = people.user_get_for_admin(admin=request.user, user_id=user_id)
        serializer = TemporaryPasswordRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        password = people.user_temporary_password_set(actor=request.user, user=user, **serializer.validated_data)
        return Response(TemporaryPasswordSerializer({"password": password}).data)


urlpatterns = [
    path("users/", UserListView.as_view(), name="user-list"),
    path("users/<int:user_id>/", UserDetailView.as_view(), name="user-detail"),
    path("users/<int:user_id>/invitation/", UserInvitationView.as_view(), name="user-invitation"),
    path("users/<int:user_id>/password/", UserPasswordView.as_view(), name="user-password"),
]
