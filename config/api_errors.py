"""One error shape for the whole API.

Every error body is ``{"detail": <sentence>, "code": <slug>, "fields": {name: [messages]}}``
(plus ``"errors"`` for imports, which list one entry per bad line).
"""
import logging

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.errors import DomainError

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5


def _flatten(detail) -> list[str]:
    if isinstance(detail, (list, tuple)):
        return [message for item in detail for message in _flatten(item)]
    if isinstance(detail, dict):
        return [f"{key}: {message}" for key, value in detail.items() for message in _flatten(value)]
    return [str(detail)]


def api_exception_handler(exc, context):
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database restarting or failing over is an outage, not a bug: say so, and
        # when to retry (every write is atomic, and submits are idempotent on client_id).
        logger.warning("Database unavailable during %s: %s", context.get("request") and context["request"].path, exc)
        body = {
            "detail": "The database is unavailable right now. Try again in a few seconds.",
            "code": "database_unavailable",
            "fields": {},
        }
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(DATABASE_RETRY_AFTER)})
    if isinstance(exc, DomainError):
        body = {"detail": exc.message, "code": exc.code, "fields": exc.fields, **exc.extra}
        return Response(body, status=exc.status_code)

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        fields = {name: _flatten(messages) for name, messages in exc.detail.items()}
        first_field, first_messages = next(iter(fields.items()), ("", [""]))
        sentence = f"{first_field}: {first_messages[0]}" if first_field != "non_field_errors" else first_messages[0]
        response.data = {"detail": sentence, "code": "invalid", "fields": fields}
    elif isinstance(exc, exceptions.ValidationError):
        messages = _flatten(exc.detail)
        response.data = {"detail": messages[0] if messages else "Invalid input.", "code": "invalid", "fields": {}}
    else:
        detail = getattr(exc, "detail", str(exc))
        code = detail.code if hasattr(detail, "code") else "error"
        response.data = {"detail": str(detail), "code": code, "fields": {}}
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        response.data["code"] = "not_authenticated"
    return response
