"""Domain errors raised by services and selectors.

Services know nothing about HTTP; they raise one of these with a sentence a person
can act on. ``config.api_errors`` turns them into the API's single error shape.
"""


class DomainError(Exception):
    """A request that cannot be carried out as asked. Nothing was changed."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, extra=None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra or {}


class NotFoundError(DomainError):
    status_code = 404
    code = "not_found"


class ConflictError(DomainError):
    """The request is valid but clashes with the current state (expired lease, run in progress)."""

    status_code = 409
    code = "conflict"


class PermissionDeniedError(DomainError):
    status_code = 403
    code = "permission_denied"
