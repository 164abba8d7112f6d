"""Projects console pages: who may open them, what they start from, and the home page's project list."""
import json
import re

import pytest

from annotation.models import Project
from annotation.services import project_create

pytestmark = pytest.mark.django_db


def browser_for(client, user):
    client.force_login(user)
    return client


def form_config(response) -> dict:
    match = re.search(r'<script id="project-form-config" type="application/json">(.*?)</script>', response.content.decode(), re.S)
    assert match, "the page embeds its form config"
    return json.loads(match.group(1))


@pytest.fixture
def people(make_user, make_project, project, annotator):
    outsider = make_user("outsider")
    make_project("Elsewhere", annotators=[outsider], prompts=1)
    reviewer = make_user("rev")
    project.reviewers.add(reviewer)
    return {"outsider": outsider, "annotator": annotator, "reviewer": reviewer}


@pytest.mark.parametrize("page", ["settings", "import"])
def test_project_pages_are_for_admins(client, people, admin_user, project, page):
    url = f"/projects/{project.id}/{page}/"

    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    assert browser_for(client, people["outsider"]).get(url).status_code == 404
    assert browser_for(client, people["annotator"]).get(url).status_code == 403
    assert browser_for(client, people["reviewer"]).get(url).status_code == 404
    assert browser_for(client, admin_user).get(url).status_code == 200
    assert client.get(f"/projects/{project.id + 1000}/{page}/").status_code == 404


def test_the_new_project_page_is_for_admins(client, people, admin_user):
    anonymous = client.get("/projects/new/")
    assert anonymous.status_code == 302
    for who in ("outsider", "annotator", "reviewer"):
        assert browser_for(client, people[who]).get("/projects/new/").status_code == 403, who

    response = browser_for(client, admin_user).get("/projects/new/")

    assert response.status_code == 200
    config = form_config(response)
    assert config["project"] is None and config["items"] == 0
    assert "sequential" in config["choices"]["selection_order"]
    assert {"ann", "boss", "rev", "outsider"} <= set(config["users"])
    assert config["settings_url"] == "/projects/0/settings/"


def test_the_settings_page_starts_from_the_project(client, admin_user, project):
    project.reviewers.add(admin_user)

    config = form_config(browser_for(client, admin_user).get(f"/projects/{project.id}/settings/"))

    assert config["project"]["id"] == project.id
    assert (config["project"]["annotators"], config["project"]["reviewers"]) == (["ann"], ["boss"])
    assert config["items"] == 3  # the format hint says why the label format is fixed


def test_pages_carry_no_inline_script_or_style(client, admin_user, project):
    browser_for(client, admin_user)
    for url in ("/projects/new/", f"/projects/{project.id}/settings/", f"/projects/{project.id}/import/", "/"):
        html = client.get(url).content.decode()
        scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", html)
        assert all('type="application/json"' in attributes for attributes in scripts), url
        assert " style=" not in html and "<style" not in html, url


def test_home_lists_projects_with_status_progress_and_admin_links(client, admin_user, annotator, project):
    paused = project_create(name="Paused one", annotators=[annotator], status=Project.Status.PAUSED)
    archived = project_create(name="Old one", annotators=[annotator], status=Project.Status.ARCHIVED)

    admin_page = browser_for(client, admin_user).get("/").content.decode()

    assert "0 / 3 items · 0%" in admin_page
    for target in (project, paused, archived):
        assert f'href="/projects/{target.id}/settings/"' in admin_page
        assert f'href="/projects/{target.id}/import/"' in admin_page
    assert f'data-testid="project-{archived.id}" data-status="archived"' in admin_page
    assert 'href="/projects/new/"' in admin_page

    client.logout()
    annotator_page = browser_for(client, annotator).get("/").content.decode()

    assert f'data-testid="project-{paused.id}" data-status="paused"' in annotator_page
    assert f'data-testid="project-{project.id}"' in annotator_page
    assert f'data-testid="project-{archived.id}"' not in annotator_page
    assert "/settings/" not in annotator_page and "/projects/new/" not in annotator_page


def test_home_progress_counts_finished_items(client, api_client_for, admin_user, annotator, project):
    import uuid

    lease = api_client_for(annotator).post(f"/api/projects/{project.id}/next-item/", {}, format="json").json()["assignment"]
    api_client_for(annotator).post(
        f"/api/assignments/{lease['id']}/submit/", {"choice": "A", "client_id": str(uuid.uuid4())}, format="json"
    )

    assert "1 / 3 items · 33%" in browser_for(client, admin_user).get("/").content.decode()


def test_home_costs_the_same_for_many_projects(client, admin_user, make_project, django_assert_max_num_queries):
    browser_for(client, admin_user)
    make_project("One", prompts=1)
    with django_assert_max_num_queries(6) as one:
        client.get("/")
    for index in range(4):
        make_project(f"More {index}", prompts=1)
    with django_assert_max_num_queries(len(one.captured_queries)):
        client.get("/")
