"""Signing in: the API token endpoints and login throttling (django-axes).

django-axes records every failed sign-in (token endpoint, login form, admin) in the
database and, after ``LOGIN_FAILURE_LIMIT`` failures, refuses that account for
``LOGIN_LOCKOUT_MINUTES`` even with the right password. The lockout lives in the
database, so every web worker sees it. An admin unlocks from Django admin
("Access attempts": delete the row) or with ``manage.py axes_reset_username <name>``.
"""
from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from config.errors import DomainError


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, for sign-ins that come with a request.

    ``authenticate()`` without a request is not a sign-in over the web (a management
    command, Django's test client ``login()``): there is no client to throttle, so it
    passes through to the next backend instead of raising.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _lockout_minutes(request) -> int | None:
    cool_off = get_cool_off(request)
    return None if cool_off is None else max(1, round(cool_off.total_seconds() / 60))


def lockout_sentence(request) -> str:
    minutes = _lockout_minutes(request)
    if minutes is None:
        return "Too many failed sign-ins: this account is locked until an admin unlocks it."
    return (
        f"Too many failed sign-ins: this account is locked for {minutes} minute{'s' if minutes != 1 else ''}. "
        "Try again later, or ask an admin to unlock it."
    )


class LockedOutError(DomainError):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    code = "locked_out"


def _error_body(request) -> dict:
    minutes = _lockout_minutes(request)
    extra = {} if minutes is None else {"retry_after_seconds": minutes * 60}
    return {"detail": lockout_sentence(request), "code": LockedOutError.code, "fields": {}, **extra}


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: the API's error shape under /api/, the login page elsewhere."""
    if request.path.startswith("/api/"):
        body = _error_body(request)
        response = JsonResponse(body, status=LockedOutError.status_code)
    else:
        form = AuthenticationForm(request, data=None, initial={"username": (credentials or {}).get("username", "")})
        response = render(
            request,
            "registration/login.html",
            {"form": form, "lockout_message": lockout_sentence(request), "next": request.POST.get("next", "")},
            status=LockedOutError.status_code,
        )
    minutes = _lockout_minutes(request)
    if minutes is not None:
        response["Retry-After"] = str(minutes * 60)
    return response


def token_revoke(*, user) -> None:
    Token.objects.filter(user=user).delete()


def token_rotate(*, user) -> Token:
    """A new token for ``user``; the old one stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


_TOKEN = inline_serializer("AuthToken", fields={"token": serializers.CharField(read_only=True)})
_ERROR = inline_serializer(
    "AuthError",
    fields={
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "fields": serializers.DictField(),
        "retry_after_seconds": serializers.IntegerField(required=False, help_text="When locked out: seconds until it ends."),
    },
)


class TokenView(ObtainAuthToken):
    """``POST``: trade a username and password for the API token. ``DELETE``: revoke one's own token."""

    def get_permissions(self):
        return [IsAuthenticated()] if self.request.method == "DELETE" else []

    @extend_schema(
        summary="Trade a username and password for the API token",
        request=AuthTokenSerializer,
        responses={
            200: _TOKEN,
            400: OpenApiResponse(_ERROR, description="Wrong username or password."),
            429: OpenApiResponse(_ERROR, description="Too many failed sign-ins: the account is locked for a while."),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # Axes flags the request it was given (DRF's), so look at both.
            if getattr(request, "axes_locked_out", False) or getattr(request._request, "axes_locked_out", False):
                body = _error_body(request._request)
                raise LockedOutError(body["detail"], extra={k: v for k, v in body.items() if k == "retry_after_seconds"})
            serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})

    @extend_schema(operation_id="auth_token_revoke", summary="Revoke one's own token", request=None, responses={204: None})
    def delete(self, request, *args, **kwargs):
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRotateView(APIView):
    """Replace one's own token with a new one; the old one stops working at once."""

    @extend_schema(
        operation_id="auth_token_rotate",
        summary="Replace one's own token; the old one stops working at once",
        request=None,
        responses={200: _TOKEN},
    )
    def post(self, request):
        token = token_rotate(user=request.user)
        return Response({"token": token.key})
