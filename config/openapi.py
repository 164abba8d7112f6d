"""drf-spectacular hooks: document the API's one error shape on every operation.

Views declare their success responses (and, where a sentence helps, an error); the error
responses every operation can give come from here, all pointing at one ``Error``
component, so a client (and tests/test_api_fuzz.py) can rely on them.
"""

ERROR_COMPONENT = {
    "type": "object",
    "description": "Every error body (config.api_errors).",
    "properties": {
        "detail": {"type": "string", "description": "A sentence a person can act on."},
        "code": {"type": "string", "description": "A stable slug, e.g. invalid, not_found, conflict."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Messages per request field; empty when the error is not about one field.",
        },
        "errors": {
            "type": "array",
            "description": "Imports only: the first bad lines.",
            "items": {
                "type": "object",
                "properties": {
                    "line": {"type": "integer"},
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                },
                "required": ["line", "field", "message"],
            },
        },
        "error_count": {"type": "integer", "description": "Imports only: how many problems in all."},
        "retry_after_seconds": {"type": "integer", "description": "Sign-in lockouts only: seconds until it ends."},
    },
    "required": ["detail", "code", "fields"],
}

ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}

# Any operation: a malformed request (query or body), no or a bad token, not allowed
# (role, CSRF), the sign-in lockout or a throttle, the database unavailable.
COMMON = {
    "400": "The request is invalid; `fields` names the fields.",
    "401": "No valid credentials.",
    "403": "Signed in, but not allowed to do this.",
    "429": "Too many requests (or too many failed sign-ins).",
    "503": "The database is unavailable; retry after the Retry-After header.",
}
WITH_ID = {"404": "No such object, or not visible to you."}
# Writes: services raise ConflictError (expired lease, run in progress); bodies have a size limit.
WRITES = {
    "409": "Valid, but it clashes with the current state.",
    "413": "The request body is too large.",
    "415": "Unsupported request content type.",
}


def add_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the error responses without replacing declared ones.

    A response a view declares keeps its description; it only gets the Error body if it
    declared none.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_COMPONENT
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            errors = dict(COMMON)
            if "{" in path:
                errors.update(WITH_ID)
            if method in ("post", "put", "patch", "delete"):
                errors.update(WRITES)
            responses = operation.setdefault("responses", {})
            for status_code, description in errors.items():
                responses.setdefault(status_code, {"description": description})
            for status_code, response in responses.items():
                if status_code.startswith(("4", "5")) and "content" not in response:
                    response["content"] = ERROR_CONTENT
    return result
