"""GET /api/projects/{id}/labels/: cursor pages, scoping, include=texts, query count, bad parameters."""
import base64
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.assignment import assignment_claim_next
from annotation.models import Label, Response
from annotation.services import label_submit
from tests.labelling import label_in_order

pytestmark = pytest.mark.django_db


def url_of(project, **params) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return f"/api/projects/{project.id}/labels/" + (f"?{query}" if query else "")


def walk(client, url) -> list[dict]:
    """Every page from ``url`` on, following ``next``."""
    pages = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        pages.append(response.json())
        url = pages[-1]["next"]
    return pages


def ids_of(pages) -> list[int]:
    return [label["id"] for page in pages for label in page["results"]]


@pytest.fixture
def colleague(make_user):
    return make_user("colleague")


@pytest.fixture
def labelled(make_project, annotator, colleague):
    """30 items, each labelled by both annotators: 60 labels, interleaved by id."""
    project = make_project("Paged", annotators=[annotator, colleague], prompts=30, labels_per_item=2)
    for _ in range(10):
        label_in_order(project, annotator, ["A", "B", "tie"])
        label_in_order(project, colleague, ["B", "both_bad", "A"])
    return project


def test_pages_walk_every_label_exactly_once_in_id_order(api_client_for, admin_user, labelled):
    client = api_client_for(admin_user)
    pages = walk(client, url_of(labelled, page_size=7))

    expected = list(Label.objects.filter(item__project=labelled).order_by("id").values_list("id", flat=True))
    assert len(expected) == 60
    assert ids_of(pages) == expected
    assert [len(page["results"]) for page in pages] == [7] * 8 + [4]
    assert pages[0]["previous"] is None and pages[-1]["next"] is None
    # A previous link leads back to exactly the page before.
    back = client.get(pages[2]["previous"]).json()
    assert [label["id"] for label in back["results"]] == [label["id"] for label in pages[1]["results"]]


def test_default_page_is_100_and_page_size_goes_up_to_1000(api_client_for, admin_user, make_project, annotator):
    project = make_project("Big", annotators=[annotator], prompts=101)
    label_in_order(project, annotator, ["A"] * 101)
    client = api_client_for(admin_user)

    first = client.get(url_of(project)).json()
    assert len(first["results"]) == 100 and first["next"] is not None
    assert len(client.get(first["next"]).json()["results"]) == 1
    everything = client.get(url_of(project, page_size=1000)).json()
    assert len(everything["results"]) == 101 and everything["next"] is None


def test_labels_added_while_walking_come_once_at_the_end(api_client_for, admin_user, labelled, annotator, make_user):
    client = api_client_for(admin_user)
    first = client.get(url_of(labelled, page_size=25)).json()
    before = list(Label.objects.filter(item__project=labelled).order_by("id").values_list("id", flat=True))

    # Meanwhile a third annotator labels ten items (new, higher ids).
    newcomer = make_user("newcomer")
    labelled.annotators.add(newcomer)
    labelled.labels_per_item = 3
    labelled.save()
    label_in_order(labelled, newcomer, ["A"] * 10)

    rest = walk(client, first["next"])
    seen = ids_of([first, *rest])
    after = list(Label.objects.filter(item__project=labelled).order_by("id").values_list("id", flat=True))
    assert len(after) == 70
    assert seen == after
    assert seen[:60] == before


def test_annotators_see_only_their_own_labels_on_every_page(
    api_client_for, admin_user, labelled, annotator, colleague, make_project
):
    pages = walk(api_client_for(annotator), url_of(labelled, page_size=4))
    mine = list(Label.objects.filter(annotator=annotator).order_by("id").values_list("id", flat=True))
    assert ids_of(pages) == mine and len(mine) == 30
    assert {label["annotator"] for page in pages for label in page["results"]} == {"ann"}

    # A cursor is a position, not a grant: one from an admin's walk still shows only one's own.
    admin_first = api_client_for(admin_user).get(url_of(labelled, page_size=10)).json()
    after_it = [label_id for label_id in mine if label_id > admin_first["results"][-1]["id"]]
    assert ids_of(walk(api_client_for(annotator), admin_first["next"])) == after_it

    # Another project's labels answer 404, as if it did not exist.
    other = make_project("Elsewhere", annotators=[colleague])
    response = api_client_for(annotator).get(url_of(other))
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_without_include_there_are_no_texts(api_client_for, admin_user, labelled):
    label = api_client_for(admin_user).get(url_of(labelled, page_size=1)).json()["results"][0]
    assert not {"prompt", "prompt_external_id", "responses"} & set(label)
    assert set(label) == {
        "id", "item", "annotator", "client_id", "ranking", "is_tie", "both_bad", "strength",
        "ratings", "flags", "rationale", "seconds_spent", "display_order", "created_at",
    }


