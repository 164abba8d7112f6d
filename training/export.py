"""Exports for trainers and auditors: preference pairs, reward scores, and the labels themselves.

Pairs come from ``training.pairs.project_pair_records``, the very function a training run
freezes its snapshot from, with a ``PairSpec`` built from the project's training policy the
same way (``pair_spec_for``): what you export is what the platform would train on now.
``project_pair_records`` returns a list (it must aggregate votes per item before the first
pair is known), so pairs cost memory proportional to the pair count; only their
serialisation is streamed. Labels and scores stream from chunked querysets.

Line formats
- plain pairs: ``{"prompt": str, "chosen": str, "rejected": str, ...}`` (TRL's "standard"
  preference format); a single-message prompt is that message's text, a longer one each
  message as ``"role: content"``, separated by blank lines.
- conversational pairs: ``prompt`` the conversation as ``[{"role", "content"}]`` and
  ``chosen``/``rejected`` one-message assistant lists (TRL's "conversational" format, which
  RewardTrainer and DPOTrainer apply the tokenizer's chat template to).
Both also carry ``margin``, ``strength``, ``tie``, ``confidence``, ``label_id`` (the newest
label behind the pair), ``prompt_id`` and ``external_id``. The pair records do not carry
response ids or the individual votes, so neither does the export.
"""
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from annotation.export import (
    CSV_CONTENT_TYPE,
    JSONL_CONTENT_TYPE,
    LabelFilters,
    csv_lines,
    export_format_check,
    jsonl_lines,
    label_export_lines,
)
from annotation.models import Project, Prompt
from config.errors import ConflictError, DomainError, NotFoundError
from training import selectors
from training.models import ModelVersion
from training.pairs import PairSpec, project_pair_records

PAIR_STYLES = ("plain", "conversational")
KINDS = ("pairs", "labels", "scores")
SCORE_COLUMNS = ["response_id", "prompt_external_id", "model_name", "score"]


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


def pair_lines(project: Project, *, style: str = "plain", ties: bool | None = None) -> Iterator[str]:
    """One JSONL line per training pair (see the module docstring for the two styles)."""
    records = project_pair_records(project, pair_spec_for(project, ties=ties))
    external_ids = dict(Prompt.objects.filter(project=project).values_list("id", "external_id"))

    def rows():
        for record in records:
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
                "margin": record["margin"],
                "strength": record["strength"],
                "tie": record["tie"],
                "confidence": record["confidence"],
                "label_id": record["label_id"],
                "prompt_id": record["prompt_id"],
                "external_id": external_ids.get(int(record["prompt_id"])),
            }

    return jsonl_lines(rows())


def model_version_for_scores(project: Project, version_number: int | None) -> ModelVersion:
    """Version ``version_number`` of the project, or its champion; NotFoundError if there is none."""
    if version_number is None:
        version = selectors.champion_for(project)
        if version is None:
            raise NotFoundError("The project has no champion model yet; pass ?version=N.")
        return version
    version = selectors.model_versions_for(project).filter(version=version_number).first()
    if version is None:
        raise NotFoundError(f"The project has no model version {version_number}.")
    return version


def score_rows(project: Project, version: ModelVersion) -> Iterator[dict]:
    """Every response of the project with its reward under ``version`` (None if not scored yet). One query per chunk."""
    responses = selectors.responses_with_scores(project, version).only("id", "model_name", "prompt__external_id")
    for response in responses.iterator(chunk_size=2000):
        yield {
            "response_id": response.id,
            "prompt_external_id": response.prompt.external_id,
            "model_name": response.model_name,
            "score": response.score,
        }


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
    lines: Iterator[str]
    content_type: str
    filename: str


def _choice(name: str, value: str, allowed) -> str:
    if value not in allowed:
        raise DomainError(f"Unknown {name} {value!r}; use one of {', '.join(allowed)}.",
                          fields={name: [f"one of {', '.join(allowed)}"]})
    return value


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "project"


def project_export(project: Project, request: ExportRequest) -> Export:
    """Validate ``request`` and return its lines (lazy) with a content type and file name.

    Everything that can fail (bad options, a missing version) fails here, before the
    first line, so an API caller gets the error shape rather than a truncated file.
    """
    _choice("kind", request.kind, KINDS)
    base = f"{_slug(project.name)}-{request.kind}"
    if request.kind == "pairs":
        export_format_check(request.export_format, ("jsonl",))
        _choice("style", request.style, PAIR_STYLES)
        lines = pair_lines(project, style=request.style, ties=request.ties)
        suffix = "-conversational" if request.style == "conversational" else ""
        return Export(lines, JSONL_CONTENT_TYPE, f"{base}{suffix}.jsonl")
    export_format_check(request.export_format)
    content_type = JSONL_CONTENT_TYPE if request.export_format == "jsonl" else CSV_CONTENT_TYPE
    if request.kind == "labels":
        lines = label_export_lines(project, export_format=request.export_format, filters=request.filters)
        return Export(lines, content_type, f"{base}.{request.export_format}")
    version = model_version_for_scores(project, request.version)
    rows = score_rows(project, version)
    lines = jsonl_lines(rows) if request.export_format == "jsonl" else csv_lines(rows, SCORE_COLUMNS)
    return Export(lines, content_type, f"{base}-v{version.version}.{request.export_format}")


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
