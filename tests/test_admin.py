"""The Django admin lists every model and keeps labels read-only."""
import pytest


@pytest.fixture
def superuser_client(client, django_user_model):
    # tests/conftest.py's `admin_user` is a project admin (staff), not a Django superuser.
    superuser = django_user_model.objects.create_superuser("root", "root@example.org", "x" * 12)
    client.force_login(superuser)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    ["project", "prompt", "response", "comparisonitem", "assignment", "label"],
)
def test_admin_changelists_render(superuser_client, project, path):
    assert superuser_client.get(f"/admin/annotation/{path}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["trainingrun", "modelversion", "responsescore", "trainingpolicy"])
def test_training_admin_changelists_render(superuser_client, path):
    assert superuser_client.get(f"/admin/training/{path}/").status_code == 200


@pytest.mark.django_db
def test_labels_cannot_be_added_in_the_admin(superuser_client):
    assert superuser_client.get("/admin/annotation/label/add/").status_code == 403
