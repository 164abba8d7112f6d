"""The Results page's responses table: ?html=true (rendered Markdown) and ?count=true (the filtered total)
on GET /api/projects/{id}/scores/, beside the filters the page already had."""
import pytest

from annotation.models import Response
from training import selectors
from tests.labelling import make_champion

pytestmark = pytest.mark.django_db


def url(project):
    return f"/api/projects/{project.id}/scores/"


@pytest.fixture
def scored(make_project):
    """6 prompts, 12 responses: model-good scored 0..5, model-bad scored -0..-5."""
    project = make_project(prompts=6)
    make_champion(project, {"model-good": [float(i) for i in range(6)], "model-bad": [-float(i) for i in range(6)]})
    return project


def test_rows_keep_their_fields_unless_html_is_asked_for(scored, admin_user, api_client_for):
    body = api_client_for(admin_user).get(url(scored)).json()
    assert "html" not in body["results"][0] and body["matching"] is None


def test_html_is_the_stored_sanitised_rendering(scored, admin_user, api_client_for):
    response = Response.objects.filter(prompt__project=scored).order_by("id").first()
    Response.objects.filter(id=response.id).update(text="**bold** <script>x()</script>", html="<p><strong>bold</strong></p>")

    rows = api_client_for(admin_user).get(url(scored), {"html": "true"}).json()["results"]

    row = next(row for row in rows if row["response_id"] == response.id)
    assert row["html"] == "<p><strong>bold</strong></p>" and row["html_truncated"] is False
    assert {row["html_truncated"] for row in rows} == {False}


def test_a_response_without_stored_html_is_rendered_and_sanitised(scored, admin_user, api_client_for):
    response = Response.objects.filter(prompt__project=scored).order_by("id").first()
    Response.objects.filter(id=response.id).update(text="*hi* <img src=x onerror=alert(1)>", html=None)

    rows = api_client_for(admin_user).get(url(scored), {"html": "1"}).json()["results"]

    html = next(row for row in rows if row["response_id"] == response.id)["html"]
    assert "<em>hi</em>" in html and "onerror" not in html and "<img" not in html


def test_a_long_response_shows_only_its_rendered_start(scored, admin_user, api_client_for):
    response = Response.objects.filter(prompt__project=scored).order_by("id").first()
    long_text = "word " * 10_000  # 50,000 characters; its stored HTML is over the limit too
    Response.objects.filter(id=response.id).update(text=long_text, html=f"<p>{long_text}</p>")

    rows = api_client_for(admin_user).get(url(scored), {"html": "true"}).json()["results"]

    row = next(row for row in rows if row["response_id"] == response.id)
    assert row["html_truncated"] is True
    assert len(row["html"]) < 5_000 and row["html"].startswith("<p>word word")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, 12),
        ({"model": "model-bad"}, 6),
        ({"min_score": 2}, 4),
        ({"min_score": -1, "max_score": 1}, 4),
        ({"q": "RUDE answer 1"}, 1),
        ({"q": "nothing like it"}, 0),
        ({"model": "model-good", "q": "helpful", "max_score": 2.5}, 3),
    ],
)
def test_count_is_the_number_of_responses_the_filters_let_through(scored, admin_user, api_client_for, params, expected):
    body = api_client_for(admin_user).get(url(scored), {"count": "true", "page_size": 2, **params}).json()
    assert body["matching"] == {"count": expected, "capped": False}
    assert body["summary"]["responses"] == 12  # the summary stays the whole project's


def test_count_stops_at_its_limit(scored, admin_user, api_client_for, monkeypatch):
    monkeypatch.setattr(selectors, "MATCHING_COUNT_LIMIT", 5)
    body = api_client_for(admin_user).get(url(scored), {"count": "true", "q": "answer"}).json()
    assert body["matching"] == {"count": 5, "capped": True}


def test_count_without_a_champion_and_a_score_range_is_zero(make_project, admin_user, api_client_for):
    project = make_project(prompts=2)
    body = api_client_for(admin_user).get(url(project), {"count": "true", "min_score": 0}).json()
    assert body["matching"] == {"count": 0, "capped": False} and body["results"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"html": "maybe"}, "html"),
        ({"count": "\x00"}, "count"),
        ({"q": "x" * 201}, "q"),
        ({"min_score": "nan"}, "min_score"),
        ({"min_score": 3, "max_score": 1}, "max_score"),
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(scored, admin_user, api_client_for, params, field):
    response = api_client_for(admin_user).get(url(scored), params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_access_is_unchanged(scored, make_project, make_user, api_client_for):
    stranger = make_user("stranger")
    make_project("Elsewhere", prompts=1, annotators=[stranger])
    own = make_user("own")
    scored.annotators.add(own)
    assert api_client_for(stranger).get(url(scored), {"html": "true", "count": "true"}).status_code == 404
    assert api_client_for(own).get(url(scored), {"html": "true", "count": "true"}).status_code == 403
