"""People pages: the list of users (admins), one user's roles (admins), accepting an invitation
(anyone holding the link), and changing one's own password (any signed-in user).

The two admin pages render a shell and their scripts talk to ``/api/users/``; the two password
pages are Django's auth views with the app's templates, their passwords saved through
``annotation.people``.
"""
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import path, reverse, reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie

from annotation import people
from annotation.models import Project
from config.errors import NotFoundError, PermissionDeniedError
from frontend.views import _api_root


class _SavedByService:
    """Django's password forms, saving through ``annotation.people.user_password_set``."""

    def set_password_and_save(self, user, password_field_name="new_password1", commit=True):
        return people.user_password_set(user=user, password=self.cleaned_data[password_field_name])


class InvitationPasswordForm(_SavedByService, SetPasswordForm):
    pass


class OwnPasswordChangeForm(_SavedByService, PasswordChangeForm):
    pass


def _require_admin(request) -> None:
    try:
        people.require_people_admin(request.user)
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc


def _projects() -> list[dict]:
    # For the role checkboxes: admins may assign any project, archived ones included.
    return list(Project.objects.order_by("name").values("id", "name", "status"))


@login_required
@ensure_csrf_cookie
def people_list(request):
    _require_admin(request)
    return render(request, "frontend/console/people_list.html", {"api_root": _api_root(), "projects": _projects()})


@login_required
@ensure_csrf_cookie
def person(request, user_id: int):
    _require_admin(request)
    try:
        shown = people.user_get_for_admin(admin=request.user, user_id=user_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(
        request,
        "frontend/console/people_person.html",
        {"api_root": _api_root(), "shown": shown, "is_self": shown.id == request.user.id, "projects": _projects()},
    )


class InvitationView(auth_views.PasswordResetConfirmView):
    """The invitation (or reset) link: choose a password, then land signed in on one's projects.

    Django's reset view: the token moves from the URL into the session before the form is
    shown (so it never leaks in a Referer), and stops working once the password is set.
    A deactivated account's link shows as invalid.
    """

    form_class = InvitationPasswordForm
    template_name = "frontend/console/people_invitation.html"
    post_reset_login = True
    # Named because settings list two backends; the throttling one only refuses sign-ins.
    post_reset_login_backend = "annotation.roles.ProjectRoleBackend"
    success_url = reverse_lazy("frontend:home")

    def get_user(self, uidb64):
        user = super().get_user(uidb64)
        return user if user is not None and user.is_active else None


class OwnPasswordChangeView(auth_views.PasswordChangeView):
    """Any signed-in user changes their own password; they stay signed in, other sessions end."""

    form_class = OwnPasswordChangeForm
    template_name = "frontend/console/people_account_password.html"

    def get_success_url(self):
        return reverse("frontend:account-password")

    def form_valid(self, form):
        messages.success(self.request, "Your password was changed.")
        return super().form_valid(form)


urlpatterns = [
    path("people/", people_list, name="people"),
    path("people/<int:user_id>/", person, name="person"),
    path("invitation/<uidb64>/<token>/", InvitationView.as_view(), name="invitation"),
    path("account/password/", OwnPasswordChangeView.as_view(), name="account-password"),
]
