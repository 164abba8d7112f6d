"""Pairs export: ids and votes, Parquet, the label filters, a round trip through `datasets`, flat query counts;
the leaderboard export; the command with all of it."""
import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.http import FileResponse
from django.test.utils import CaptureQueriesContext

from annotation.models import ComparisonItem, Label, Response
from tests.labelling import label_in_order
from tests.training.test_export import body, completed_version, lines_of
from training.export import LEADERBOARD_COLUMNS, pair_spec_for, prompt_text
from training.leaderboard import leaderboard_for
from training.ml.data import PreferencePair
from training.models import ResponseScore, TrainingPolicy
from training.pairs import project_pair_records

pytestmark = pytest.mark.django_db

PARQUET = "application/vnd.apache.parquet"


@pytest.fixture
def admin_client(admin_user, api_client_for):
    return api_client_for(admin_user)


def parquet_rows(response) -> list[dict]:
    assert isinstance(response, FileResponse)
    return pq.read_table(io.BytesIO(body(response))).to_pylist()


@pytest.fixture
def split(make_project, make_user):
    """One item, three labels: two prefer the good response, one the bad."""
    people = [make_user(name) for name in ("first", "second", "third")]
    project = make_project("Split", annotators=people, prompts=1, labels_per_item=3)
    for person, choice in zip(people, "AAB", strict=True):
        label_in_order(project, person, [choice])
    return project


@pytest.fixture
def disputed(make_project, make_user):
    """Three items: one both annotators agree on, one they disagree on, one labelled once."""
    first, second = make_user("first"), make_user("second")
    project = make_project("Disputed", annotators=[first, second], prompts=3, labels_per_item=2)
    label_in_order(project, first, "AAA")
    label_in_order(project, second, "AB")
    return project


def disagreeing_items(project) -> set[int]:
    rankings = {}
    for item_id, ranking in Label.objects.filter(item__project=project).values_list("item_id", "ranking"):
        rankings.setdefault(item_id, []).append(ranking)
    return {item_id for item_id, seen in rankings.items() if len(seen) == 2 and seen[0] != seen[1]}


def test_a_majority_pair_carries_its_response_ids_and_votes(split, admin_client):
    item = ComparisonItem.objects.get(project=split)
    good, bad = Response.objects.filter(prompt__project=split).order_by("id")
    url = f"/api/projects/{split.id}/export/pairs/"

    per_label = lines_of(admin_client.get(url))
    assert sorted((row["chosen_id"], row["votes"], row["votes_total"]) for row in per_label) == [
        (good.id, 1, 3), (good.id, 1, 3), (bad.id, 1, 3),
    ]

    TrainingPolicy.objects.create(project=split, aggregation=TrainingPolicy.Aggregation.MAJORITY)
    [row] = lines_of(admin_client.get(url))
    assert (row["chosen_id"], row["rejected_id"], row["item_id"]) == (good.id, bad.id, item.id)
    assert (row["chosen"], row["rejected"]) == (good.text, bad.text)
    assert (row["votes"], row["votes_total"]) == (2, 3)
    assert row["label_id"] == Label.objects.filter(item=item, ranking=[[good.id], [bad.id]]).latest("id").id


@pytest.mark.parametrize("style", ["plain", "conversational"])
def test_parquet_has_the_rows_of_the_jsonl_export(style, split, admin_client):
    url = f"/api/projects/{split.id}/export/pairs/"
    response = admin_client.get(url, {"format": "parquet", "style": style})
    assert response.status_code == 200 and response["Content-Type"] == PARQUET
    suffix = "-conversational" if style == "conversational" else ""
    assert response["Content-Disposition"] == f'attachment; filename="split-pairs{suffix}.parquet"'
    assert parquet_rows(response) == lines_of(admin_client.get(url, {"style": style}))


def test_parquet_of_no_pairs_is_a_readable_empty_table(make_project, admin_client):
    project = make_project("Empty")
    table = pq.read_table(io.BytesIO(body(admin_client.get(f"/api/projects/{project.id}/export/pairs/?format=parquet"))))
    assert table.num_rows == 0 and {"prompt", "chosen", "rejected", "votes", "votes_total"} <= set(table.column_names)


@pytest.mark.parametrize("kind,params", [
    ("pairs", {"format": "csv"}), ("pairs", {"format": "xml"}), ("labels", {"format": "parquet"}),
    ("scores", {"format": "parquet"}), ("leaderboard", {"format": "parquet"}),
])
def test_unknown_format_combinations_are_refused_naming_the_field(kind, params, split, admin_client):
    response = admin_client.get(f"/api/projects/{split.id}/export/{kind}/", params)
    assert response.status_code == 400 and set(response.json()["fields"]) == {"format"}


