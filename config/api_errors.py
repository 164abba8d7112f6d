"""One error shape for the whole API.

Every error body is ``{"detail": <sentence>, "code": <slug>, "fields": {name: [messages]}}``
(plus ``"errors"`` for imports, which list one entry per bad line).
"""
import logging

from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from config.errors import DomainError

logger = logging.getLogger(__name__)

# Seconds a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER = 5

SERVER_ERROR_BODY = {
    "detail": "Server error: something went wrong on our side. It has been logged; try again later.",
    "code": "server_error",
    "fields": {},
}


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

    if isinstance(exc, SuspiciousOperation):
        # Django's request limits (DATA_UPLOAD_MAX_NUMBER_FIELDS, _MEMORY_SIZE, _NUMBER_FILES)
        # tripped while DRF parsed the body: Django answers these 400 outside DRF, so do we.
        body = {"detail": f"The request was refused: {exc}", "code": "bad_request", "fields": {}}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)

    if isinstance(exc, RecursionError):
        # A body nested thousands deep that reached a parser other than config.parsers'
        # (a view with its own parser_classes): the client's mistake, not ours.
        body = {"detail": "The request body is nested too deeply.", "code": "parse_error", "fields": {}}
        return Response(body, status=status.HTTP_400_BAD_REQUEST)

    response = exception_handler(exc, context)
    if response is None:
        # An unexpected exception in an API view: log it with its traceback and answer in
        # the API's shape (also under DEBUG: an API client cannot read Django's debug page).
        request = context.get("request")
        logger.error(
            "Internal Server Error: %s", request.path if request is not None else "?",
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        set_rollback()
        return Response(SERVER_ERROR_BODY, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
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


def server_error(request, *args, **kwargs):
    """``handler500``: the API's error shape under /api/, Django's plain 500 page elsewhere.

    Django calls it (when DEBUG is off) for exceptions outside DRF's handling, e.g. in
    middleware; Django has already logged the traceback.
    """
    if request.path.startswith("/api/"):
        return JsonResponse(SERVER_ERROR_BODY, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return defaults.server_error(request, *args, **kwargs)


NOT_FOUND_BODY = {"detail": "Not found.", "code": "not_found", "fields": {}}


def not_found(request, exception=None):
    """``handler404``: a URL no route matches (``/api/projects/-1/``) gets the API's shape
    under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(NOT_FOUND_BODY, status=status.HTTP_404_NOT_FOUND)
    return defaults.page_not_found(request, exception)
