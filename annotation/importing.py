"""Parsing and validating a JSONL import before anything touches the database.

One line is one prompt with its responses::

    {"external_id": "p-1",
     "conversation": [{"role": "user", "content": "..."}],   # or "prompt": "..."
     "metadata": {...},                                       # optional
     "responses": [{"text": "...", "model": "name", "metadata": {...}}, ...],
     "gold": [1, 0]}                                          # optional: a gold item's answer (annotation.gold)

Every line is checked and its problems counted, so a user fixes a file in one round;
the report lists the first MAX_ERRORS_REPORTED. Anything PostgreSQL could not store
(NUL, lone surrogates, NaN, over-long names, very deep metadata) is a line error here,
never a database error later. ``annotation.services.project_import_jsonl`` writes only
a file with none.
"""
import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from annotation.models import Assignment, Prompt, Response
from config.errors import DomainError

ROLES = ("system", "user", "assistant")
# One response per position letter the annotator's client can show.
MAX_RESPONSES_PER_PROMPT = len(Assignment.Position)
# The report lists the first problems and counts the rest, so a file of garbage gets a
# short answer (and the parser keeps no prompts once one line is bad).
MAX_ERRORS_REPORTED = 50
# Messages and field paths can quote user input; cut them so the report stays small.
MAX_MESSAGE_CHARS = 300
# Metadata is stored in JSON columns; bound its nesting well below Python's recursion limit.
MAX_METADATA_DEPTH = 32
MAX_EXTERNAL_ID_CHARS = Prompt._meta.get_field("external_id").max_length
MAX_MODEL_NAME_CHARS = Response._meta.get_field("model_name").max_length
# Room for multipart boundaries and part headers when judging a request by its Content-Length.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __post_init__(self):
        # Frozen, so set through object.__setattr__: every error is cut to size where it is made.
        object.__setattr__(self, "field", _shorten(self.field, 100))
        object.__setattr__(self, "message", _shorten(self.message, MAX_MESSAGE_CHARS))

    def as_dict(self):
        return {"line": self.line, "field": self.field, "message": self.message}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    # A gold answer: groups of indices into ``responses``, best first (``_parse_gold``).
    gold: list[list[int]] | None = None


class ImportValidationError(DomainError):
    """The file has problems; ``errors`` names the first ones by line and field.

    ``error_count`` is how many there were in all; only the first MAX_ERRORS_REPORTED
    are listed, so the report stays small however bad the file is.
    """

    def __init__(self, source: str, errors: list[LineError], *, error_count: int | None = None):
        errors = errors[:MAX_ERRORS_REPORTED]
        error_count = max(error_count or 0, len(errors))
        first = errors[0]
        more = f" (and {error_count - 1} more problems)" if error_count > 1 else ""
        message = (
            f"{_shorten(source, 200)}, line {first.line}, field '{first.field}': {first.message}{more}. "
            "Nothing was imported."
        )
        super().__init__(
            message, extra={"errors": [error.as_dict() for error in errors], "error_count": error_count}
        )
        self.errors = errors
        self.error_count = error_count


class ImportTooLargeError(DomainError):
    """The upload is over IMPORT_MAX_UPLOAD_BYTES; nothing was read or imported."""

    status_code = 413
    code = "too_large"

    def __init__(self, *, size: int | None, limit: int):
        told = f"{size:,} bytes" if size is not None else "too large"
        super().__init__(
            f"The file is {told}; imports are limited to {limit:,} bytes. Split it into smaller files. "
            "Nothing was imported.",
            fields={"file": [f"must be at most {limit:,} bytes"]},
            extra={"errors": [], "error_count": 0},
        )


class _NonFinite:
    """Stands in for NaN, Infinity and overflowing numbers (1e400) while a line is parsed,
    so the walk over metadata can name the field; JSON columns cannot store them."""

    def __repr__(self):  # stable, for the content hash of a line without an external_id
        return "NonFinite"


_NON_FINITE = _NonFinite()


def _parse_float(text: str):
    number = float(text)
    return number if math.isfinite(number) else _NON_FINITE


# One decoder for every line: json.loads with hooks would build a new one per call.
_DECODER = json.JSONDecoder(parse_constant=lambda _name: _NON_FINITE, parse_float=_parse_float)


