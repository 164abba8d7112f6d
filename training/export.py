"""Exports for trainers and auditors: preference pairs, labels, reward scores, and the model leaderboard.

Pairs come from ``training.pairs.iter_pair_records``, the very code a training run freezes
its snapshot from (``project_pair_records`` sorts the same records), with a ``PairSpec``
built from the project's training policy the same way (``pair_spec_for``): what you export
is what the platform would train on now. They stream item by item (ascending item id; a
snapshot is ordered by label id instead), so memory stays flat. The label filters
(``LabelFilters``: since, until, annotators, agreement_below) choose the labels the pairs
are built from. Labels and scores stream from chunked querysets; the leaderboard is one
row per model from ``training.leaderboard.leaderboard_for``, the function the API uses.

Pair line formats
- plain pairs: ``{"prompt": str, "chosen": str, "rejected": str, ...}`` (TRL's "standard"
  preference format); a single-message prompt is that message's text, a longer one each
  message as ``"role: content"``, separated by blank lines.
- conversational pairs: ``prompt`` the conversation as ``[{"role", "content"}]`` and
  ``chosen``/``rejected`` one-message assistant lists (TRL's "conversational" format, which
  RewardTrainer and DPOTrainer apply the tokenizer's chat template to).
Both also carry ``chosen_id``/``rejected_id`` (response ids), ``item_id``, ``prompt_id``,
``external_id``, ``margin``, ``strength``, ``tie``, ``confidence``, ``votes`` (labels
preferring chosen; 1 under per-label aggregation), ``votes_total`` (labels that compared
the two responses, either way or tied) and ``label_id`` (the newest label behind the pair).
As Parquet (``format=parquet``) the same columns are written in row groups of
``PARQUET_ROW_GROUP`` rows to a file; message lists are ``list<struct<role, content>>``.
"""
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import BinaryIO

from annotation.export import (
    CSV_CONTENT_TYPE,
    FORMATS,
    JSONL_CONTENT_TYPE,
    LABEL_COLUMNS,
    LabelFilters,
    chunked,
    csv_lines,
    export_format_check,
    jsonl_lines,
    label_row_count,
    label_rows,
)
from annotation.models import Project, Prompt, Response
from config.errors import ConflictError, DomainError, NotFoundError
from training import selectors
from training.leaderboard import leaderboard_for
from training.models import ModelVersion
from training.pairs import PairSpec, iter_pair_records

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
PARQUET_ROW_GROUP = 5000
PAIR_STYLES = ("plain", "conversational")
KINDS = ("pairs", "labels", "scores", "leaderboard")
KIND_FORMATS = {"pairs": ("jsonl", "parquet"), "labels": FORMATS, "scores": FORMATS, "leaderboard": FORMATS}
CONTENT_TYPES = {"jsonl": JSONL_CONTENT_TYPE, "csv": CSV_CONTENT_TYPE, "parquet": PARQUET_CONTENT_TYPE}
SCORE_COLUMNS = ["response_id", "prompt_external_id", "model_name", "score"]
LEADERBOARD_COLUMNS = [
    "model", "rating", "rating_ci_low", "rating_ci_high", "comparisons", "wins", "losses", "ties",
    "mean_reward", "mean_reward_ci_low", "mean_reward_ci_high", "scored_responses", "champion_version",
]


def pair_spec_for(project: Project, *, ties: bool | None = None) -> PairSpec:
    """The spec a training run of ``project`` would use now (as ``training.pipeline``), ties optionally overridden."""
    policy = selectors.training_policy_for(project)
    return PairSpec(
        aggregation=policy.aggregation,
        train_on_ties=policy.train_on_ties if ties is None else ties,
        excluded_annotator_ids=frozenset(policy.excluded_annotators.values_list("id", flat=True)) if policy.pk else frozenset(),
    )


def prompt_text(conversation: list[dict]) -> str:
    if len(conversation) == 1:
        return conversation[0]["content"]
    return "\n\n".join(f"{message['role']}: {message['content']}" for message in conversation)


