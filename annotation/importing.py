"""Parsing and validating a JSONL import before anything touches the database.

One line is one prompt with its responses::

    {"external_id": "p-1",
     "conversation": [{"role": "user", "content": "..."}],   # or "prompt": "..."
     "metadata": {...},                                       # optional
     "responses": [{"text": "...", "model": "name", "metadata": {...}}, ...]}

Every line is checked and every problem collected, so a user fixes a file in one
round; ``annotation.services.project_import_jsonl`` writes only a file with none.
"""
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from annotation.models import Assignment
from config.errors import DomainError

ROLES = ("system", "user", "assistant")
# One response per position letter the annotator's client can show.
MAX_RESPONSES_PER_PROMPT = len(Assignment.Position)
MAX_ERRORS_REPORTED = 50


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def as_dict(self):
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class ParsedResponse:
    text: str
    model_name: str
    metadata: dict


@dataclass
class ParsedPrompt:
    line: int
    external_id: str
    conversation: list[dict]
    metadata: dict
    responses: list[ParsedResponse] = field(default_factory=list)


class ImportValidationError(DomainError):
    """The file has problems; ``errors`` names each one by line and field."""

    def __init__(self, source: str, errors: list[LineError]):
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        message = f"{source}, line {first.line}, field '{first.field}': {first.message}{more}. Nothing was imported."
        super().__init__(message, extra={"errors": [error.as_dict() for error in errors]})
        self.errors = errors


def _check_text(value, path: str, line: int, errors: list) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.append(LineError(line, path, "must be a non-empty string"))
        return None
    return value


def _check_metadata(value, path: str, line: int, errors: list) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(LineError(line, path, "must be a JSON object"))
        return {}
    return value


def _parse_conversation(record: dict, line: int, errors: list) -> list[dict]:
    if "conversation" in record:
        raw = record["conversation"]
        if not isinstance(raw, list) or not raw:
            errors.append(LineError(line, "conversation", "must be a non-empty list of messages"))
            return []
        conversation = []
        for index, message in enumerate(raw):
            path = f"conversation[{index}]"
            if not isinstance(message, dict):
                errors.append(LineError(line, path, "must be an object with 'role' and 'content'"))
                continue
            role = message.get("role")
            if role not in ROLES:
                errors.append(LineError(line, f"{path}.role", f"must be one of {', '.join(ROLES)}"))
            content = _check_text(message.get("content"), f"{path}.content", line, errors)
            conversation.append({"role": role, "content": content})
        if conversation and conversation[-1]["role"] != "user":
            errors.append(
                LineError(line, f"conversation[{len(raw) - 1}].role", "the last message must be from the user")
            )
        return conversation
    if "prompt" in record:
        content = _check_text(record["prompt"], "prompt", line, errors)
        return [{"role": "user", "content": content}]
    errors.append(LineError(line, "conversation", "is required (or give a 'prompt' string)"))
    return []


def _parse_responses(raw, line: int, errors: list) -> list[ParsedResponse]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_RESPONSES_PER_PROMPT:
        errors.append(
            LineError(line, "responses", f"must be a list of 2 to {MAX_RESPONSES_PER_PROMPT} responses")
        )
        return []
    responses = []
    for index, item in enumerate(raw):
        path = f"responses[{index}]"
        if not isinstance(item, dict):
            errors.append(LineError(line, path, "must be an object with 'text'"))
            continue
        text = _check_text(item.get("text"), f"{path}.text", line, errors)
        model = item.get("model", "")
        if not isinstance(model, str):
            errors.append(LineError(line, f"{path}.model", "must be a string"))
            model = ""
        metadata = _check_metadata(item.get("metadata"), f"{path}.metadata", line, errors)
        responses.append(ParsedResponse(text=text or "", model_name=model, metadata=metadata))
    texts = [response.text for response in responses]
    if len(set(texts)) != len(texts):
        errors.append(LineError(line, "responses", "two responses have identical text"))
    return responses


def parse_jsonl(lines: Iterable[str | bytes], *, source: str = "import") -> list[ParsedPrompt]:
    """Parse every line; raise ImportValidationError listing all problems, or return the prompts."""
    errors: list[LineError] = []
    prompts: list[ParsedPrompt] = []
    seen_ids: dict[str, int] = {}
    for line_number, raw_line in enumerate(lines, start=1):
        if isinstance(raw_line, bytes):
            try:
                raw_line = raw_line.decode("utf-8")
            except UnicodeDecodeError:
                errors.append(LineError(line_number, "(line)", "is not valid UTF-8"))
                continue
        if not raw_line.strip():
            continue
        try:
            record = json.loads(raw_line)
        except json.JSONDecodeError as exc:
            errors.append(LineError(line_number, "(line)", f"is not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(record, dict):
            errors.append(LineError(line_number, "(line)", "must be a JSON object"))
            continue
        external_id = record.get("external_id", f"line-{line_number}")
        if isinstance(external_id, int):
            external_id = str(external_id)
        if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > 255:
            errors.append(LineError(line_number, "external_id", "must be a non-empty string of at most 255 characters"))
        elif external_id in seen_ids:
            errors.append(
                LineError(line_number, "external_id", f"'{external_id}' already appears on line {seen_ids[external_id]}")
            )
        else:
            seen_ids[external_id] = line_number
        prompts.append(
            ParsedPrompt(
                line=line_number,
                external_id=external_id if isinstance(external_id, str) else "",
                conversation=_parse_conversation(record, line_number, errors),
                metadata=_check_metadata(record.get("metadata"), "metadata", line_number, errors),
                responses=_parse_responses(record.get("responses"), line_number, errors),
            )
        )
        if len(errors) >= MAX_ERRORS_REPORTED:
            break
    if errors:
        raise ImportValidationError(source, errors)
    if not prompts:
        raise ImportValidationError(source, [LineError(1, "(file)", "contains no prompts")])
    return prompts
