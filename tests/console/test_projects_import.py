"""Import history: one ImportRecord per upload or command-line import, succeeded or failed; its API."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotation.importing import ImportValidationError
from annotation.models import ImportRecord, Project, Prompt
from annotation.services import project_import_jsonl
from tests.conftest import prompt_record

pytestmark = pytest.mark.django_db


def upload(client, project, name: str, content: bytes):
    return client.post(
        f"/api/projects/{project.id}/imports/", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def good_lines(*ids: str) -> bytes:
    return "".join(prompt_record(i, f"Question {i}?", f"good {i}", f"bad {i}") + "\n" for i in ids).encode()


def history(client, project, **params):
    response = client.get(f"/api/projects/{project.id}/imports/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_a_successful_upload_is_recorded_with_its_counts(api_client_for, admin_user, project):
    content = good_lines("n1", "n2")

    response = upload(api_client_for(admin_user), project, "batch-2.jsonl", content)

    assert response.status_code == 201, response.content
    record = ImportRecord.objects.filter(project=project).first()  # newest first
    assert (record.status, record.source, record.uploaded_by, record.size_bytes) == ("succeeded", "batch-2.jsonl", admin_user, len(content))
    assert (record.prompts, record.responses, record.items, record.error_count, record.errors) == (2, 4, 2, 0, [])


def test_a_refused_upload_is_recorded_with_its_first_errors_and_imports_nothing(api_client_for, admin_user, project):
    before = Prompt.objects.filter(project=project).count()
    content = good_lines("n1") + b'{"external_id": "n2", "prompt": "q", "responses": "nope"}\nnot json\n'

    response = upload(api_client_for(admin_user), project, "bad.jsonl", content)

    assert response.status_code == 400
    assert Prompt.objects.filter(project=project).count() == before
    record = ImportRecord.objects.filter(project=project).first()
    assert (record.status, record.source, record.uploaded_by, record.size_bytes) == ("failed", "bad.jsonl", admin_user, len(content))
    assert (record.prompts, record.responses, record.items, record.error_count) == (0, 0, 0, 2)
    assert record.errors == [
        {"line": 2, "field": "responses", "message": "must be a list of 2 to 9 responses"},
        {"line": 3, "field": "(line)", "message": "is not valid JSON: Expecting value at column 1"},
    ]


def test_a_file_full_of_errors_keeps_the_first_fifty_and_counts_them_all(api_client_for, admin_user, project):
    # Each line: conversation and responses missing.
    content = "".join(f'{{"external_id": "e{index}"}}\n' for index in range(80)).encode()

    assert upload(api_client_for(admin_user), project, "junk.jsonl", content).status_code == 400

    record = ImportRecord.objects.filter(project=project).first()
    assert (record.error_count, len(record.errors)) == (160, 50)
    assert {(error["line"], error["field"]) for error in record.errors[:2]} == {(1, "conversation"), (1, "responses")}
    assert record.errors[-1]["line"] == 25


def test_duplicates_of_prompts_already_in_the_project_are_recorded_as_a_failure(api_client_for, admin_user, project):
    existing = Prompt.objects.filter(project=project).values_list("external_id", flat=True).first()
    content = (prompt_record(existing, "Q?", "good", "bad") + "\n").encode()

    assert upload(api_client_for(admin_user), project, "again.jsonl", content).status_code == 400

    record = ImportRecord.objects.filter(project=project).first()
    assert record.status == "failed"
    assert record.errors == [{"line": 1, "field": "external_id", "message": f"'{existing}' is already in project '{project.name}'"}]


def test_an_upload_over_the_size_limit_is_recorded(api_client_for, admin_user, project, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 100
    content = good_lines("n1", "n2", "n3")

    response = upload(api_client_for(admin_user), project, "big.jsonl", content)

    assert response.status_code == 413
    record = ImportRecord.objects.filter(project=project).first()
    assert (record.status, record.source, record.size_bytes, record.error_count) == ("failed", "big.jsonl", len(content), 1)
    assert record.errors[0]["line"] is None and record.errors[0]["field"] == "file"


def test_an_archived_project_refuses_imports_and_records_the_refusal(api_client_for, admin_user, project):
    Project.objects.filter(id=project.id).update(status=Project.Status.ARCHIVED)

    response = upload(api_client_for(admin_user), project, "late.jsonl", good_lines("n1"))

    assert response.status_code == 409
    assert "archived" in response.json()["detail"]
    record = ImportRecord.objects.filter(project=project).first()
    assert (record.status, record.errors[0]["field"]) == ("failed", "file")


def test_a_paused_project_still_takes_imports(api_client_for, admin_user, project):
    Project.objects.filter(id=project.id).update(status=Project.Status.PAUSED)
    assert upload(api_client_for(admin_user), project, "more.jsonl", good_lines("n1")).status_code == 201


def test_history_is_newest_first_and_paginated(api_client_for, admin_user, project):
    client = api_client_for(admin_user)
    upload(client, project, "second.jsonl", good_lines("n1"))
    upload(client, project, "third.jsonl", b"nope\n")

    page = history(client, project, page_size=2)

    assert [row["source"] for row in page["results"]] == ["third.jsonl", "second.jsonl"]
    assert page["results"][0]["status"] == "failed" and page["results"][0]["uploaded_by"] == "boss"
    assert page["results"][0]["errors"] == [{"line": 1, "field": "(line)", "message": "is not valid JSON: Expecting value at column 1"}]
    rest = client.get(page["next"]).json()
    # The fixture's own import, by the service with no user.
    assert [(row["source"], row["uploaded_by"]) for row in rest["results"]] == [("fixture.jsonl", None)]
    assert rest["next"] is None


def test_history_costs_the_same_however_many_imports(api_client_for, admin_user, project, django_assert_num_queries):
    client = api_client_for(admin_user)
    for index in range(5):
        upload(client, project, f"f{index}.jsonl", b"nope\n")
    with django_assert_num_queries(2):  # the project, one page of records with their uploaders
        assert len(history(client, project)["results"]) == 6


@pytest.mark.parametrize("params", [{"page_size": "0"}, {"page_size": "x" * 5000}, {"cursor": "a" * 5000}])
def test_bad_history_parameters_are_a_400(api_client_for, admin_user, project, params):
    response = api_client_for(admin_user).get(f"/api/projects/{project.id}/imports/", params)
    assert response.status_code == 400


def test_a_nul_cursor_is_no_server_error(api_client_for, admin_user, project):
    # Decodes to no position at all: the first page, as DRF reads it.
    assert api_client_for(admin_user).get(f"/api/projects/{project.id}/imports/", {"cursor": "\x00"}).status_code == 200


def test_history_checks_access(api_client_for, make_user, make_project, annotator, admin_user, project):
    outsider = make_user("outsider")
    other = make_project("Elsewhere", annotators=[outsider], prompts=1)
    reviewer = make_user("rev")
    project.reviewers.add(reviewer)
    url = f"/api/projects/{project.id}/imports/"

    assert APIClient().get(url).status_code == 401
    assert api_client_for(outsider).get(url).status_code == 404
    assert api_client_for(annotator).get(url).status_code == 403
    assert api_client_for(reviewer).get(url).status_code == 404
    assert api_client_for(admin_user).get(url).status_code == 200
    # An annotator of one project cannot read another's history by its id, nor upload there.
    assert api_client_for(annotator).get(f"/api/projects/{other.id}/imports/").status_code == 404
    assert upload(api_client_for(annotator), other, "x.jsonl", good_lines("z")).status_code == 404
    assert upload(api_client_for(annotator), project, "x.jsonl", good_lines("z")).status_code == 403
    assert ImportRecord.objects.filter(source="x.jsonl").count() == 0


def test_the_management_command_records_its_imports(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_bytes(good_lines("a"))
    call_command("import_jsonl", "CLI project", str(good), "--create")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"external_id": "c"}\n')
    with pytest.raises(CommandError):
        call_command("import_jsonl", "CLI project", str(bad))

    failed, succeeded = ImportRecord.objects.filter(project__name="CLI project")
    assert (succeeded.status, succeeded.source, succeeded.uploaded_by, succeeded.prompts) == (
        "succeeded", f"manage.py import_jsonl {good}", None, 1
    )
    assert (failed.status, failed.source, failed.error_count) == ("failed", f"manage.py import_jsonl {bad}", 2)


def test_hostile_names_and_messages_are_stored_safely(admin_user):
    from annotation.services import project_create

    project = project_create(name="Hostile")
    with pytest.raises(ImportValidationError):
        project_import_jsonl(
            project=project, lines=['{"external_id": "x\\u0000y"}'], source="bad\x00name\ud800.jsonl", uploaded_by=admin_user
        )
    summary = project_import_jsonl(project=project, lines=[good_lines("ok").decode()], record_source="s" * 1000)

    failed, succeeded = ImportRecord.objects.filter(project=project).order_by("id")
    assert failed.source == "badname?.jsonl"
    assert succeeded.source == "s" * 255 and summary.prompts == 1
    assert json.dumps(failed.errors)  # stored and read back as plain JSON