def pair_rows(
    project: Project, *, style: str = "plain", ties: bool | None = None, filters: LabelFilters = LabelFilters()
) -> Iterator[dict]:
    """One row per training pair, in item order (see the module docstring for the two styles).

    Prompt external ids are looked up per chunk of pairs: one query each, never per row.
    """
    records = iter_pair_records(project, pair_spec_for(project, ties=ties), filters=filters)
    for chunk in chunked(records, 500):
        prompt_ids = {int(record["prompt_id"]) for record in chunk}
        external_ids = dict(Prompt.objects.filter(id__in=prompt_ids).values_list("id", "external_id"))
        for record in chunk:
            context = record["context"]
            if style == "conversational":
                shaped = {
                    "prompt": context,
                    "chosen": [{"role": "assistant", "content": record["chosen"]}],
                    "rejected": [{"role": "assistant", "content": record["rejected"]}],
                }
            else:
                shaped = {"prompt": prompt_text(context), "chosen": record["chosen"], "rejected": record["rejected"]}
            yield {
                **shaped,
                "chosen_id": record["chosen_id"],
                "rejected_id": record["rejected_id"],
                "item_id": record["item_id"],
                "prompt_id": record["prompt_id"],
                "external_id": external_ids.get(int(record["prompt_id"])),
                "margin": record["margin"],
                "strength": record["strength"],
                "tie": record["tie"],
                "confidence": record["confidence"],
                "votes": record["votes"],
                "votes_total": record["votes_total"],
                "label_id": record["label_id"],
            }


