"""The review API and pages: access for every role, each browser filter, query counts, bad input."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from annotation import review
from annotation.models import Label, Project
from annotation.services import assignment_skip, project_create, project_import_jsonl
from annotation.assignment import assignment_claim_next
from tests.console.review_fixtures import ranking_line, submit
from training.models import ResponseScore

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(make_project, crew, reviewer):
    """Three labels wanted per item, three annotators, four prompts (one pair each)."""
    project = make_project("Review", annotators=crew, prompts=4, labels_per_item=3)
    project.reviewers.add(reviewer)
    return project


@pytest.fixture
def labelled(project, crew):
    """Item 1: A, A, B (ann3 disagrees, with a rationale and a flag). Item 2: tie, both bad, A."""
    one = [
        submit(project, crew[0], choice="A"),
        submit(project, crew[1], choice="A", strength=3),
        submit(project, crew[2], choice="B", rationale="B is kinder", flags=[{"flag": "unsafe", "position": "A"}]),
    ]
    two = [
        submit(project, crew[0], choice="tie"),
        submit(project, crew[1], choice="both_bad"),
        submit(project, crew[2], choice="A"),
    ]
    return one + two


@pytest.fixture
def other_project(make_project, make_user):
    stranger = make_user("stranger")
    other = make_project("Other", annotators=[stranger], prompts=1)
    label = submit(other, stranger, choice="A")
    return other, stranger, label


def labels_url(project, **params):
    url = reverse("review-label-list", args=[project.id])
    return url + ("?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else "")


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# ------------------------------------------------------------------ access


def access_cases(project, other_project, crew, reviewer, admin_user, make_user):
    other, stranger, _ = other_project
    other_reviewer = make_user("other-rev")
    other.reviewers.add(other_reviewer)
    return {
        "anonymous": (None, {401, 403}),
        "annotator of another project": (stranger, {404}),
        "reviewer of another project": (other_reviewer, {404}),
        "annotator of this project": (crew[0], {404}),
        "reviewer": (reviewer, {200}),
        "admin": (admin_user, {200}),
    }


def client_for(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user=user)
    return client


def test_read_endpoints_answer_only_reviewers_and_admins(
    project, labelled, other_project, crew, reviewer, admin_user, make_user
):
    item_id = labelled[0].item_id
    urls = [
        labels_url(project),
        reverse("review-skip-list", args=[project.id]),
        reverse("review-item-list", args=[project.id]),
        reverse("review-item", args=[project.id, item_id]),
    ]
    for role, (user, expected) in access_cases(project, other_project, crew, reviewer, admin_user, make_user).items():
        for url in urls:
            assert client_for(user).get(url).status_code in expected, (role, url)


def test_review_endpoint_answers_only_reviewers_and_admins(
    project, labelled, other_project, crew, reviewer, admin_user, make_user
):
    url = reverse("label-review", args=[labelled[0].id])
    for role, (user, expected) in access_cases(project, other_project, crew, reviewer, admin_user, make_user).items():
        response = client_for(user).post(url, {"decision": "accept"}, format="json")
        assert response.status_code in expected, role
        if 200 in expected:
            client_for(user).post(url, {"decision": "revert"}, format="json")
    labelled[0].refresh_from_db()
    assert labelled[0].reviews.count() == 4  # accept and revert by the reviewer and the admin only


def test_ids_of_another_projects_objects_are_not_found(project, labelled, other_project, reviewer, admin_user):
    other, _, foreign_label = other_project
    for user in (reviewer, admin_user):
        client = client_for(user)
        # Another project's item through this project's URL.
        assert client.get(reverse("review-item", args=[project.id, foreign_label.item_id])).status_code == 404
    # The reviewer of this project cannot touch the other project's label or item.
    client = client_for(reviewer)
    assert client.post(reverse("label-review", args=[foreign_label.id]), {"decision": "accept"}, format="json").status_code == 404
    assert client.get(reverse("review-item", args=[other.id, foreign_label.item_id])).status_code == 404
    assert client.get(labels_url(other)).status_code == 404
    assert client.post(reverse("label-review", args=[10**12]), {"decision": "accept"}, format="json").status_code == 404


def test_pages_answer_only_reviewers_and_admins(
    client, project, labelled, other_project, crew, reviewer, admin_user, make_user
):
    other, _, foreign_label = other_project
    pages = [
        reverse("frontend:review-labels", args=[project.id]),
        reverse("frontend:review-item", args=[project.id, labelled[0].item_id]),
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302 and "/login/" in response["Location"]
    for role, (user, expected) in access_cases(project, other_project, crew, reviewer, admin_user, make_user).items():
        if user is None:
            continue
        client.force_login(user)
        for page in pages:
            assert client.get(page).status_code in expected, (role, page)
    client.force_login(reviewer)
    assert client.get(reverse("frontend:review-item", args=[project.id, foreign_label.item_id])).status_code == 404
    page = client.get(pages[0])
    assert b'id="review-config"' in page.content and b"<script>" not in page.content


# ------------------------------------------------------------------ filters


def test_no_filter_lists_every_label_oldest_first_with_models_in_shown_order(project, labelled, reviewer):
    response = client_for(reviewer).get(labels_url(project))
    assert ids(response) == [label.id for label in labelled]
    row = response.json()["results"][0]
    assert [r["position"] for r in row["responses"]] == ["A", "B"]
    assert [r["model_name"] for r in row["responses"]] == ["model-good", "model-bad"]  # A = the lower id
    assert row["responses"][0]["rank"] == 1 and row["outcome"] == "A"
    assert "<p>" in row["responses"][0]["html"] and row["conversation"][0]["html"]


def test_filter_by_annotator(project, labelled, crew, reviewer):
    assert ids(client_for(reviewer).get(labels_url(project, annotators=crew[2].id))) == [labelled[2].id, labelled[5].id]


@pytest.mark.parametrize(("outcome", "indexes"), [("A", [0, 1, 5]), ("B", [2]), ("tie", [3]), ("both_bad", [4])])
def test_filter_by_outcome(project, labelled, reviewer, outcome, indexes):
    assert ids(client_for(reviewer).get(labels_url(project, outcome=outcome))) == [labelled[i].id for i in indexes]


def test_outcome_is_as_the_annotator_saw_it(project, crew, reviewer):
    """A label whose annotator saw the responses the other way round: "A" is their left one."""
    assignment = assignment_claim_next(project=project, annotator=crew[0])
    assignment.display_order = sorted(assignment.display_order, reverse=True)
    assignment.save()
    from annotation.services import label_submit
    import uuid

    label, _ = label_submit(assignment_id=assignment.id, annotator=crew[0], choice="A", client_id=uuid.uuid4())
    row = client_for(reviewer).get(labels_url(project, outcome="A")).json()["results"][0]
    assert row["id"] == label.id
    assert [r["model_name"] for r in row["responses"]] == ["model-bad", "model-good"]
    assert ids(client_for(reviewer).get(labels_url(project, outcome="B"))) == []


def test_filter_by_flag(project, labelled, reviewer):
    assert ids(client_for(reviewer).get(labels_url(project, flag="unsafe"))) == [labelled[2].id]
    assert ids(client_for(reviewer).get(labels_url(project, flag="personal_data"))) == []


def test_filter_by_disagreement_with_the_majority(project, labelled, reviewer):
    # Item 1: A, A, B: the B disagrees; each A meets an even split (A vs B), no majority.
    # Item 2: tie, both bad (no verdict), A: the tie and the A each differ from the only other verdict.
    expected = [labelled[2].id, labelled[3].id, labelled[5].id]
    assert ids(client_for(reviewer).get(labels_url(project, disagreement="true"))) == expected
    assert ids(client_for(reviewer).get(labels_url(project, disagreement="false"))) == [
        labelled[0].id, labelled[1].id, labelled[4].id
    ]


def test_a_rejected_label_is_not_part_of_the_majority(project, labelled, reviewer):
    review.label_review(label_id=labelled[2].id, reviewer=reviewer, decision="reject", reason="no")
    # Item 1 now: A, A (the B is out): nobody there disagrees.
    assert ids(client_for(reviewer).get(labels_url(project, disagreement="true"))) == [labelled[3].id, labelled[5].id]


def test_filter_by_disagreement_with_the_reward_model(project, labelled, reviewer, sent_tasks):
    from tests.labelling import make_champion

    # No champion yet: no label disagrees with a model.
    assert ids(client_for(reviewer).get(labels_url(project, model_disagreement="true"))) == []
    # The champion prefers the second response shown (B, model-bad) on both items.
    make_champion(project, {"model-good": [0.0, 0.0], "model-bad": [1.0, 1.0]})
    a_response, b_response = labelled[0].display_order
    assert Label.objects.get(id=labelled[0].id).ranking == [[a_response], [b_response]]
    assert ResponseScore.objects.get(response_id=b_response).score > ResponseScore.objects.get(response_id=a_response).score
    # Item 1: A, A, B (the two As disagree); item 2: a tie and "both bad" make no claim, the A disagrees.
    assert ids(client_for(reviewer).get(labels_url(project, model_disagreement="true"))) == [
        labelled[0].id, labelled[1].id, labelled[5].id
    ]
    assert ids(client_for(reviewer).get(labels_url(project, model_disagreement="false"))) == [
        labelled[2].id, labelled[3].id, labelled[4].id
    ]
    # A corrected label speaks with its correction; filters combine.
    review.label_review(label_id=labelled[0].id, reviewer=reviewer, decision="correct", reason="B",
                        corrected_ranking=[["B"], ["A"]])
    # Item 1 is now B, A, B: the A goes against both the majority and the model.
    assert ids(client_for(reviewer).get(labels_url(project, model_disagreement="true", disagreement="true"))) == [
        labelled[1].id, labelled[5].id
    ]
    assert ids(client_for(reviewer).get(labels_url(project, model_disagreement="true"))) == [labelled[1].id, labelled[5].id]


def test_the_disagreement_answer_is_kept_until_a_label_changes(project, labelled, crew, reviewer):
    client = client_for(reviewer)

    first_item = {label.id for label in labelled[:3]}

    def disagreeing_on_the_first_item():
        shown = ids(client.get(labels_url(project, disagreement="true")))
        assert set(shown) == review.project_disagreeing_label_ids(project=project)  # what a fresh read gives
        return [label_id for label_id in shown if label_id in first_item]

    assert disagreeing_on_the_first_item() == [labelled[2].id]  # A, A, B
    assert disagreeing_on_the_first_item() == [labelled[2].id]  # kept: nothing changed
    review.label_review(label_id=labelled[0].id, reviewer=reviewer, decision="reject", reason="no")
    assert disagreeing_on_the_first_item() == [labelled[1].id, labelled[2].id]  # A and B: each against the other
    review.label_review(label_id=labelled[0].id, reviewer=reviewer, decision="revert")
    assert disagreeing_on_the_first_item() == [labelled[2].id]
    review.label_review(
        label_id=labelled[1].id, reviewer=reviewer, decision="correct", reason="no", corrected_ranking=[["B"], ["A"]]
    )
    assert disagreeing_on_the_first_item() == [labelled[0].id]  # now A against B, B
    from annotation.services import label_delete, label_undo

    label_delete(label_id=labelled[2].id)
    assert disagreeing_on_the_first_item() == [labelled[0].id, labelled[1].id]  # A and a corrected B
    label = submit(project, crew[0], choice="B")  # on another item
    disagreeing_on_the_first_item()
    label_undo(label_id=label.id, annotator=crew[0])
    disagreeing_on_the_first_item()


def test_the_reward_model_filter_follows_the_champion_and_its_new_scores(project, labelled, reviewer, sent_tasks):
    from annotation.models import Response
    from tests.labelling import make_champion

    client = client_for(reviewer)
    url = labels_url(project, model_disagreement="true")
    assert ids(client.get(url)) == []  # no champion yet
    # The champion prefers model-bad's answer, scored so far on the first item only.
    champion = make_champion(project, {"model-good": [0.0], "model-bad": [1.0]})
    assert ids(client.get(url)) == [labelled[0].id, labelled[1].id]  # A (model-good) on the first item
    assert ids(client.get(url)) == [labelled[0].id, labelled[1].id]  # kept
    # The rescoring's next chunk: the second item's responses.
    second_item = Response.objects.filter(prompt__items__id=labelled[3].item_id).order_by("id")
    for response, score in zip(second_item, (0.0, 1.0)):
        ResponseScore.objects.create(response=response, model_version=champion, score=score)
    assert ids(client.get(url)) == [labelled[0].id, labelled[1].id, labelled[5].id]


def test_filter_by_rationale(project, labelled, reviewer):
    assert ids(client_for(reviewer).get(labels_url(project, has_rationale="true"))) == [labelled[2].id]
    assert len(ids(client_for(reviewer).get(labels_url(project, has_rationale="false")))) == 5


def test_filter_by_review_status(project, labelled, reviewer):
    review.label_review(label_id=labelled[1].id, reviewer=reviewer, decision="reject", reason="no")
    assert ids(client_for(reviewer).get(labels_url(project, review_status="rejected"))) == [labelled[1].id]
    assert len(ids(client_for(reviewer).get(labels_url(project, review_status="unreviewed")))) == 5


def test_filter_by_gold_and_whether_the_label_matches_the_answer(project, labelled, reviewer):
    from annotation.gold import item_gold_set
    from annotation.models import ComparisonItem

    # Item 1 (A, A, B): the answer is what the first two said. Item 2 (tie, both bad, A): the last one's answer.
    for label in (labelled[0], labelled[5]):
        item_gold_set(item=ComparisonItem.objects.get(id=label.item_id), ranking=label.ranking)
    client = client_for(reviewer)
    on_gold = [label.id for label in labelled]
    assert ids(client.get(labels_url(project, gold="item"))) == on_gold
    assert ids(client.get(labels_url(project, gold="ordinary"))) == []
    assert ids(client.get(labels_url(project, gold="right"))) == [labelled[0].id, labelled[1].id, labelled[5].id]
    assert ids(client.get(labels_url(project, gold="wrong"))) == [labelled[2].id, labelled[3].id]  # both bad is neither
    rows = {row["id"]: (row["gold_item"], row["matches_gold"]) for row in client.get(labels_url(project)).json()["results"]}
    assert [rows[label.id] for label in labelled] == [
        (True, True), (True, True), (True, False), (True, False), (True, None), (True, True)
    ]
    item = client.get(reverse("review-item", args=[project.id, labelled[0].item_id])).json()
    assert [label["matches_gold"] for label in item["labels"]] == [True, True, False]

    ComparisonItem.objects.filter(id=labelled[5].item_id).update(gold_ranking=None)
    assert ids(client.get(labels_url(project, gold="ordinary"))) == [label.id for label in labelled[3:]]
    assert ids(client.get(labels_url(project, gold="wrong"))) == [labelled[2].id]
    assert {row["matches_gold"] for row in client.get(labels_url(project, gold="ordinary")).json()["results"]} == {None}


def items_url(project, **params):
    url = reverse("review-item-list", args=[project.id])
    return url + ("?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else "")


def test_items_tab_lists_every_item_with_its_progress_and_filters_them(project, labelled, reviewer, crew):
    from annotation.gold import item_gold_set

    first, second, third, fourth = project.items.order_by("id")  # 3 labels, 3 labels, none, none (3 wanted)
    item_gold_set(item=fourth, ranking=[[slot] for slot in fourth.slots.order_by("slot").values_list("response_id", flat=True)])
    newcomer = crew[0].__class__.objects.create(username="newcomer")
    project.annotators.add(newcomer)
    assert assignment_claim_next(project=project, annotator=newcomer).item_id == third.id  # held now
    client = client_for(reviewer)
    body = client.get(items_url(project)).json()
    assert [(row["id"], row["label_count"], row["gold"], row["open_leases"]) for row in body["results"]] == [
        (first.id, 3, False, 0), (second.id, 3, False, 0), (third.id, 0, False, 1), (fourth.id, 0, True, 0)
    ]
    assert body["results"][1]["prompt_external_id"] == second.prompt.external_id
    assert body["results"][1]["labels_per_item"] == 3 and body["results"][1]["conversation"][0]["role"] == "user"
    assert ids(client.get(items_url(project, progress="open"))) == [third.id]  # gold is never work to finish
    assert ids(client.get(items_url(project, progress="finished"))) == [first.id, second.id]
    assert ids(client.get(items_url(project, progress="unlabelled"))) == [third.id, fourth.id]
    assert ids(client.get(items_url(project, gold="true"))) == [fourth.id]
    assert ids(client.get(items_url(project, gold="false", progress="unlabelled"))) == [third.id]
    assert ids(client.get(items_url(project, prompt=second.prompt.external_id.upper()))) == [second.id]
    assert ids(client.get(items_url(project, prompt="no such prompt"))) == []
    # Agreement: A, A, B agree on 1 comparison of 3; tie against A (both bad has no verdict) on 0 of 1.
    assert [row["agreement"] for row in body["results"]] == [pytest.approx(1 / 3), 0.0, None, None]
    assert ids(client.get(items_url(project, agreement_below="0.5"))) == [first.id, second.id]
    assert ids(client.get(items_url(project, agreement_below="0.2"))) == [second.id]
    review.label_review(label_id=labelled[0].id, reviewer=reviewer, decision="reject", reason="no")
    assert ids(client.get(items_url(project, progress="open"))) == [first.id, third.id]  # a rejection reopens it
    assert client.get(items_url(project)).json()["results"][0]["agreement"] == 0.0  # A against B now
    assert ids(client.get(items_url(project, agreement_below="0.2"))) == [first.id, second.id]  # not kept from before


def test_items_pages_are_keyset_pages_and_their_queries_do_not_grow(project, labelled, reviewer, make_project):
    client = client_for(reviewer)
    few = count_queries(client, items_url(project))
    project_import_jsonl(project=project, lines=[
        ranking_line(f"more-{index}", ["model-a", "model-b"]) for index in range(30)
    ], source="more.jsonl")
    assert count_queries(client, items_url(project)) == few
    walked, url = [], items_url(project, page_size=7)
    while url:
        body = client.get(url).json()
        walked += [row["id"] for row in body["results"]]
        url = body["next"]
    assert walked == list(project.items.order_by("id").values_list("id", flat=True)) and len(walked) == 34


@pytest.mark.parametrize(
    ("params", "field"),
    [({"gold": "maybe"}, "gold"), ({"progress": "done"}, "progress"), ({"prompt": "x" * 201}, "prompt"),
     ({"agreement_below": "2"}, "agreement_below"), ({"agreement_below": "nan"}, "agreement_below"),
     ({"prompt": "a\x00b"}, "prompt"), ({"cursor": "garbage"}, "cursor")],
)
def test_bad_item_filters_are_400_naming_the_parameter(project, reviewer, params, field):
    response = client_for(reviewer).get(reverse("review-item-list", args=[project.id]), params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_filter_by_date_range(project, labelled, reviewer):
    old = timezone.now() - timedelta(days=10)
    Label.objects.filter(id__in=[labelled[0].id, labelled[1].id]).update(created_at=old)
    until = (old + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(client_for(reviewer).get(labels_url(project, until=until))) == [labelled[0].id, labelled[1].id]
    assert ids(client_for(reviewer).get(labels_url(project, since=until))) == [label.id for label in labelled[2:]]


def test_ranking_projects_filter_on_ties(make_user, reviewer):
    users = [make_user("r1"), make_user("r2")]
    project = project_create(name="Ranks", label_format=Project.LabelFormat.RANKING, annotators=users, labels_per_item=2)
    project.reviewers.add(reviewer)
    project_import_jsonl(project=project, lines=[ranking_line("p1", ["m1", "m2", "m3"])], source="t.jsonl")
    strict = submit(project, users[0], ranking=[["A"], ["B"], ["C"]])
    tied = submit(project, users[1], ranking=[["C"], ["A", "B"]])
    client = client_for(reviewer)
    assert ids(client.get(labels_url(project, outcome="ranking_tie"))) == [tied.id]
    assert ids(client.get(labels_url(project, outcome="ranking_strict"))) == [strict.id]
    assert client.get(labels_url(project, outcome="A")).status_code == 400
    row = client.get(labels_url(project, outcome="ranking_tie")).json()["results"][0]
    assert [(r["position"], r["rank"]) for r in row["responses"]] == [("A", 2), ("B", 2), ("C", 1)]


def test_skips_tab_lists_skips_with_a_reason_filter(project, labelled, crew, reviewer):
    # Everyone has labelled items 1 and 2; items 3 and 4 are next.
    for user, reason in ((crew[0], "Not my language"), (crew[1], "Broken prompt")):
        lease = assignment_claim_next(project=project, annotator=user)
        assignment_skip(assignment_id=lease.id, annotator=user, reason=reason)
    # A rejected label's assignment is skipped too, but it is no annotator's skip.
    review.label_review(label_id=labelled[0].id, reviewer=reviewer, decision="reject", reason="no")
    url = reverse("review-skip-list", args=[project.id])
    client = client_for(reviewer)
    rows = client.get(url).json()["results"]
    assert [row["skip_reason"] for row in rows] == ["Not my language", "Broken prompt"]
    rows = client.get(url + "?skip_reason=broken").json()["results"]
    assert [row["annotator"]["username"] for row in rows] == ["ann2"]
    assert [row["skip_reason"] for row in client.get(url + f"?annotators={crew[0].id}").json()["results"]] == ["Not my language"]


def test_pages_are_keyset_pages(project, labelled, reviewer):
    client = client_for(reviewer)
    first = client.get(labels_url(project, page_size=4)).json()
    second = client.get(first["next"]).json()
    assert [r["id"] for r in first["results"] + second["results"]] == [label.id for label in labelled]
    assert second["next"] is None


# ------------------------------------------------------------------ query counts


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# The project (access), whether the viewer annotates it too (model names), the page of labels,
# the responses of the page's items.
LIST_QUERIES = 4


def test_list_queries_do_not_grow_with_labels(project, crew, reviewer):
    client = client_for(reviewer)
    submit(project, crew[0], choice="A")
    submit(project, crew[1], choice="B", flags=["unsafe"])  # the two disagree
    filtered = {"outcome": "B", "flag": "unsafe", "has_rationale": "false", "review_status": "unreviewed", "gold": "ordinary"}
    few = count_queries(client, labels_url(project))
    few_filtered = count_queries(client, labels_url(project, **filtered))
    few_disagreeing = count_queries(client, labels_url(project, disagreement="true"))
    for user in crew:
        for _ in range(3):
            submit(project, user, choice="B", flags=["unsafe"])
    assert Label.objects.count() == 11
    assert count_queries(client, labels_url(project)) == few == LIST_QUERIES
    assert count_queries(client, labels_url(project, **filtered)) == few_filtered == LIST_QUERIES
    # The disagreement filter reads the state its kept answer was computed from (three queries);
    # the first time, the project's rankings as well.
    assert few_disagreeing == LIST_QUERIES + 4
    # Labels added since: which items they went to (two queries: the new labels, the reviews),
    # then those items' rankings and label ids (two), however many labels the project holds.
    assert count_queries(client, labels_url(project, disagreement="true")) == LIST_QUERIES + 7
    # Unchanged labels: the next page, or the same filter again, reuses the answer.
    assert count_queries(client, labels_url(project, disagreement="true")) == LIST_QUERIES + 3


def test_item_queries_do_not_grow_with_labels(project, labelled, reviewer, crew):
    client = client_for(reviewer)
    url = reverse("review-item", args=[project.id, labelled[0].item_id])
    few = count_queries(client, url)
    for label in labelled[:3]:
        review.label_review(label_id=label.id, reviewer=reviewer, decision="accept")
        review.label_review(label_id=label.id, reviewer=reviewer, decision="revert")
    assert count_queries(client, url) == few


# ------------------------------------------------------------------ item detail and decisions


def test_item_shows_every_label_in_its_own_order_with_history(project, labelled, reviewer):
    client = client_for(reviewer)
    client.post(reverse("label-review", args=[labelled[2].id]), {"decision": "reject", "reason": "Off-topic"}, format="json")
    body = client.get(reverse("review-item", args=[project.id, labelled[0].item_id])).json()
    assert [label["id"] for label in body["labels"]] == [label.id for label in labelled[:3]]
    assert body["label_count"] == 2 and body["labels_per_item"] == 3 and body["gold_ranking"] is None
    rejected = body["labels"][2]
    assert rejected["review_status"] == "rejected" and rejected["rationale"] == "B is kinder"
    assert [(entry["decision"], entry["reason"], entry["reviewer"]) for entry in rejected["reviews"]] == [
        ("reject", "Off-topic", "rev")
    ]
    assert [r["position"] for r in rejected["shown"]] == ["A", "B"]
    assert {r["model_name"] for r in body["responses"]} == {"model-good", "model-bad"}


def test_gold_items_show_their_answer(project, labelled, reviewer):
    from annotation.models import ComparisonItem

    item = ComparisonItem.objects.get(id=labelled[0].item_id)
    item.gold_ranking = [[labelled[0].display_order[0]], [labelled[0].display_order[1]]]
    item.save()
    body = client_for(reviewer).get(reverse("review-item", args=[project.id, item.id])).json()
    assert body["gold_ranking"] == item.gold_ranking


def test_review_answers_and_repeats_quietly(project, labelled, reviewer):
    client = client_for(reviewer)
    url = reverse("label-review", args=[labelled[0].id])
    first = client.post(url, {"decision": "correct", "reason": "B", "corrected_ranking": [["B"], ["A"]]}, format="json")
    assert first.status_code == 200
    assert first.json()["recorded"] is True and first.json()["review"]["reviewer"] == "rev"
    assert first.json()["corrected_ranking"] == [labelled[0].display_order[::-1][:1], labelled[0].display_order[:1]]
    again = client.post(url, {"decision": "correct", "reason": "B", "corrected_ranking": [["B"], ["A"]]}, format="json")
    assert again.status_code == 200 and again.json()["recorded"] is False and again.json()["review"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "decision"),
        ({"decision": "nope"}, "decision"),
        ({"decision": "reject"}, "reason"),
        ({"decision": "reject", "reason": "x" * 100_000}, "reason"),
        ({"decision": "reject", "reason": "bad\x00byte"}, "reason"),
        ({"decision": "reject", "reason": ["a"]}, "reason"),
        ({"decision": "correct", "reason": "r", "corrected_ranking": "B>A"}, "corrected_ranking"),
        ({"decision": "correct", "reason": "r", "corrected_ranking": [[["B"]], ["A"]]}, "corrected_ranking"),
        ({"decision": "correct", "reason": "r", "corrected_ranking": [["B"] * 50, ["A"]]}, "corrected_ranking"),
        ({"decision": "correct", "reason": "r", "corrected_ranking": [["Q"], ["A"]]}, "corrected_ranking"),
        ({"decision": "correct", "reason": "r", "corrected_ranking": [["B\x00"], ["A"]]}, "corrected_ranking"),
    ],
)
def test_bad_review_requests_are_400_naming_the_field(project, labelled, reviewer, body, field):
    response = client_for(reviewer).post(reverse("label-review", args=[labelled[0].id]), body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_deeply_nested_bodies_are_refused(project, labelled, reviewer):
    nested = "[" * 5000 + "]" * 5000
    response = client_for(reviewer).post(
        reverse("label-review", args=[labelled[0].id]),
        data='{"decision": "correct", "reason": "r", "corrected_ranking": ' + nested + "}",
        content_type="application/json",
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "sideways"}, "outcome"),
        ({"flag": "rude"}, "flag"),
        ({"disagreement": "maybe"}, "disagreement"),
        ({"model_disagreement": "1"}, "model_disagreement"),
        ({"has_rationale": "2"}, "has_rationale"),
        ({"review_status": "pending"}, "review_status"),
        ({"gold": "true"}, "gold"),
        ({"since": "yesterday"}, "since"),
        ({"annotators": "x,y"}, "annotators"),
        ({"agreement_below": "0.5"}, "agreement_below"),
        ({"cursor": "garbage"}, "cursor"),
        ({"page_size": "0"}, "page_size"),
        ({"outcome": "A\x00" + "x" * 5000}, "outcome"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(project, labelled, reviewer, params, field):
    response = client_for(reviewer).get(reverse("review-label-list", args=[project.id]), params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_bad_skip_reason_filter_is_400(project, reviewer):
    url = reverse("review-skip-list", args=[project.id])
    assert client_for(reviewer).get(url, {"skip_reason": "x" * 201}).status_code == 400
    assert client_for(reviewer).get(url, {"skip_reason": "a\x00b"}).status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"annotators": "9" * 30}, {"skip_reason": "%_\\"}, {"annotators": "-1"}, {"since": "9999-12-31T23:59:59-15:00"}],
)
def test_hostile_filters_never_crash(project, labelled, reviewer, params):
    for name in ("review-label-list", "review-skip-list"):
        response = client_for(reviewer).get(reverse(name, args=[project.id]), params)
        assert response.status_code in (200, 400), response.content


def test_huge_ids_are_not_found(project, reviewer):
    client = client_for(reviewer)
    assert client.get(f"/api/projects/{project.id}/review/items/{'9' * 25}/").status_code == 404
    assert client.post(f"/api/labels/{'9' * 25}/review/", {"decision": "accept"}, format="json").status_code == 404


def test_a_reviewer_who_also_annotates_the_project_does_not_learn_model_names(project, labelled, reviewer):
    """Reviewers see which model wrote what, unless they label the project too: that would unblind them."""
    def names(body_responses):
        return {response["model_name"] for response in body_responses}

    client = client_for(reviewer)
    listed = client.get(f"/api/projects/{project.id}/review/labels/").json()["results"]
    item_id = listed[0]["item_id"]
    assert names(listed[0]["responses"]) - {""}
    assert names(client.get(f"/api/projects/{project.id}/review/items/{item_id}/").json()["responses"]) - {""}

    project.annotators.add(reviewer)
    listed = client.get(f"/api/projects/{project.id}/review/labels/").json()["results"]
    assert all(names(row["responses"]) == {""} for row in listed)
    assert names(client.get(f"/api/projects/{project.id}/review/items/{item_id}/").json()["responses"]) == {""}
