"""Session-authenticated writes need the CSRF token; token-authenticated API clients do not."""
import pytest
from django.test import Client

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_a_signed_in_browser_cannot_be_made_to_write_without_the_csrf_token(project, annotator):
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username=annotator.username, password=PASSWORD)
    url = f"/api/projects/{project.id}/next-item/"
    forged = browser.post(url, {}, content_type="application/json")  # what another site's form could send
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]

    browser.get("/")  # the pages set the csrftoken cookie the workbench sends back
    token = browser.cookies["csrftoken"].value
    genuine = browser.post(url, {}, content_type="application/json", headers={"X-CSRFToken": token})
    assert genuine.status_code == 200 and genuine.json()["assignment"] is not None
