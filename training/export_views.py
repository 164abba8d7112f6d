"""Download endpoints for project admins: pairs, labels, scores, the leaderboard, and training snapshots.

Adapters only: parse the query, check access, ask ``training.export`` for the rows, send
them: streamed as JSON Lines or CSV, or as a finished Parquet file. Every check runs before
the response starts, so errors keep the API's one shape.
"""
from django.http import FileResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.export import JSONL_CONTENT_TYPE, LabelFilters
from annotation.selectors import project_get_for_admin
from config.errors import DomainError
from training import selectors
from training.export import (
    PARQUET_CONTENT_TYPE,
    ExportRequest,
    model_version_snapshot,
    project_export,
    snapshot_filename,
)

JSONL_MEDIA = JSONL_CONTENT_TYPE
CSV_MEDIA = "text/csv"
PARQUET_MEDIA = PARQUET_CONTENT_TYPE


class IgnoreFormatParameter(DefaultContentNegotiation):
    """``?format=`` names the file format here, not a DRF renderer: errors always render as JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _int_param(params, name: str) -> int | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise DomainError(f"{name} must be a positive whole number.", fields={name: ["a positive whole number"]})
    return int(raw)


def _bool_param(params, name: str) -> bool | None:
    raw = (params.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in ("0", "1", "true", "false"):
        raise DomainError(f"{name} must be 1 or 0.", fields={name: ["1 or 0"]})
    return raw in ("1", "true")


class ExportCheckSerializer(serializers.Serializer):
    filename = serializers.CharField(help_text="The name the file will be sent under.")
    content_type = serializers.CharField()


def _send(project, request: ExportRequest, params):
    """The export as a download: text formats streamed line by line, Parquet written to a temporary file first.

    With ``check=1``, only what every export checks before its first row (filters, format,
    version), answered as JSON: the Results page's Export dialog asks this first, so it can show
    a refusal in the dialog and then let the browser fetch and save the file itself, which
    streams it to disk (reading the body in the page would hold the whole file in memory).
    """
    export = project_export(project, request)
    if _bool_param(params, "check"):
        return Response(ExportCheckSerializer({"filename": export.filename, "content_type": export.content_type}).data)
    if export.export_format == "parquet":
        return FileResponse(export.parquet_file(), as_attachment=True, filename=export.filename,
                            content_type=export.content_type)
    response = StreamingHttpResponse((line.encode() for line in export.lines()), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


FORMAT_PARAM = OpenApiParameter("format", str, enum=["jsonl", "csv"], default="jsonl", description="File format.")
CHECK_PARAM = OpenApiParameter(
    "check", str, enum=["1", "0"],
    description="1: only check the request (filters, format, version) and answer {filename, content_type} as JSON, "
                "without building the file; a refusal is the same 400 or 404 the download would get.",
)
FILTER_PARAMS = [
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Only labels (and skips) at or after this time."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Only labels (and skips) before this time."),
    OpenApiParameter("annotators", str, description="Only these annotators' labels: comma-separated user ids, e.g. 1,2."),
    OpenApiParameter(
        "agreement_below", float,
        description="Only items with two or more labels (not 'both bad') whose inter-annotator agreement rate is "
                    "below this number, in (0, 1]: the items annotators disagree on.",
    ),
]
BINARY_JSONL_OR_CSV = {
    (200, JSONL_MEDIA): OpenApiTypes.BINARY, (200, CSV_MEDIA): OpenApiTypes.BINARY,
    (200, "application/json"): ExportCheckSerializer,
}
BINARY_JSONL_OR_PARQUET = {
    (200, JSONL_MEDIA): OpenApiTypes.BINARY, (200, PARQUET_MEDIA): OpenApiTypes.BINARY,
    (200, "application/json"): ExportCheckSerializer,
}


class ExportViewBase(APIView):
    content_negotiation_class = IgnoreFormatParameter


class PairsExportView(ExportViewBase):
    @extend_schema(
        summary="Preference pairs as training would see them (JSON Lines or Parquet, TRL formats)",
        parameters=[
            OpenApiParameter("format", str, enum=["jsonl", "parquet"], default="jsonl", description="File format."),
            OpenApiParameter("style", str, enum=["plain", "conversational"], default="plain",
                             description="Plain text, or TRL's conversational message lists."),
            OpenApiParameter("ties", str, enum=["0", "1"],
                             description="Include tied pairs (default: the project's training policy)."),
            *FILTER_PARAMS,
            CHECK_PARAM,
        ],
        responses=BINARY_JSONL_OR_PARQUET,
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        params = request.query_params
        return _send(project, ExportRequest(
            kind="pairs", export_format=params.get("format", "jsonl"), style=params.get("style", "plain"),
            ties=_bool_param(params, "ties"), filters=LabelFilters.from_params(params),
        ), params)


class LabelsExportView(ExportViewBase):
    @extend_schema(
        summary="Every label and skip, annotators pseudonymised (JSON Lines or CSV)",
        parameters=[FORMAT_PARAM, *FILTER_PARAMS, CHECK_PARAM],
        responses=BINARY_JSONL_OR_CSV,
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        params = request.query_params
        return _send(project, ExportRequest(
            kind="labels", export_format=params.get("format", "jsonl"), filters=LabelFilters.from_params(params),
        ), params)


class ScoresExportView(ExportViewBase):
    @extend_schema(
        summary="Every response's reward under a model version (default: the champion)",
        parameters=[FORMAT_PARAM, OpenApiParameter("version", int, description="Model version number."), CHECK_PARAM],
        responses=BINARY_JSONL_OR_CSV,
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        params = request.query_params
        return _send(project, ExportRequest(
            kind="scores", export_format=params.get("format", "jsonl"), version=_int_param(params, "version"),
        ), params)


class LeaderboardExportView(ExportViewBase):
    @extend_schema(
        summary="The model leaderboard, one row per model: rating with interval, comparisons, wins/losses/ties, "
                "mean reward with interval",
        parameters=[FORMAT_PARAM, CHECK_PARAM],
        responses=BINARY_JSONL_OR_CSV,
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        params = request.query_params
        return _send(project, ExportRequest(kind="leaderboard", export_format=params.get("format", "jsonl")), params)


class ModelVersionSnapshotView(ExportViewBase):
    @extend_schema(
        summary="The frozen dataset file this model version was trained on",
        responses={(200, JSONL_MEDIA): OpenApiTypes.BINARY, 409: None},
    )
    def get(self, request, version_id: int):
        version = selectors.model_version_get_for_admin(user=request.user, version_id=version_id)
        path = model_version_snapshot(version)
        response = FileResponse(path.open("rb"), as_attachment=True, filename=snapshot_filename(version),
                                content_type=JSONL_CONTENT_TYPE)
        response["X-Content-SHA256"] = version.training_run.snapshot_sha256
        return response