def shown_reversed(project, user) -> Label:
    """``user`` labels the next item having been shown it right to left."""
    assignment = assignment_claim_next(project=project, annotator=user)
    assignment.display_order = sorted(assignment.display_order, reverse=True)
    assignment.save()
    label, _ = label_submit(assignment_id=assignment.id, annotator=user, choice="A", client_id=uuid.uuid4())
    return label


def test_include_texts_gives_prompt_and_responses_in_the_order_shown(api_client_for, admin_user, project, annotator):
    label = shown_reversed(project, annotator)
    prompt = label.item.prompt

    admin_view = api_client_for(admin_user).get(url_of(project, include="texts")).json()["results"][0]
    assert admin_view["prompt"] == [{"role": "user", "content": prompt.conversation[0]["content"]}]
    assert admin_view["prompt_external_id"] == prompt.external_id
    expected = [Response.objects.get(id=response_id) for response_id in label.display_order]
    assert [r["id"] for r in admin_view["responses"]] == label.display_order
    assert admin_view["responses"] == [
        {"id": response.id, "text": response.text, "model_name": response.model_name} for response in expected
    ]
    assert {r["model_name"] for r in admin_view["responses"]} == {"model-good", "model-bad"}


def test_annotators_get_texts_but_never_model_names(api_client_for, project, annotator):
    shown_reversed(project, annotator)
    response = api_client_for(annotator).get(url_of(project, include="texts"))
    label = response.json()["results"][0]
    assert [set(r) for r in label["responses"]] == [{"id", "text"}, {"id", "text"}]
    assert b"model-good" not in response.content and b"model-bad" not in response.content


@pytest.mark.parametrize("include", ["texts", None])
def test_a_page_costs_the_same_queries_whatever_its_size(api_client_for, admin_user, labelled, include):
    client = api_client_for(admin_user)
    counts = {}
    for page_size in (5, 50):
        params = {"page_size": page_size, **({"include": include} if include else {})}
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url_of(labelled, **params)).json()
        assert len(body["results"]) == page_size
        counts[page_size] = len(queries)
    # The project, the labels (annotator and prompt joined in), and with texts the page's responses.
    assert counts == {5: 3 if include else 2, 50: 3 if include else 2}


@pytest.mark.parametrize("include", ["bogus", "texts,bogus", "TEXTS"])
def test_an_unknown_include_is_a_400_naming_it(api_client_for, admin_user, labelled, include):
    response = api_client_for(admin_user).get(url_of(labelled, include=include))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == ["include"]
    assert "texts" in body["detail"]


def test_include_may_be_repeated_or_empty(api_client_for, admin_user, labelled):
    client = api_client_for(admin_user)
    repeated = client.get(f"{url_of(labelled, page_size=2)}&include=texts&include=texts").json()
    assert all("responses" in label for label in repeated["results"])
    empty = client.get(url_of(labelled, page_size=2, include="")).json()
    assert all("responses" not in label for label in empty["results"])


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "1001", "2.5", "9" * 5000, "%EF%BC%95"])
def test_a_bad_page_size_is_a_400_naming_it(api_client_for, admin_user, labelled, page_size):
    response = api_client_for(admin_user).get(url_of(labelled, page_size=page_size))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == ["page_size"]
    assert "1 to 1000" in body["detail"]


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode().replace("=", "%3D")


@pytest.mark.parametrize("cursor", [
    "not-base64!",
    "%C3%A9",
    encoded("p=abc"),
    encoded("p=1e5"),
    encoded("p=99999999999999999999999"),
    encoded("p=" + "9" * 5000),
    encoded("o=-1"),
    encoded("o=x&p=3"),
    encoded("r=maybe"),
])
def test_a_tampered_cursor_is_a_400_naming_it(api_client_for, admin_user, labelled, cursor):
    response = api_client_for(admin_user).get(url_of(labelled, cursor=cursor))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == ["cursor"]


def test_a_well_formed_cursor_past_the_end_is_an_empty_page(api_client_for, admin_user, labelled):
    last = Label.objects.filter(item__project=labelled).order_by("-id").first().id
    body = api_client_for(admin_user).get(url_of(labelled, cursor=encoded(f"p={last}"))).json()
    assert body["results"] == [] and body["next"] is None
