"""Exports: pairs are the training pairs, labels are complete and pseudonymous, downloads are scoped and streamed."""
import csv
import hashlib
import io
import json
import os
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.utils import timezone

from annotation.assignment import assignment_claim_next
from annotation.export import annotator_pseudonym
from annotation.models import Label, Response
from annotation.services import assignment_skip, label_submit
from training import services
from training.models import ResponseScore, TrainingPolicy, TrainingRun
from training.pairs import PairSpec, project_pair_records
from training.snapshots import snapshot_write

pytestmark = pytest.mark.django_db


def label_some(project, annotator, choices, *, skip_reason=None, strength=None):
    """Label one item per choice (in claim order); then skip the next one if ``skip_reason`` is given."""
    for choice in choices:
        assignment = assignment_claim_next(project=project, annotator=annotator)
        label_submit(assignment_id=assignment.id, annotator=annotator, choice=choice, client_id=uuid.uuid4(),
                     strength=None if choice in ("tie", "both_bad") else strength, rationale="because",
                     seconds_spent=3.5)
    if skip_reason is not None:
        assignment = assignment_claim_next(project=project, annotator=annotator)
        assignment_skip(assignment_id=assignment.id, annotator=annotator, reason=skip_reason)


def lines_of(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    return [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def admin_client(admin_user, api_client_for):
    return api_client_for(admin_user)


@pytest.fixture
def labelled(make_project, annotator):
    project = make_project(annotators=[annotator], prompts=4)
    label_some(project, annotator, ["A", "B", "tie"], skip_reason="I cannot judge code", strength=4)
    return project


def test_pairs_are_the_training_pairs_in_both_styles(labelled, admin_client):
    records = project_pair_records(labelled, PairSpec())
    assert len(records) == 2  # the tie gives no pair by default

    plain = admin_client.get(f"/api/projects/{labelled.id}/export/pairs/")
    assert plain.status_code == 200 and plain["Content-Type"] == "application/x-ndjson"
    assert 'attachment; filename="helpfulness-pairs.jsonl"' == plain["Content-Disposition"]
    # The export streams item by item; training sorts the same records by label.
    rows = sorted(lines_of(plain), key=lambda row: (row["label_id"], row["chosen_id"], row["rejected_id"]))
    assert [(row["chosen"], row["rejected"], row["margin"], row["label_id"], row["chosen_id"], row["item_id"])
            for row in rows] == [
        (record["chosen"], record["rejected"], record["margin"], record["label_id"], record["chosen_id"],
         record["item_id"])
        for record in records
    ]
    assert rows[0]["prompt"] == records[0]["context"][0]["content"] and rows[0]["margin"] == 1.0
    assert rows[0]["external_id"].startswith("Helpfulness-") and rows[0]["prompt_id"] == records[0]["prompt_id"]
    assert Response.objects.get(id=rows[0]["chosen_id"]).text == rows[0]["chosen"]
    assert (rows[0]["votes"], rows[0]["votes_total"]) == (1, 1)

    conversational = lines_of(admin_client.get(f"/api/projects/{labelled.id}/export/pairs/?style=conversational"))
    conversational.sort(key=lambda row: row["label_id"])
    for row, record in zip(conversational, records, strict=True):
        assert row["prompt"] == record["context"] and row["prompt"][0]["role"] == "user"
        assert row["chosen"] == [{"role": "assistant", "content": record["chosen"]}]
        assert row["rejected"] == [{"role": "assistant", "content": record["rejected"]}]


def test_pairs_follow_the_training_policy_and_the_ties_option(labelled, admin_client, annotator):
    with_ties = lines_of(admin_client.get(f"/api/projects/{labelled.id}/export/pairs/?ties=1"))
    assert [row["tie"] for row in with_ties].count(True) == 1
    assert len(with_ties) == len(project_pair_records(labelled, PairSpec(train_on_ties=True)))

    policy = TrainingPolicy.objects.create(project=labelled)
    policy.excluded_annotators.add(annotator)
    assert lines_of(admin_client.get(f"/api/projects/{labelled.id}/export/pairs/")) == []


def test_labels_jsonl_has_every_label_and_skip_under_a_pseudonym(labelled, admin_client, annotator):
    response = admin_client.get(f"/api/projects/{labelled.id}/export/labels/?format=jsonl")
    assert response["Content-Disposition"] == 'attachment; filename="helpfulness-labels.jsonl"'
    rows = lines_of(response)
    labels = [row for row in rows if row["kind"] == "label"]
    skips = [row for row in rows if row["kind"] == "skip"]
    assert sorted(row["id"] for row in labels) == sorted(Label.objects.filter(item__project=labelled).values_list("id", flat=True))
    assert [row["choice"] for row in labels] == ["A", "B", "tie"]
    assert [row["skip_reason"] for row in skips] == ["I cannot judge code"]
    assert {row["annotator"] for row in rows} == {annotator_pseudonym(annotator.id)}
    assert f"\"{annotator.username}\"".encode() not in body(admin_client.get(f"/api/projects/{labelled.id}/export/labels/"))
    first = labels[0]
    assert first["strength"] == 4 and first["rationale"] == "because" and first["seconds_spent"] == 3.5
    assert len(first["display_order"]) == 2 and set(first["display_models"]) == {"model-good", "model-bad"}
    winner = first["ranking"][0][0]
    assert winner == first["display_order"][0]  # "A" is the left response as shown


def test_labels_export_keeps_rejected_and_corrected_labels_with_the_reviewers_decision(labelled, admin_client, admin_user):
    from annotation.review import label_review

    first, second = Label.objects.filter(item__project=labelled).order_by("id")[:2]
    label_review(label_id=first.id, reviewer=admin_user, decision="reject", reason="random clicking")
    label_review(label_id=second.id, reviewer=admin_user, decision="correct", reason="misread",
                 corrected_ranking=[["A"], ["B"]])
    rows = {row["id"]: row for row in lines_of(admin_client.get(f"/api/projects/{labelled.id}/export/labels/"))
            if row["kind"] == "label"}
    assert rows[first.id]["review_status"] == "rejected" and rows[first.id]["corrected_ranking"] is None
    assert rows[second.id]["review_status"] == "corrected"
    assert rows[second.id]["corrected_ranking"] == [[second.display_order[0]], [second.display_order[1]]]
    assert {row["review_status"] for row_id, row in rows.items() if row_id not in (first.id, second.id)} == {"unreviewed"}


def test_labels_csv_has_the_same_rows_with_nested_fields_as_json(labelled, admin_client):
    response = admin_client.get(f"/api/projects/{labelled.id}/export/labels/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(body(response).decode())))
    jsonl = lines_of(admin_client.get(f"/api/projects/{labelled.id}/export/labels/"))
    assert [(row["kind"], int(row["id"]), row["annotator"]) for row in table] == [
        (row["kind"], row["id"], row["annotator"]) for row in jsonl
    ]
    assert json.loads(table[0]["ranking"]) == jsonl[0]["ranking"]
    assert table[-1]["skip_reason"] == "I cannot judge code" and table[-1]["strength"] == ""


def test_label_filters(labelled, admin_client, annotator, make_user):
    other = make_user("other")
    labelled.annotators.add(other)
    label_some(labelled, other, ["A"])
    url = f"/api/projects/{labelled.id}/export/labels/"
    only_other = lines_of(admin_client.get(url, {"annotators": str(other.id)}))
    assert [row["annotator"] for row in only_other] == [annotator_pseudonym(other.id)]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert lines_of(admin_client.get(url, {"since": future})) == []
    assert len(lines_of(admin_client.get(url, {"until": future}))) == 5  # 4 labels, 1 skip

    for params in ({"since": "yesterday"}, {"annotators": "1,x"}, {"format": "xml"}, {"format": "parquet"},
                   {"since": future, "until": future}):
        bad = admin_client.get(url, params)
        assert bad.status_code == 400, params
        assert set(bad.json()) >= {"detail", "code", "fields"}


@pytest.mark.parametrize("kind", ["pairs", "labels", "scores", "leaderboard"])
def test_check_answers_the_file_name_or_the_downloads_refusal_without_reading_rows(
    kind, labelled, admin_client, django_assert_max_num_queries
):
    """What the Export dialog asks before letting the browser download the file (check=1)."""
    if kind == "scores":
        completed_version(labelled, version=1, promote=True)
    url = f"/api/projects/{labelled.id}/export/{kind}/"
    download = admin_client.get(url)
    with django_assert_max_num_queries(6):  # access and the checks: the export's rows are not read
        checked = admin_client.get(url, {"check": "1"})
    assert checked.status_code == 200 and checked["Content-Type"] == "application/json"
    expected_name = download["Content-Disposition"].split('filename="')[1].rstrip('"')
    assert checked.json() == {"filename": expected_name, "content_type": download["Content-Type"]}
    bad = [{"format": "xml"}] + (
        [{"since": "yesterday"}] if kind in ("pairs", "labels") else [{"version": "7"}] if kind == "scores" else []
    )
    for params in bad:  # the same refusal the download gets
        refused, refused_download = admin_client.get(url, {"check": "1", **params}), admin_client.get(url, params)
        assert refused.status_code == refused_download.status_code and refused.status_code in (400, 404), params
        assert refused.json() == refused_download.json()
    unclear = admin_client.get(url, {"check": "maybe"})
    assert unclear.status_code == 400 and "check" in unclear.json()["fields"]


def completed_version(project, *, version, promote, records=None):
    run, _ = services.training_run_request(project=project, trigger=TrainingRun.Trigger.MANUAL)
    if records is not None:
        snapshot = snapshot_write(records)
        TrainingRun.objects.filter(id=run.id).update(snapshot_path=str(snapshot.path), snapshot_sha256=snapshot.sha256)
    services.training_run_start(run_id=run.id)
    return services.training_run_complete(
        run_id=run.id, version=version, checkpoint_path=f"x/v{version}", metrics={"accuracy": 0.8},
        champion_metrics={}, promote=promote, config={}, seed=0, code_version="test",
    )


def test_scores_of_the_champion_or_a_chosen_version(project, admin_client):
    champion = completed_version(project, version=1, promote=True)
    responses = list(Response.objects.filter(prompt__project=project).order_by("prompt_id", "id"))
    ResponseScore.objects.bulk_create([ResponseScore(response=r, model_version=champion, score=float(i)) for i, r in enumerate(responses)])

    response = admin_client.get(f"/api/projects/{project.id}/export/scores/")
    assert response["Content-Disposition"] == 'attachment; filename="helpfulness-scores-v1.jsonl"'
    rows = lines_of(response)
    assert [(row["response_id"], row["score"]) for row in rows] == [(r.id, float(i)) for i, r in enumerate(responses)]
    assert rows[0]["model_name"] == "model-good" and rows[0]["prompt_external_id"] == "Helpfulness-0"

    table = list(csv.DictReader(io.StringIO(body(admin_client.get(f"/api/projects/{project.id}/export/scores/?version=1&format=csv")).decode())))
    assert len(table) == len(responses)
    assert admin_client.get(f"/api/projects/{project.id}/export/scores/?version=7").status_code == 404
    assert admin_client.get(f"/api/projects/{project.id}/export/scores/?version=x").status_code == 400


def test_snapshot_download_is_the_trained_file(project, admin_client, settings, tmp_path):
    settings.MODEL_STORE_DIR = tmp_path / "models"
    version = completed_version(project, version=1, promote=True, records=[{"prompt_id": "1", "chosen": "a"}])
    response = admin_client.get(f"/api/model-versions/{version.id}/snapshot/")
    assert response.status_code == 200
    payload = body(response)
    assert hashlib.sha256(payload).hexdigest() == version.training_run.snapshot_sha256
    assert "attachment" in response["Content-Disposition"]

    os.remove(version.training_run.snapshot_path)
    gone = admin_client.get(f"/api/model-versions/{version.id}/snapshot/")
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"


@pytest.mark.parametrize("url", [
    "/api/projects/{project}/export/pairs/", "/api/projects/{project}/export/labels/",
    "/api/projects/{project}/export/scores/", "/api/projects/{project}/export/leaderboard/",
    "/api/model-versions/{version}/snapshot/",
])
def test_annotators_are_refused_and_other_projects_hidden(url, project, make_project, annotator, api_client_for, admin_user):
    version = completed_version(project, version=1, promote=True)
    denied = api_client_for(annotator).get(url.format(project=project.id, version=version.id))
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"

    outsider = make_project("Elsewhere")
    hidden = api_client_for(annotator).get(url.format(project=outsider.id, version=version.id + 999))
    assert hidden.status_code == 404
    assert api_client_for(admin_user).get(url.format(project=999999, version=999999)).status_code == 404


@pytest.mark.parametrize("kind,export_format,style,query", [
    ("pairs", "jsonl", "conversational", "export/pairs/?style=conversational"),
    ("labels", "csv", "plain", "export/labels/?format=csv"),
    ("labels", "jsonl", "plain", "export/labels/"),
])
def test_command_writes_the_same_bytes_as_the_api(kind, export_format, style, query, labelled, admin_client, tmp_path, capsys):
    out = tmp_path / "export.out"
    call_command("export_labels", str(labelled.id), kind=kind, export_format=export_format, style=style, out=str(out))
    assert out.read_bytes() == body(admin_client.get(f"/api/projects/{labelled.id}/{query}"))
    assert "rows written" in capsys.readouterr().err


def test_many_labels_stream_in_a_bounded_number_of_queries(make_project, make_user, admin_client, django_assert_max_num_queries):
    annotators = [make_user(f"a{index}") for index in range(6)]
    project = make_project("Big", annotators=annotators, prompts=30, labels_per_item=6)
    for person in annotators:
        label_some(project, person, ["A", "B"] * 14, skip_reason="tired")
    assert Label.objects.filter(item__project=project).count() == 6 * 28

    for path in ("export/labels/", "export/labels/?format=csv", "export/pairs/", "export/scores/?version=1"):
        if "scores" in path:
            completed_version(project, version=1, promote=True)
        with django_assert_max_num_queries(15):
            response = admin_client.get(f"/api/projects/{project.id}/{path}")
            assert isinstance(response, StreamingHttpResponse)
            content = b"".join(response.streaming_content)
        assert content


def test_a_date_filter_with_an_extreme_offset_is_read_in_utc_not_a_server_error(api_client_for, admin_user, project):
    # Found by the fuzz run: PostgreSQL refuses offsets beyond +-15:59, Python accepts them.
    url = f"/api/projects/{project.id}/export/labels/"
    response = api_client_for(admin_user).get(url, {"since": "0277-06-16T23:02:02+23:31"})
    assert response.status_code == 200
    b"".join(response.streaming_content)  # the query runs while streaming
    too_early = api_client_for(admin_user).get(url, {"since": "0001-01-01T00:00:00+01:00"})
    assert too_early.status_code == 400 and "since" in too_early.json()["fields"]
