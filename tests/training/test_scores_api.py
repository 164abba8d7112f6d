"""GET /api/projects/{id}/scores/: keyset pages of the responses with the champion's scores."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.labelling import make_champion

pytestmark = pytest.mark.django_db


def url(project):
    return f"/api/projects/{project.id}/scores/"


@pytest.fixture
def scored(make_project):
    """12 prompts, 24 responses: model-good scored 0..11, model-bad scored -0..-9 with its last two unscored."""
    project = make_project(prompts=12)
    make_champion(project, {"model-good": [float(i) for i in range(12)], "model-bad": [-float(i) for i in range(10)]})
    return project


def walk(client, project, params, *, limit=100):
    """Every row the next links reach, page by page, and the pages' sizes."""
    rows, sizes = [], []
    response = client.get(url(project), params)
    for _ in range(limit):
        assert response.status_code == 200, response.content
        body = response.json()
        rows.extend(body["results"])
        sizes.append(len(body["results"]))
        if body["next"] is None:
            return rows, sizes
        response = client.get(body["next"])
    raise AssertionError("the next links never ended")


def test_pages_walk_every_response_once_in_prompt_order(scored, admin_user, api_client_for):
    client = api_client_for(admin_user)
    rows, sizes = walk(client, scored, {"page_size": 5})
    assert sizes == [5, 5, 5, 5, 4]
    ids = [row["response_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 24
    assert [row["prompt_external_id"] for row in rows[:4]] == ["Helpfulness-0"] * 2 + ["Helpfulness-1"] * 2
    first = rows[0]
    assert set(first) == {
        "response_id", "prompt_external_id", "prompt_preview", "model_name", "text_preview", "score", "criterion_scores",
        "top_probability",
    }
    assert (first["prompt_preview"], first["text_preview"], first["model_name"]) == (
        "Question 0?", "A good helpful answer 0.", "model-good",
    )


def test_previous_links_walk_back_to_the_first_page(scored, admin_user, api_client_for):
    client = api_client_for(admin_user)
    pages = [client.get(url(scored), {"page_size": 7, "sort": "-score"}).json()]
    while pages[-1]["next"]:
        pages.append(client.get(pages[-1]["next"]).json())
    assert pages[0]["previous"] is None
    back = client.get(pages[-1]["previous"]).json()
    assert back["results"] == pages[-2]["results"]
    back = client.get(back["previous"]).json()
    assert back["results"] == pages[-3]["results"]
    assert client.get(pages[1]["previous"]).json()["previous"] is None


def test_body_keeps_the_champion_and_a_summary(scored, admin_user, api_client_for):
    body = api_client_for(admin_user).get(url(scored), {"include": "models"}).json()
    assert body["champion"]["version"] == 1 and body["champion"]["scored"] is False
    assert body["summary"] == {"responses": 24, "scored": 22, "champion_scored": 22}
    assert body["scores_version"] == 1  # still scoring, and no earlier champion to show instead
    assert body["models"] == ["model-bad", "model-good"]
    assert api_client_for(admin_user).get(url(scored)).json()["models"] is None


@pytest.mark.parametrize("sort,descending", [("score", False), ("-score", True)])
def test_sort_by_score_puts_unscored_responses_last(scored, admin_user, api_client_for, sort, descending):
    rows, _ = walk(api_client_for(admin_user), scored, {"page_size": 4, "sort": sort})
    scores = [row["score"] for row in rows]
    assert len(rows) == 24
    assert scores[-2:] == [None, None]
    assert scores[:-2] == sorted(scores[:-2], reverse=descending)


def test_filters_by_model_score_range_and_search(scored, admin_user, api_client_for):
    client = api_client_for(admin_user)
    rows, _ = walk(client, scored, {"model": "model-bad"})
    assert len(rows) == 12 and {row["model_name"] for row in rows} == {"model-bad"}
    rows, _ = walk(client, scored, {"min_score": "2", "max_score": "4.5", "sort": "score", "page_size": 2})
    assert [row["score"] for row in rows] == [2.0, 3.0, 4.0]
    rows, _ = walk(client, scored, {"min_score": "-1", "model": "model-bad"})
    assert sorted(row["score"] for row in rows) == [-1.0, 0.0]
    rows, _ = walk(client, scored, {"q": "RUDE ANSWER 1"})  # the text, any case
    assert sorted(row["text_preview"] for row in rows) == ["A bad rude answer 1.", "A bad rude answer 10.", "A bad rude answer 11."]
    rows, _ = walk(client, scored, {"q": "fulness-11"})  # the prompt's external id
    assert {row["prompt_external_id"] for row in rows} == {"Helpfulness-11"}
    assert walk(client, scored, {"model": "nobody"})[0] == []


def test_the_top_response_of_a_fully_scored_prompt_carries_its_probability(scored, admin_user, api_client_for):
    rows, _ = walk(api_client_for(admin_user), scored, {"page_size": 500})
    tops = {row["prompt_external_id"]: row for row in rows if row["top_probability"] is not None}
    # Prompt 3: good 3.0 vs bad -3.0, P = sigmoid(6); prompt 0 is a tie (0 vs -0) and still has a top.
    assert tops["Helpfulness-3"]["model_name"] == "model-good"
    assert tops["Helpfulness-3"]["top_probability"] == pytest.approx(1 / (1 + 2.718281828459045 ** -6))
    assert "Helpfulness-10" not in tops and "Helpfulness-11" not in tops  # model-bad's responses there are unscored


def test_a_filtered_page_still_marks_the_top_among_all_responses_of_the_prompt(scored, admin_user, api_client_for):
    body = api_client_for(admin_user).get(url(scored), {"model": "model-good", "page_size": 3}).json()
    # Prompt 0 is a tie (0.0 against -0.0), so its top is whichever; from prompt 1 on, model-good is it.
    assert all(row["top_probability"] is not None for row in body["results"][1:])
    body = api_client_for(admin_user).get(url(scored), {"model": "model-bad", "page_size": 3}).json()
    assert all(row["top_probability"] is None for row in body["results"][1:])


def test_without_a_champion_every_score_is_null(make_project, admin_user, api_client_for):
    project = make_project(prompts=2)
    client = api_client_for(admin_user)
    body = client.get(url(project), {"sort": "-score"}).json()
    assert body["champion"] is None and body["summary"] == {"responses": 4, "scored": 0, "champion_scored": 0}
    assert [row["score"] for row in body["results"]] == [None] * 4
    assert client.get(url(project), {"min_score": "0"}).json()["results"] == []


@pytest.mark.parametrize(
    "params,field",
    [
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"sort": "model"}, "sort"),
        ({"min_score": "high"}, "min_score"),
        ({"max_score": "nan"}, "max_score"),
        ({"min_score": "inf"}, "min_score"),
        ({"min_score": "2", "max_score": "1"}, "max_score"),
        ({"q": "x" * 201}, "q"),
        ({"include": "everything"}, "include"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJvIjoicHJvbXB0In0"}, "cursor"),  # base64 JSON without a position
    ],
)
def test_bad_parameters_are_a_400_naming_the_field(scored, admin_user, api_client_for, params, field):
    response = api_client_for(admin_user).get(url(scored), params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_a_cursor_of_another_sort_is_refused(scored, admin_user, api_client_for):
    client = api_client_for(admin_user)
    following = client.get(url(scored), {"page_size": 2}).json()["next"]
    cursor = following.split("cursor=")[1].split("&")[0]
    response = client.get(url(scored), {"sort": "score", "cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()["fields"]


@pytest.mark.parametrize("params", [{}, {"sort": "-score", "model": "model-good"}, {"q": "answer", "include": "models"}])
def test_query_count_does_not_grow_with_the_page(scored, admin_user, api_client_for, params):
    client = api_client_for(admin_user)
    counts = []
    for size in (5, 10):  # both inside the scored rows: a page that reaches the unscored ones takes one query more
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url(scored), {**params, "page_size": size}).status_code == 200
        counts.append(len(queries))
    # project, champion, an earlier champion with complete scores (this one is still scoring), page,
    # the page's prompts' scores, two counts (+ model names when asked)
    assert counts[0] == counts[1] == 7 + ("include" in params), counts


def test_annotators_are_refused_and_other_projects_are_not_found(scored, make_project, annotator, admin_user, api_client_for):
    project = make_project("Theirs", annotators=[annotator], prompts=1)
    assert api_client_for(annotator).get(url(project)).status_code == 403  # their own project: admins only
    assert api_client_for(annotator).get(url(scored)).status_code == 404  # not theirs: it does not exist for them
    assert api_client_for(admin_user).get("/api/projects/999999/scores/").status_code == 404


def test_the_response_total_is_a_counter_kept_by_imports_not_a_count(make_project, admin_user, api_client_for):
    from annotation.models import ProjectProgress, Response
    from annotation.progress import progress_recount
    from annotation.services import project_import_jsonl
    from tests.conftest import prompt_record

    project = make_project(prompts=3)
    project_import_jsonl(project=project, lines=[prompt_record("late", "Later?", "Yes.", "No.")], source="late.jsonl")
    client = api_client_for(admin_user)
    assert client.get(url(project)).json()["summary"]["responses"] == 8 == Response.objects.filter(prompt__project=project).count()

    # The total is read from the counter row: a wrong counter shows, and a recount repairs it.
    ProjectProgress.objects.filter(project=project).update(responses=5)
    assert client.get(url(project)).json()["summary"]["responses"] == 5
    progress_recount(project=project)
    assert client.get(url(project)).json()["summary"]["responses"] == 8

    # A project loaded without counters (a bulk loader) is counted instead.
    ProjectProgress.objects.filter(project=project).update(responses=None)
    assert client.get(url(project)).json()["summary"]["responses"] == 8