@pytest.mark.parametrize("style,export_format", [
    ("plain", "jsonl"), ("conversational", "jsonl"), ("plain", "parquet"), ("conversational", "parquet"),
])
def test_round_trip_through_datasets_gives_the_pairs_training_builds(style, export_format, make_project, make_user,
                                                                    admin_client, tmp_path):
    from datasets import load_dataset

    people = [make_user(name) for name in ("first", "second")]
    project = make_project("Round trip", annotators=people, prompts=5, labels_per_item=2)
    label_in_order(project, people[0], "AABAB")
    label_in_order(project, people[1], "ABBA")
    response = admin_client.get(f"/api/projects/{project.id}/export/pairs/", {"format": export_format, "style": style})
    path = tmp_path / f"pairs.{export_format}"
    path.write_bytes(body(response))

    dataset = load_dataset("json" if export_format == "jsonl" else "parquet", data_files=str(path), split="train",
                           cache_dir=str(tmp_path / "cache"))
    # What TRL's RewardTrainer reads: chosen and rejected, with the prompt apart (its "explicit prompt" format).
    assert {"prompt", "chosen", "rejected", "margin"} <= set(dataset.column_names)
    trained = [PreferencePair.from_dict(record) for record in project_pair_records(project, pair_spec_for(project))]
    assert len(dataset) == len(trained) == 9
    if style == "conversational":
        for row in dataset:
            assert all(set(message) == {"role", "content"} for message in row["prompt"] + row["chosen"] + row["rejected"])
        exported = [
            (tuple(row["prompt"][0].items()), row["chosen"][0]["content"], row["rejected"][0]["content"], row["margin"])
            for row in dataset
        ]
        expected = [(tuple(pair.context[0].items()), pair.chosen, pair.rejected, pair.margin) for pair in trained]
        assert all(row["chosen"][0]["role"] == "assistant" for row in dataset)
    else:
        assert all(isinstance(row[column], str) for row in dataset for column in ("prompt", "chosen", "rejected"))
        exported = [(row["prompt"], row["chosen"], row["rejected"], row["margin"]) for row in dataset]
        expected = [(prompt_text(list(pair.context)), pair.chosen, pair.rejected, pair.margin) for pair in trained]
    assert sorted(exported) == sorted(expected)


def test_agreement_below_keeps_exactly_the_disagreeing_items(disputed, admin_client):
    disputed_items = disagreeing_items(disputed)
    assert len(disputed_items) == 1
    for threshold in ("0.5", "1"):
        labels = lines_of(admin_client.get(f"/api/projects/{disputed.id}/export/labels/", {"agreement_below": threshold}))
        assert len(labels) == 2 and {row["item_id"] for row in labels} == disputed_items
        pairs = lines_of(admin_client.get(f"/api/projects/{disputed.id}/export/pairs/", {"agreement_below": threshold}))
        assert len(pairs) == 2 and {row["item_id"] for row in pairs} == disputed_items
        assert {(row["votes"], row["votes_total"]) for row in pairs} == {(1, 2)}
    assert len(lines_of(admin_client.get(f"/api/projects/{disputed.id}/export/pairs/"))) == 5


@pytest.mark.parametrize("kind", ["labels", "pairs"])
@pytest.mark.parametrize("value", ["0", "1.5", "-0.2", "x", "nan", "inf"])
def test_a_bad_agreement_threshold_is_a_400_naming_the_field(kind, value, disputed, admin_client):
    response = admin_client.get(f"/api/projects/{disputed.id}/export/{kind}/", {"agreement_below": value})
    assert response.status_code == 400 and list(response.json()["fields"]) == ["agreement_below"]


def test_pairs_follow_the_time_and_annotator_filters(disputed, admin_client):
    second = Label.objects.filter(item__project=disputed).latest("id").annotator
    url = f"/api/projects/{disputed.id}/export/pairs/"
    rows = lines_of(admin_client.get(url, {"annotators": str(second.id)}))
    assert sorted(row["label_id"] for row in rows) == sorted(second.labels.values_list("id", flat=True))
    assert lines_of(admin_client.get(url, {"until": "2000-01-01T00:00:00Z"})) == []
    assert admin_client.get(url, {"since": "someday"}).json()["fields"] == {"since": ["Not an ISO 8601 datetime, e.g. 2026-01-31T12:00:00Z."]}