def _string_problem(value: str) -> str | None:
    """Why PostgreSQL could not store this string, or None."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    return None


def _check_text(value, path: str, line: int, errors: list) -> str | None:
    if not isinstance(value, str) or not value.strip():
        errors.append(LineError(line, path, "must be a non-empty string"))
        return None
    if problem := _string_problem(value):
        errors.append(LineError(line, path, problem))
        return None
    return value


def _check_json_value(value, path: str, line: int, errors: list, depth: int) -> bool:
    """Walk a metadata value; report the first thing a JSON column cannot store."""
    if depth > MAX_METADATA_DEPTH:
        errors.append(LineError(line, path, f"is nested more than {MAX_METADATA_DEPTH} levels deep"))
        return False
    if value is _NON_FINITE:
        errors.append(LineError(line, path, "must be a finite number (not NaN, Infinity or out of range)"))
        return False
    if isinstance(value, str):
        if problem := _string_problem(value):
            errors.append(LineError(line, path, problem))
            return False
        return True
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := _string_problem(key):  # JSON object keys are always strings
                errors.append(LineError(line, path, f"keys {problem}"))
                return False
            if not _check_json_value(item, f"{path}.{_shorten(key, 40)}", line, errors, depth + 1):
                return False
        return True
    if isinstance(value, list):
        for index, item in enumerate(value):
            if not _check_json_value(item, f"{path}[{index}]", line, errors, depth + 1):
                return False
    return True


def _check_metadata(value, path: str, line: int, errors: list) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(LineError(line, path, "must be a JSON object"))
        return {}
    if not _check_json_value(value, path, line, errors, depth=1):
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
        elif len(model) > MAX_MODEL_NAME_CHARS:
            errors.append(LineError(line, f"{path}.model", f"must be at most {MAX_MODEL_NAME_CHARS} characters"))
            model = ""
        elif problem := _string_problem(model):
            errors.append(LineError(line, f"{path}.model", problem))
            model = ""
        metadata = _check_metadata(item.get("metadata"), f"{path}.metadata", line, errors)
        responses.append(ParsedResponse(text=text or "", model_name=model, metadata=metadata))
    texts = [response.text for response in responses]
    if len(set(texts)) != len(texts):
        errors.append(LineError(line, "responses", "two responses have identical text"))
    return responses


def _default_external_id(record: dict, raw_line: str) -> str:
    """An id for a line that gives none: a hash of its content.

    Not the line number: two files would both start at ``line-1`` and the second could
    never be imported. Not the file name either: re-uploading the same file under another
    name would then import every prompt twice. A hash of the record (keys sorted, so
    formatting does not matter) is stable, so importing the same prompt again is still
    refused as a duplicate, and different prompts in different files never collide.
    """
    try:
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=repr)
    except RecursionError:  # parsed, but too deep to write back: hash the line as given
        canonical = ascii(raw_line.strip())
    return "sha256-" + hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def _check_external_id(record: dict, raw_line: str, line: int, errors: list) -> str | None:
    if "external_id" not in record:
        return _default_external_id(record, raw_line)
    external_id = record["external_id"]
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id) if abs(external_id) < 10**MAX_EXTERNAL_ID_CHARS else ""
    if not isinstance(external_id, str) or not external_id.strip() or len(external_id) > MAX_EXTERNAL_ID_CHARS:
        errors.append(
            LineError(line, "external_id", f"must be a non-empty string of at most {MAX_EXTERNAL_ID_CHARS} characters")
        )
        return None
    if problem := _string_problem(external_id):
        errors.append(LineError(line, "external_id", problem))
        return None
    return external_id


def _parse_line(raw_line: str | bytes, line_number: int, errors: list) -> ParsedPrompt | None:
    if isinstance(raw_line, bytes):
        try:
            raw_line = raw_line.decode("utf-8")
        except UnicodeDecodeError:
            errors.append(LineError(line_number, "(line)", "is not valid UTF-8"))
            return None
    if not raw_line.strip():
        return None
    try:
        record = _DECODER.decode(raw_line)
    except json.JSONDecodeError as exc:
        errors.append(LineError(line_number, "(line)", f"is not valid JSON: {exc.msg} at column {exc.colno}"))
        return None
    except RecursionError:
        errors.append(LineError(line_number, "(line)", "is nested too deeply to read"))
        return None
    except ValueError as exc:  # e.g. an integer with more digits than Python will convert
        errors.append(LineError(line_number, "(line)", f"is not valid JSON: {exc}"))
        return None
    if not isinstance(record, dict):
        errors.append(LineError(line_number, "(line)", "must be a JSON object"))
        return None
    external_id = _check_external_id(record, raw_line, line_number, errors)
    responses = _parse_responses(record.get("responses"), line_number, errors)
    return ParsedPrompt(
        line=line_number,
        external_id=external_id or "",
        conversation=_parse_conversation(record, line_number, errors),
        metadata=_check_metadata(record.get("metadata"), "metadata", line_number, errors),
        responses=responses,
        gold=_parse_gold(record.get("gold"), len(responses), line_number, errors),
    )


def _parse_gold(raw, response_count: int, line: int, errors: list) -> list[list[int]] | None:
    """The line's optional gold answer as groups of response indices, best first.

    ``"gold": [2, 0, 1]`` orders the responses (0-based, as listed in ``responses``), best
    first; ``"gold": [[2], [0, 1]]`` groups ties. Every response must appear exactly once.
    """
    if raw is None:
        return None
    problem = "must list every response index (0-based) once, best first, e.g. [1, 0] or [[1], [0, 2]]"
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RESPONSES_PER_PROMPT:
        errors.append(LineError(line, "gold", problem))
        return None
    groups = [entry if isinstance(entry, list) else [entry] for entry in raw]
    indices = [index for group in groups for index in group]
    if (
        any(not group for group in groups)
        or any(isinstance(index, bool) or not isinstance(index, int) for index in indices)
        or sorted(indices) != list(range(response_count))
    ):
        errors.append(LineError(line, "gold", problem))
        return None
    return groups


def item_gold_ranking(gold: list[list[int]] | None, responses: list, item_responses) -> list[list[int]] | None:
    """An item's gold answer from its line's (response ids best first), or None for an ordinary item.

    ``responses`` are the line's stored responses in file order; ``item_responses`` the ones
    the item shows. A pairwise item keeps the order of its two responses in the line's answer
    (the same group: a tie).
    """
    if gold is None:
        return None
    shown = {response.id for response in item_responses}
    ranking = [[responses[index].id for index in group if responses[index].id in shown] for group in gold]
    return [group for group in ranking if group]


def parse_jsonl(lines: Iterable[str | bytes], *, source: str = "import") -> list[ParsedPrompt]:
    """Parse every line; raise ImportValidationError listing the problems, or return the prompts.

    ``lines`` may be any iterable, an open file included, so a large upload is read a line
    at a time. Once a line is bad nothing will be imported, so later prompts are not kept:
    the rest of the file is only checked, to count its problems.
    """
    errors: list[LineError] = []
    error_count = 0
    prompts: list[ParsedPrompt] = []
    seen_ids: dict[str, int] = {}
    for line_number, raw_line in enumerate(lines, start=1):
        line_errors: list[LineError] = []
        prompt = _parse_line(raw_line, line_number, line_errors)
        if prompt is not None and prompt.external_id:
            if prompt.external_id in seen_ids:
                line_errors.insert(
                    0,
                    LineError(
                        line_number,
                        "external_id",
                        f"'{prompt.external_id}' already appears on line {seen_ids[prompt.external_id]}",
                    ),
                )
            else:
                seen_ids[prompt.external_id] = line_number
        if line_errors:
            error_count += len(line_errors)
            errors.extend(line_errors[: MAX_ERRORS_REPORTED - len(errors)])
            prompts.clear()
        elif prompt is not None and not error_count:
            prompts.append(prompt)
    if errors:
        raise ImportValidationError(source, errors, error_count=error_count)
    if not prompts:
        raise ImportValidationError(source, [LineError(1, "(file)", "contains no prompts")])
    return prompts


def import_upload_check_size(*, size: int | None, slack: int = 0) -> None:
    """Refuse an upload over IMPORT_MAX_UPLOAD_BYTES (+ ``slack``, e.g. for multipart framing) with a 413."""
    from django.conf import settings

    limit = settings.IMPORT_MAX_UPLOAD_BYTES
    if size is not None and size > limit + slack:
        raise ImportTooLargeError(size=size, limit=limit)
