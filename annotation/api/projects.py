"""Projects console API: the guidelines preview.

Creating, changing and importing into projects stay on the original endpoints
(``annotation.views``: ``projects/``, ``projects/{id}/``, ``projects/{id}/imports/``), which
the console pages call as any client would.
"""
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors
from annotation.rendering import render_markdown
from annotation.serializers import GuidelinesPreviewResultSerializer, GuidelinesPreviewSerializer


class GuidelinesPreviewView(APIView):
    @extend_schema(
        request=GuidelinesPreviewSerializer,
        responses=GuidelinesPreviewResultSerializer,
        summary="Render guidelines Markdown as annotators will see it (admins)",
        description="Sanitised by the same renderer as the workbench; nothing is stored.",
    )
    def post(self, request):
        selectors.require_admin(request.user)
        serializer = GuidelinesPreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        html = render_markdown(serializer.validated_data["guidelines"])
        return Response(GuidelinesPreviewResultSerializer({"html": html}).data)


urlpatterns = [
    path("projects/guidelines-preview/", GuidelinesPreviewView.as_view(), name="project-guidelines-preview"),
]
