"""The Results page's live updates (text/event-stream): an adapter over ``training.events``.

A DRF view for the API's authentication (the session cookie that EventSource sends, or a
token for a script), its access checks and its one error shape; every check runs before the
stream starts, so a refusal is an ordinary JSON error.
"""
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.views import APIView

from annotation.selectors import project_get_for_admin
from training import events
from training.export_views import IgnoreFormatParameter


class EventStreamsBusy(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Every live-update stream of this server process is in use: keep polling and try again later."
    default_code = "event_streams_busy"

    def __init__(self, *, retry_after: int):
        super().__init__()
        self.wait = retry_after  # DRF's exception handler sends it as Retry-After


# What OpenAPI 3.0 can say of a text/event-stream: the shape of each event in it.
SERVER_SENT_EVENT = inline_serializer(
    "ServerSentEvent",
    fields={
        "event": serializers.ChoiceField(choices=["results", "end"]),
        "data": serializers.CharField(
            help_text="JSON. results: {champion, scores_version, latest_version, run}, the fingerprint that changed; "
            'end: {"reconnect": true}.'
        ),
        "retry": serializers.IntegerField(
            required=False, help_text="Milliseconds EventSource waits to reconnect after a drop."
        ),
    },
)


class ProjectEventsView(APIView):
    # EventSource asks for Accept: text/event-stream, which no DRF renderer offers (a 406):
    # the stream is not rendered by DRF at all, and errors always render as JSON.
    content_negotiation_class = IgnoreFormatParameter
    # No HEAD: the server would run the whole stream, holding a thread, to send no body.
    http_method_names = ["get", "options"]

    @extend_schema(
        responses={
            (200, events.CONTENT_TYPE): SERVER_SENT_EVENT,
            503: OpenApiResponse(
                description="Every stream of this server process is in use (EVENT_STREAMS_PER_PROCESS; 0 turns "
                "streams off), or the database is unavailable: poll, and try again after Retry-After."
            ),
        },
        summary="Live updates of the Results page (server-sent events)",
        description=(
            "A text/event-stream. `event: results` comes at once and again whenever the champion, its scoring, "
            "the newest model version or the newest training run (status, progress) changes; its data is that "
            "fingerprint as JSON. `event: end` closes the stream after EVENT_STREAM_SECONDS: reconnect. Comment "
            "lines are heartbeats. Project admins only; signed in by session (EventSource sends the cookie) or token."
        ),
    )
    def get(self, request, project_id: int):
        project = project_get_for_admin(user=request.user, project_id=project_id)
        stream = events.results_stream_open(project_id=project.id)
        if stream is None:
            raise EventStreamsBusy(retry_after=events.busy_retry_after())
        response = StreamingHttpResponse(stream, content_type=events.CONTENT_TYPE)
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once, do not buffer the body
        return response
