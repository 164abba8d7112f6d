"""Full-fidelity export of what annotators did: every label and every skip, one row each.

Rows are produced lazily from ``.iterator(chunk_size=...)`` querysets and encoded one
line at a time, so memory stays flat however many labels a project holds. Each chunk
costs a fixed number of queries (the rows, then the model names of the responses they
show), never one per row. The one exception is ``agreement_below``: the ids of the items
it keeps are computed first and held as a set (one integer per disagreeing item).

Annotators appear under a pseudonym, an HMAC of their user id keyed by SECRET_KEY: stable
across exports of one deployment (so rows of one person can be grouped), not reversible
without the key, and never the username.
"""
import csv
import hashlib
import hmac
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from annotation.agreement import item_ids_below_agreement
from annotation.models import Assignment, Label, Project, Response
from config.errors import DomainError

CHUNK_SIZE = 500

JSONL_CONTENT_TYPE = "application/x-ndjson"  # one JSON document per line (JSON Lines / NDJSON)
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
FORMATS = ("jsonl", "csv")

# CSV columns, in order; JSONL rows carry the same keys. Label-only columns are empty on skip rows.
LABEL_COLUMNS = [
    "kind", "id", "item_id", "prompt_external_id", "annotator", "display_order", "display_models",
    "choice", "ranking", "is_tie", "both_bad", "strength", "ratings", "flags", "rationale",
    "seconds_spent", "skip_reason", "created_at",
    # A reviewer's decision (unreviewed, accepted, rejected, corrected) and the correction: a
    # rejected label is out of training and the pairs export, but a full-fidelity export keeps it.
    "review_status", "corrected_ranking",
]


def annotator_pseudonym(user_id: int) -> str:
    """A stable, keyed, one-way id for an annotator (16 hex characters)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"annotator:{user_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class LabelFilters:
    """Which rows to export: created (labels) or finished (skips) in [since, until), by these annotators,
    on items whose annotators agree less often than ``agreement_below``.

    The same filters choose the labels that preference pairs are built from.
    """

    since: datetime | None = None
    until: datetime | None = None
    annotator_ids: frozenset[int] | None = None
    # Keep only items with two or more labels (not "both bad") whose agreement rate
    # (``annotation.agreement.agreement_rate``, over all the item's labels) is below this; in (0, 1].
    agreement_below: float | None = None

    @classmethod
    def from_params(cls, params) -> "LabelFilters":
        """Parse query parameters; a DomainError (400) names each bad one."""
        errors = {}
        bounds = {}
        for name in ("since", "until"):
            raw = (params.get(name) or "").strip()
            if not raw:
                bounds[name] = None
                continue
            try:
                value = parse_datetime(raw)
            except ValueError:
                value = None
            if value is None:
                errors[name] = ["Not an ISO 8601 datetime, e.g. 2026-01-31T12:00:00Z."]
                continue
            # A bound without an offset is read in the server's time zone, not left naive; every
            # bound goes to the database in UTC (PostgreSQL refuses offsets beyond +-15:59).
            try:
                aware = timezone.make_aware(value) if timezone.is_naive(value) else value
                bounds[name] = aware.astimezone(UTC)
            except (OverflowError, ValueError):
                errors[name] = ["Out of range."]
        annotator_ids = None
        raw = (params.get("annotators") or "").strip()
        if raw:
            try:
                annotator_ids = frozenset(int(part) for part in raw.split(",") if part.strip())
            except ValueError:
                errors["annotators"] = ["A comma-separated list of user ids, e.g. 1,2."]
            else:
                # No id is this big; SQLite (the embedded default) cannot even bind one (it was a 500).
                if any(not 0 < annotator_id < 2**63 for annotator_id in annotator_ids):
                    errors["annotators"] = ["User ids are positive integers below 2**63."]
        try:
            agreement_below = agreement_threshold(params.get("agreement_below"))
        except ValueError as exc:
            agreement_below = None
            errors["agreement_below"] = [str(exc)]
        if not errors and bounds["since"] and bounds["until"] and bounds["since"] >= bounds["until"]:
            errors["until"] = ["Must be after since."]
        if errors:
            raise DomainError("Invalid export filters.", fields=errors)
        return cls(since=bounds["since"], until=bounds["until"], annotator_ids=annotator_ids,
                   agreement_below=agreement_below)

    def labels(self, rows: QuerySet, *, time_field: str = "created_at") -> QuerySet:
        """Labels (or skips, timed by ``finished_at``) narrowed by time and annotator.

        The agreement filter is ``item_ids``.
        """
        if self.since:
            rows = rows.filter(**{f"{time_field}__gte": self.since})
        if self.until:
            rows = rows.filter(**{f"{time_field}__lt": self.until})
        if self.annotator_ids is not None:
            rows = rows.filter(annotator_id__in=self.annotator_ids)
        return rows

    def item_ids(self, project: Project) -> set[int] | None:
        """The items ``agreement_below`` keeps, or None when it is not set (every item).

        Callers test rows against the set in Python rather than send it to the database:
        it can be larger than a query's parameter limit.
        """
        if self.agreement_below is None:
            return None
        return item_ids_below_agreement(project_id=project.id, threshold=self.agreement_below)


def agreement_threshold(raw: str | None) -> float | None:
    """An ``agreement_below`` parameter: a number in (0, 1], or None when empty; ValueError (its
    message fit for the field) otherwise, NaN and infinities included."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        threshold = float(raw)
    except ValueError:
        threshold = math.nan
    if not 0 < threshold <= 1:  # NaN fails this too
        raise ValueError("A number in (0, 1], e.g. 0.75.")
    return threshold


