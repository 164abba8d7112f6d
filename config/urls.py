from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import BasePermission

from config.auth import TokenRotateView, TokenView
from config.parsers import TOKEN_PARSER_CLASSES

# ObtainAuthToken (config.auth.TokenView's base) names its own parsers (DRF's JSONParser
# among them): give it ours, which refuse absurdly nested bodies (config.parsers).
token_view = TokenView.as_view(parser_classes=TOKEN_PARSER_CLASSES)


class SchemaPermission(BasePermission):
    """The schema lists every endpoint and field: anyone may read it when API_SCHEMA_PUBLIC
    (the development default), only signed-in users otherwise (the production default)."""

    def has_permission(self, request, view):
        return settings.API_SCHEMA_PUBLIC or bool(request.user and request.user.is_authenticated)


schema_view = SpectacularAPIView.as_view(permission_classes=[SchemaPermission])

api_patterns = [
    path("auth/token/", token_view, name="api-token"),
    path("auth/token/rotate/", TokenRotateView.as_view(), name="api-token-rotate"),
    path("schema/", schema_view, name="api-schema"),
    path("", include("annotation.urls")),
    path("", include("training.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    # Sign-in and sign-out only. Passwords change at /account/password/ and are reset by an admin's
    # invitation link (frontend.console.people): Django's e-mail reset needs a mail server, which
    # is not configured.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/", include(api_patterns)),
    path("", include("frontend.urls")),
]

# Unmatched URLs and unexpected errors outside DRF's handling: JSON under /api/, Django's page elsewhere.
handler404 = "config.api_errors.not_found"
handler500 = "config.api_errors.server_error"