@pytest.mark.parametrize("aggregation", ["per_label", "weighted"])
def test_pair_queries_do_not_grow_with_the_labels(aggregation, make_project, make_user, admin_client, monkeypatch):
    monkeypatch.setattr("training.pairs.CHUNK_ITEMS", 2)  # 6 items: three chunks
    people = [make_user(f"a{index}") for index in range(4)]
    project = make_project("Flat", annotators=people, prompts=6, labels_per_item=4)
    TrainingPolicy.objects.create(project=project, aggregation=aggregation)

    def export_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            b"".join(admin_client.get(f"/api/projects/{project.id}/export/pairs/").streaming_content)
        return len(queries)

    label_in_order(project, people[0], "AAAAAA")
    few = export_queries()
    for person in people[1:]:
        label_in_order(project, person, "ABABAB")
    assert Label.objects.filter(item__project=project).count() == 24
    assert export_queries() == few
    assert few <= 3 * 2 + 12  # two per chunk of items, plus a fixed number (auth, policy, weights, labels, prompts)


def test_leaderboard_export_is_the_api_s_board_one_row_per_model(split, admin_client):
    champion = completed_version(split, version=1, promote=True)
    ResponseScore.objects.bulk_create([
        ResponseScore(response=response, model_version=champion, score=score)
        for response, score in zip(Response.objects.filter(prompt__project=split).order_by("id"), (2.0, -1.0), strict=True)
    ])
    board = admin_client.get(f"/api/projects/{split.id}/leaderboard/").json()["models"]
    assert board == leaderboard_for(split)["models"]

    response = admin_client.get(f"/api/projects/{split.id}/export/leaderboard/")
    assert response["Content-Disposition"] == 'attachment; filename="split-leaderboard.jsonl"'
    rows = lines_of(response)
    assert [row["model"] for row in rows] == ["model-good", "model-bad"] == [row["model"] for row in board]
    for row, model in zip(rows, board, strict=True):
        assert [row["rating_ci_low"], row["rating_ci_high"]] == model["rating_ci"]
        assert (row["rating"], row["comparisons"], row["wins"], row["losses"], row["ties"], row["mean_reward"]) == (
            model["rating"], model["comparisons"], model["wins"], model["losses"], model["ties"], model["mean_reward"]
        )
        assert row["champion_version"] == 1
    assert (rows[0]["wins"], rows[0]["losses"], rows[0]["mean_reward"]) == (2, 1, 2.0)

    table = list(csv.DictReader(io.StringIO(body(admin_client.get(f"/api/projects/{split.id}/export/leaderboard/?format=csv")).decode())))
    assert list(table[0]) == LEADERBOARD_COLUMNS
    assert [(row["model"], float(row["rating"]), int(row["wins"])) for row in table] == [
        (row["model"], row["rating"], row["wins"]) for row in rows
    ]
    assert table[0]["mean_reward_ci_low"] == ""  # one scored response per model: no interval


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_command_writes_parquet_with_filters_and_shows_progress(disputed, admin_client, tmp_path):
    out = tmp_path / "pairs.parquet"
    stderr = Terminal()
    call_command("export_labels", disputed.name, kind="pairs", export_format="parquet", style="conversational",
                 agreement_below="0.75", since="2000-01-01T00:00:00Z", out=str(out), stderr=stderr)
    api = admin_client.get(f"/api/projects/{disputed.id}/export/pairs/",
                           {"format": "parquet", "style": "conversational", "agreement_below": "0.75", "since": "2000-01-01T00:00:00Z"})
    rows = pq.read_table(out).to_pylist()
    assert rows == parquet_rows(api) and {row["item_id"] for row in rows} == disagreeing_items(disputed)
    assert rows[0]["chosen"][0]["role"] == "assistant"
    assert "2 rows written (pairs, parquet)" in stderr.getvalue()

    labels_out = tmp_path / "labels.csv"
    stderr = Terminal()
    call_command("export_labels", str(disputed.id), kind="labels", export_format="csv", out=str(labels_out), stderr=stderr)
    assert "5/5 rows 100%" in stderr.getvalue()  # a terminal gets a bar against the counted total

    plain = io.StringIO()
    call_command("export_labels", str(disputed.id), kind="leaderboard", out=str(tmp_path / "board.jsonl"), stderr=plain)
    assert plain.getvalue() == f"2 rows written (leaderboard, jsonl) to {tmp_path / 'board.jsonl'}\n"
    assert [json.loads(line)["model"] for line in (tmp_path / "board.jsonl").read_text().splitlines()] == [
        row["model"] for row in leaderboard_for(disputed)["models"]
    ]

    with pytest.raises(CommandError, match="--agreement-below"):
        call_command("export_labels", str(disputed.id), kind="pairs", agreement_below="2", out=str(out))
    with pytest.raises(CommandError, match="format"):
        call_command("export_labels", str(disputed.id), kind="labels", export_format="parquet", out=str(out))