def export_format_check(export_format: str, allowed=FORMATS) -> str:
    if export_format not in allowed:
        raise DomainError(
            f"Unknown format {export_format!r}; use one of {', '.join(allowed)}.",
            fields={"format": [f"one of {', '.join(allowed)}"]},
        )
    return export_format


def chunked(rows: Iterable, size: int) -> Iterator[list]:
    """``rows`` in lists of ``size`` (the last one shorter), read lazily."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def _model_names(chunk: list) -> dict[int, str]:
    """Model name of every response the chunk's rows show, in one query."""
    ids = {response_id for row in chunk for response_id in row["display_order"]}
    return dict(Response.objects.filter(id__in=ids).values_list("id", "model_name"))


def _pairwise_choice(label: dict) -> str | None:
    """The client's pairwise choice (``Label.Choice``) back from a label row's stored ranking; None for rankings of 3+."""
    if label["both_bad"]:
        return Label.Choice.BOTH_BAD.value
    if label["is_tie"]:
        return Label.Choice.TIE.value
    display_order, ranking = label["display_order"], label["ranking"]
    if len(display_order) != 2 or len(ranking) != 2:
        return None
    return Assignment.Position.A.value if ranking[0][0] == display_order[0] else Assignment.Position.B.value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _label_querysets(project: Project, filters: LabelFilters) -> tuple[QuerySet, QuerySet]:
    """The labels and the skips ``filters`` selects by time and annotator, oldest first."""
    labels = filters.labels(Label.objects.filter(item__project=project)).order_by("id")
    skips = filters.labels(
        Assignment.objects.filter(item__project=project, status=Assignment.Status.SKIPPED), time_field="finished_at"
    ).order_by("id")
    return labels, skips


def label_row_count(project: Project, filters: LabelFilters = LabelFilters()) -> int | None:
    """How many rows ``label_rows`` gives, in two counting queries; None under ``agreement_below`` (no cheap count)."""
    if filters.agreement_below is not None:
        return None
    labels, skips = _label_querysets(project, filters)
    return labels.count() + skips.count()


def label_rows(project: Project, filters: LabelFilters = LabelFilters()) -> Iterator[dict]:
    """Every label of ``project`` (oldest first), then every skip, as flat JSON-ready dicts."""
    labels, skips = _label_querysets(project, filters)
    keep = filters.item_ids(project)
    # Plain dicts from .values(): building three model instances per row cost two thirds of the time.
    labels = labels.values(
        "id", "item_id", "item__prompt__external_id", "annotator_id", "ranking", "is_tie", "both_bad", "strength",
        "ratings", "flags", "rationale", "seconds_spent", "display_order", "created_at", "review_status",
        "corrected_ranking",
    )
    skips = skips.values(
        "id", "item_id", "item__prompt__external_id", "annotator_id", "display_order", "skip_reason", "finished_at",
    )
    labels = labels.iterator(chunk_size=CHUNK_SIZE)
    skips = skips.iterator(chunk_size=CHUNK_SIZE)
    if keep is not None:
        labels = (label for label in labels if label["item_id"] in keep)
        skips = (skip for skip in skips if skip["item_id"] in keep)
    pseudonyms = {}

    def pseudonym(user_id: int) -> str:
        if user_id not in pseudonyms:
            pseudonyms[user_id] = annotator_pseudonym(user_id)
        return pseudonyms[user_id]

    for chunk in chunked(labels, CHUNK_SIZE):
        names = _model_names(chunk)
        for label in chunk:
            yield {
                "kind": "label",
                "id": label["id"],
                "item_id": label["item_id"],
                "prompt_external_id": label["item__prompt__external_id"],
                "annotator": pseudonym(label["annotator_id"]),
                "display_order": label["display_order"],
                "display_models": [names.get(response_id, "") for response_id in label["display_order"]],
                "choice": _pairwise_choice(label),
                "ranking": label["ranking"],
                "is_tie": label["is_tie"],
                "both_bad": label["both_bad"],
                "strength": label["strength"],
                "ratings": label["ratings"],
                "flags": label["flags"],
                "rationale": label["rationale"],
                "seconds_spent": label["seconds_spent"],
                "skip_reason": None,
                "created_at": _iso(label["created_at"]),
                "review_status": label["review_status"],
                "corrected_ranking": label["corrected_ranking"],
            }
    for chunk in chunked(skips, CHUNK_SIZE):
        names = _model_names(chunk)
        for skip in chunk:
            yield {
                **dict.fromkeys(LABEL_COLUMNS),
                "kind": "skip",
                "id": skip["id"],
                "item_id": skip["item_id"],
                "prompt_external_id": skip["item__prompt__external_id"],
                "annotator": pseudonym(skip["annotator_id"]),
                "display_order": skip["display_order"],
                "display_models": [names.get(response_id, "") for response_id in skip["display_order"]],
                "skip_reason": skip["skip_reason"],
                "created_at": _iso(skip["finished_at"]),
            }


def jsonl_lines(rows: Iterable[dict]) -> Iterator[str]:
    """One compact JSON document per row, newline-terminated (UTF-8 text, not ASCII-escaped)."""
    for row in rows:
        yield json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_lines(rows: Iterable[dict], columns: list[str]) -> Iterator[str]:
    """A header, then one CSV record per row; lists and dicts become JSON strings, None an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(columns)
    for row in rows:
        yield line([_cell(row.get(column)) for column in columns])


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def label_export_lines(project: Project, *, export_format: str, filters: LabelFilters = LabelFilters()) -> Iterator[str]:
    rows = label_rows(project, filters)
    return jsonl_lines(rows) if export_format == "jsonl" else csv_lines(rows, LABEL_COLUMNS)