def pair_parquet_schema(style: str):
    """The Arrow schema of ``pair_rows`` in ``style``: the columns of a JSONL line, typed."""
    import pyarrow as pa  # only exports to Parquet pay for the import

    if style == "conversational":
        messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
        texts = [("prompt", messages), ("chosen", messages), ("rejected", messages)]
    else:
        texts = [("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string())]
    return pa.schema([
        *texts,
        ("chosen_id", pa.int64()),
        ("rejected_id", pa.int64()),
        ("item_id", pa.int64()),
        ("prompt_id", pa.string()),
        ("external_id", pa.string()),
        ("margin", pa.float64()),
        ("strength", pa.int64()),
        ("tie", pa.bool_()),
        ("confidence", pa.float64()),
        ("votes", pa.int64()),
        ("votes_total", pa.int64()),
        ("label_id", pa.int64()),
    ])


def write_parquet(rows: Iterable[dict], schema, handle: BinaryIO, *, row_group: int = PARQUET_ROW_GROUP) -> None:
    """Write ``rows`` to ``handle`` as Parquet, ``row_group`` rows at a time: memory holds one group.

    No rows still make a valid file (the schema and no row groups). ``handle`` stays open.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetWriter(handle, schema) as writer:
        for chunk in chunked(rows, row_group):
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema), row_group_size=row_group)


def model_version_for_scores(project: Project, version_number: int | None) -> ModelVersion:
    """Version ``version_number`` of the project, or the one whose scores the Results page shows
    (``scores_version_for``: the champion once it has scored everything); NotFoundError if there is none."""
    if version_number is None:
        version = selectors.scores_version_for(project)
        if version is None:
            raise NotFoundError("The project has no champion model yet; pass ?version=N.")
        return version
    version = selectors.model_versions_for(project).filter(version=version_number).first()
    if version is None:
        raise NotFoundError(f"The project has no model version {version_number}.")
    return version


def score_columns(version: ModelVersion) -> list[str]:
    """SCORE_COLUMNS, then ``score_<criterion>`` for each per-criterion head of ``version``."""
    return SCORE_COLUMNS + [f"score_{key}" for key in selectors.version_criteria(version)]


def score_rows(project: Project, version: ModelVersion) -> Iterator[dict]:
    """Every response of the project with its reward under ``version`` (None if not scored yet), and
    each per-criterion head's as ``score_<criterion>``. One query per chunk."""
    criteria = selectors.version_criteria(version)
    responses = selectors.responses_with_scores(project, version).only("id", "model_name", "prompt__external_id")
    for response in responses.iterator(chunk_size=2000):
        by_criterion = response.criterion_scores or {}
        yield {
            "response_id": response.id,
            "prompt_external_id": response.prompt.external_id,
            "model_name": response.model_name,
            "score": response.score,
            **{f"score_{key}": by_criterion.get(key) for key in criteria},
        }


def leaderboard_rows(project: Project) -> list[dict]:
    """One row per model from ``leaderboard_for`` (the API's board, default bootstrap), intervals split in two columns."""
    board = leaderboard_for(project)
    return [
        {
            "model": row["model"],
            "rating": row["rating"],
            "rating_ci_low": row["rating_ci"][0] if row["rating_ci"] else None,
            "rating_ci_high": row["rating_ci"][1] if row["rating_ci"] else None,
            "comparisons": row["comparisons"],
            "wins": row["wins"],
            "losses": row["losses"],
            "ties": row["ties"],
            "mean_reward": row["mean_reward"],
            "mean_reward_ci_low": row["mean_reward_ci"][0] if row["mean_reward_ci"] else None,
            "mean_reward_ci_high": row["mean_reward_ci"][1] if row["mean_reward_ci"] else None,
            "scored_responses": row["scored_responses"],
            "champion_version": board["champion_version"],
        }
        for row in board["models"]
    ]


@dataclass(frozen=True)
class ExportRequest:
    """One export, as the API and ``manage.py export_labels`` both ask for it."""

    kind: str
    export_format: str = "jsonl"
    style: str = "plain"
    ties: bool | None = None
    version: int | None = None
    filters: LabelFilters = LabelFilters()


@dataclass(frozen=True)
class Export:
    """A validated export: its rows (lazy) and how to encode them.

    ``rows`` may be replaced (``dataclasses.replace``) by a wrapper that counts them; the
    encoders read ``self.rows``. ``count`` returns the number of rows where a cheap count
    exists (a query or two), else None.
    """

    rows: Iterator[dict]
    export_format: str
    filename: str
    columns: list[str] | None = None  # CSV header
    parquet_schema: Callable[[], object] | None = None
    count: Callable[[], int | None] = field(default=lambda: None)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.export_format]

    def lines(self) -> Iterator[str]:
        """The rows as JSON Lines or CSV text, one line at a time."""
        if self.export_format == "csv":
            return csv_lines(self.rows, self.columns)
        return jsonl_lines(self.rows)

    def write_parquet(self, handle: BinaryIO) -> None:
        write_parquet(self.rows, self.parquet_schema(), handle)

    def parquet_file(self) -> BinaryIO:
        """The rows written to an anonymous temporary file (gone once closed), positioned at its start."""
        handle = tempfile.TemporaryFile(suffix=".parquet")  # noqa: SIM115 - the caller closes it
        try:
            self.write_parquet(handle)
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        return handle


def _choice(name: str, value: str, allowed) -> str:
    if value not in allowed:
        raise DomainError(f"Unknown {name} {value!r}; use one of {', '.join(allowed)}.",
                          fields={name: [f"one of {', '.join(allowed)}"]})
    return value


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "project"


def project_export(project: Project, request: ExportRequest) -> Export:
    """Validate ``request`` and return its rows (lazy) with a format and a file name.

    Everything that can fail (bad options, a missing version) fails here, before the
    first row, so an API caller gets the error shape rather than a truncated file.
    """
    _choice("kind", request.kind, KINDS)
    export_format = export_format_check(request.export_format, KIND_FORMATS[request.kind])
    base = f"{_slug(project.name)}-{request.kind}"
    if request.kind == "pairs":
        _choice("style", request.style, PAIR_STYLES)
        rows = pair_rows(project, style=request.style, ties=request.ties, filters=request.filters)
        suffix = "-conversational" if request.style == "conversational" else ""
        return Export(rows, export_format, f"{base}{suffix}.{export_format}",
                      parquet_schema=partial(pair_parquet_schema, request.style))
    if request.kind == "labels":
        return Export(label_rows(project, request.filters), export_format, f"{base}.{export_format}",
                      columns=LABEL_COLUMNS, count=partial(label_row_count, project, request.filters))
    if request.kind == "leaderboard":
        board = leaderboard_rows(project)
        return Export(iter(board), export_format, f"{base}.{export_format}", columns=LEADERBOARD_COLUMNS,
                      count=board.__len__)
    version = model_version_for_scores(project, request.version)
    return Export(score_rows(project, version), export_format, f"{base}-v{version.version}.{export_format}",
                  columns=score_columns(version), count=Response.objects.filter(prompt__project=project).count)


def model_version_snapshot(version: ModelVersion) -> Path:
    """The frozen snapshot file ``version`` was trained on, checked against its recorded SHA-256.

    NotFoundError when none was recorded or the file is gone; ConflictError when its bytes no
    longer hash to the recorded value (it would not be the data the model saw). Hashing reads
    the file in blocks, so memory stays flat.
    """
    run = version.training_run
    path = Path(run.snapshot_path) if run.snapshot_path else None
    if path is None or not path.is_file():
        raise NotFoundError(f"The training snapshot of model version {version.version} is no longer available.")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != run.snapshot_sha256:
        raise ConflictError(f"The training snapshot of model version {version.version} was modified since training.")
    return path


def snapshot_filename(version: ModelVersion) -> str:
    return f"{_slug(version.project.name)}-v{version.version}-snapshot-{version.training_run.snapshot_sha256[:12]}.jsonl"
