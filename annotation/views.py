"""API views for annotators and project admins: parse, check access, call one service, render."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import label_pages, project_selectors, selectors, services
from annotation.assignment import assignment_claim_next
from annotation.model_verdict import model_verdict_for
from annotation.models import Project
from annotation.pagination import IdCursorPagination
from annotation.quality import project_annotator_quality
from annotation.serializers import (
    AnnotatorQualitySerializer,
    ImportRecordSerializer,
    ImportSummarySerializer,
    ImportUploadSerializer,
    LabelListItemSerializer,
    LabelSerializer,
    LeaseSerializer,
    NextItemRequestSerializer,
    NextItemSerializer,
    ProjectSerializer,
    ProjectWriteSerializer,
    ReopenedSerializer,
    SkipResultSerializer,
    SkipSerializer,
    SubmitResultSerializer,
    SubmitSerializer,
)
from config.errors import DomainError, NotFoundError


def _members(data: dict, field: str) -> list | None:
    """The users a project write names in ``field`` (popped from ``data``), None when it names none.

    An unknown username is a 400 naming ``field`` (users_by_username speaks of annotators).
    """
    if field not in data:
        return None
    try:
        return selectors.users_by_username(data.pop(field))
    except DomainError as exc:
        raise DomainError(exc.message, fields={field: next(iter(exc.fields.values()), [])}) from None


class ProjectListView(APIView):
    @extend_schema(responses=ProjectSerializer(many=True), summary="Projects the user can annotate or administer")
    def get(self, request):
        projects = selectors.projects_for_user(request.user)
        if selectors.user_is_project_admin(request.user):
            projects = projects.prefetch_related("annotators", "reviewers")
        return Response(ProjectSerializer(projects, many=True, context={"request": request}).data)

    @extend_schema(request=ProjectWriteSerializer, responses={201: ProjectSerializer}, summary="Create a project (admins)")
    def post(self, request):
        selectors.require_admin(request.user)
        serializer = ProjectWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        annotators, reviewers = _members(data, "annotators") or [], _members(data, "reviewers") or []
        project = services.project_create(annotators=annotators, reviewers=reviewers, **data)
        return Response(ProjectSerializer(project, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectSerializer, summary="One project")
    def get(self, request, project_id: int):
        project = selectors.project_get_for_member(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project, context={"request": request}).data)

    @extend_schema(
        request=ProjectWriteSerializer(partial=True),
        responses=ProjectSerializer,
        summary="Change a project's settings (admins)",
        description="An archived project is read-only: it takes only a change of `status` alone (409 otherwise). "
        "The label format is fixed once items exist (409).",
    )
    def patch(self, request, project_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        serializer = ProjectWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        annotators, reviewers = _members(data, "annotators"), _members(data, "reviewers")
        project = services.project_update(project=project, annotators=annotators, reviewers=reviewers, **data)
        return Response(ProjectSerializer(project, context={"request": request}).data)


def next_item_body(*, project, annotator, exclude_ids) -> dict:
    """What next-item answers (and submit or skip, asked for ``next``): the lease and the progress after it.

    A paused project (or an archived one, which only admins still reach) leases nothing,
    not even an open lease back: ``assignment`` is null and ``paused`` true, so the client
    says "paused" rather than "all done".
    """
    paused = project.status != Project.Status.ACTIVE
    assignment = None if paused else assignment_claim_next(
        project=project, annotator=annotator, exclude_ids=exclude_ids, ordering=project.selection_order
    )
    return {
        "assignment": selectors.assignment_payload(assignment) if assignment else None,
        "progress": selectors.annotator_progress(project=project, annotator=annotator),
        "paused": paused,
    }


def progress_and_next(*, request, project, lease_next: dict | None) -> dict:
    """``progress`` for a submit or skip, and ``next`` too when the client asked for the next item.

    The project is looked up again as next-item does, so an annotator removed from it since
    the lease gets no new one: the answer then has no ``next`` (the judgement itself was
    stored, so it is still a success), and the client's next-item call hears the 404.
    """
    if lease_next is not None:
        try:
            project = selectors.project_get_for_user(user=request.user, project_id=project.id)
        except NotFoundError:
            lease_next = None
    if lease_next is None:
        return {"progress": selectors.annotator_progress(project=project, annotator=request.user)}
    after = next_item_body(project=project, annotator=request.user, exclude_ids=lease_next["exclude"])
    return {"progress": after["progress"], "next": after}


class NextItemView(APIView):
    @extend_schema(
        request=NextItemRequestSerializer,
        responses=NextItemSerializer,
        summary="Lease the next item to label",
        description="Returns the caller's open lease if it has one (other than those in `exclude`), else "
        "leases a new item. Send the item on screen in `exclude` to prefetch the following one. "
        "`assignment` is null when the queue is empty for this annotator.",
    )
    def post(self, request, project_id: int):
        project = selectors.project_get_for_user(user=request.user, project_id=project_id)
        serializer = NextItemRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        body = next_item_body(project=project, annotator=request.user, exclude_ids=serializer.validated_data["exclude"])
        return Response(NextItemSerializer(body).data)


class SubmitView(APIView):
    @extend_schema(
        request=SubmitSerializer,
        responses={201: SubmitResultSerializer, 200: SubmitResultSerializer},
        summary="Submit a label for a leased item (idempotent on client_id)",
        description="With `next`, the same call also leases the following item (as next-item would) "
        "and answers it in `next`. The label is stored first, whatever the lease then finds. "
        "`model_verdict` is the reward model's verdict on the item just labelled, where the project "
        "reveals it; it is never part of any answer that shows an item.",
    )
    def post(self, request, assignment_id: int):
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lease_next = serializer.validated_data.pop("next")
        label, created = services.label_submit(assignment_id=assignment_id, annotator=request.user, **serializer.validated_data)
        project = label.item.project
        body = {
            "label": label,
            "created": created,
            # Read once the label is stored: the verdict must never reach the annotator before it.
            "model_verdict": model_verdict_for(project=project, label=label),
            **progress_and_next(request=request, project=project, lease_next=lease_next),
        }
        return Response(SubmitResultSerializer(body).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipView(APIView):
    @extend_schema(
        request=SkipSerializer,
        responses=SkipResultSerializer,
        summary="Skip a leased item and return it to the pool",
        description="With `next`, the same call also leases the following item and answers it in `next`.",
    )
    def post(self, request, assignment_id: int):
        serializer = SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        lease_next = serializer.validated_data.pop("next")
        assignment = services.assignment_skip(assignment_id=assignment_id, annotator=request.user, **serializer.validated_data)
        body = {
            "id": assignment.id,
            "expires_at": assignment.expires_at,
            **progress_and_next(request=request, project=assignment.item.project, lease_next=lease_next),
        }
        return Response(SkipResultSerializer(body).data)


class HeartbeatView(APIView):
    @extend_schema(request=None, responses=LeaseSerializer, summary="Renew the lease while the item is on screen")
    def post(self, request, assignment_id: int):
        assignment = services.assignment_heartbeat(assignment_id=assignment_id, annotator=request.user)
        return Response(LeaseSerializer(assignment).data)


class LabelUndoView(APIView):
    @extend_schema(
        request=None,
        responses=ReopenedSerializer,
        summary="Undo one's own recent label; the item comes back with its lease reopened",
    )
    def post(self, request, label_id: int):
        assignment = services.label_undo(label_id=label_id, annotator=request.user)
        body = {
            "assignment": selectors.assignment_payload(assignment),
            "progress": selectors.annotator_progress(project=assignment.item.project, annotator=request.user),
        }
        return Response(ReopenedSerializer(body).data)


class LabelListView(APIView):
    pagination_class = IdCursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "include", str, enum=list(label_pages.INCLUDES),
                description="`texts`: add each label's prompt and the responses' texts in the order shown "
                "(model names for admins only).",
            ),
        ],
        responses=LabelListItemSerializer(many=True),
        summary="Labels of a project, oldest first, a page at a time (annotators: only their own; reviewers and admins: all)",
        description="Cursor-paginated by id: follow `next` until it is null. Labels added meanwhile "
        "appear at the end and none is repeated; a label whose submit was still committing when the walk "
        "passed its id can be missed by that walk, and the next walk has it.",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_member(user=request.user, project_id=project_id)
        includes = label_pages.label_includes_parse(request.query_params.getlist("include"))
        paginator = self.pagination_class()
        labels = paginator.paginate_queryset(
            label_pages.labels_for_page(user=request.user, project=project, includes=includes), request, view=self
        )
        if label_pages.TEXTS in includes:
            label_pages.label_page_attach_texts(user=request.user, labels=labels)
            data = LabelListItemSerializer(labels, many=True).data
        else:
            data = LabelSerializer(labels, many=True).data
        return paginator.get_paginated_response(data)


class AnnotatorQualityView(APIView):
    @extend_schema(
        responses=AnnotatorQualitySerializer,
        summary="How often each annotator agrees with the others, and their estimated accuracy (reviewers and admins)",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_review_reader(user=request.user, project_id=project_id)
        return Response(AnnotatorQualitySerializer(project_annotator_quality(project_id=project.id)).data)


class ImportHistoryPagination(IdCursorPagination):
    """The import history, newest first."""

    ordering = "-id"
    page_size = 50


class ImportView(APIView):
    parser_classes = [MultiPartParser]
    pagination_class = ImportHistoryPagination

    @extend_schema(
        responses=ImportRecordSerializer(many=True),
        summary="The project's import history, newest first (admins)",
        description="One row per upload or command-line import, succeeded or failed, with its counts and "
        "its first errors. Cursor-paginated: follow `next` until it is null.",
    )
    def get(self, request, project_id: int):
        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        paginator = self.pagination_class()
        records = paginator.paginate_queryset(
            project_selectors.import_records_for_project(project=project), request, view=self
        )
        return paginator.get_paginated_response(ImportRecordSerializer(records, many=True).data)

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        responses={
            201: ImportSummarySerializer,
            400: OpenApiResponse(description="Error naming line and field (the first 50, and how many in all)"),
            409: OpenApiResponse(description="The project is archived (read-only)"),
            413: OpenApiResponse(description="File over IMPORT_MAX_UPLOAD_BYTES"),
        },
        summary="Import prompts and responses from a JSONL file (all or nothing)",
        description="Every attempt, refused or not, is written to the import history (GET on this path).",
    )
    def post(self, request, project_id: int):
        from annotation.importing import MULTIPART_OVERHEAD_BYTES, ImportTooLargeError, import_upload_check_size

        project = selectors.project_get_for_admin(user=request.user, project_id=project_id)
        # Refuse an oversized body before reading it, then the file itself once it is parsed.
        content_length = request.META.get("CONTENT_LENGTH") or ""
        source, size = "(upload over the size limit, not read)", int(content_length) if content_length.isdigit() else 0
        try:
            if content_length.isdigit():
                import_upload_check_size(size=int(content_length), slack=MULTIPART_OVERHEAD_BYTES)
            serializer = ImportUploadSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            upload = serializer.validated_data["file"]
            source, size = upload.name, upload.size
            import_upload_check_size(size=upload.size)
        except ImportTooLargeError as exc:
            services.project_import_failure_record(
                project=project, uploaded_by=request.user, source=source, size_bytes=size, error=exc
            )
            raise
        # The upload is iterated a line at a time (big ones are spooled to a temporary file),
        # never read whole into memory.
        summary = services.project_import_jsonl(project=project, lines=upload, source=upload.name, uploaded_by=request.user)
        return Response(ImportSummarySerializer(summary.as_dict()).data, status=status.HTTP_201_CREATED)
