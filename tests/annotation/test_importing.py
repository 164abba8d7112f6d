import json

import pytest
from django.core.management import CommandError, call_command

from annotation.importing import ImportValidationError
from annotation.models import ComparisonItem, Project, Prompt, Response
from annotation.services import project_create, project_import_jsonl
from tests.conftest import prompt_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_project():
    return project_create(name="Empty")


def test_import_creates_prompts_responses_and_pairwise_items(empty_project):
    three = json.dumps(
        {
            "external_id": "multi",
            "conversation": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "Name a colour."},
            ],
            "metadata": {"topic": "colours"},
            "responses": [{"text": "Red."}, {"text": "Blue.", "model": "m2"}, {"text": "Green.", "model": "m3"}],
        }
    )
    summary = project_import_jsonl(project=empty_project, lines=[prompt_record("p1", "Q?", "good", "bad"), "", three])

    assert summary.as_dict() == {"prompts": 2, "responses": 5, "items": 1 + 3}
    prompt = Prompt.objects.get(external_id="multi")
    assert prompt.conversation[-1] == {"role": "user", "content": "Name a colour."}
    assert prompt.metadata == {"topic": "colours"}
    assert [item.responses.count() for item in ComparisonItem.objects.filter(prompt=prompt)] == [2, 2, 2]


def test_prompt_shorthand_is_a_single_user_turn(empty_project):
    line = json.dumps({"external_id": "s", "prompt": "Why?", "responses": [{"text": "a"}, {"text": "b"}]})
    project_import_jsonl(project=empty_project, lines=[line])
    assert Prompt.objects.get().conversation == [{"role": "user", "content": "Why?"}]


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        ("{not json", "(line)"),
        (json.dumps({"external_id": "x", "responses": [{"text": "a"}, {"text": "b"}]}), "conversation"),
        (json.dumps({"external_id": "x", "prompt": "q", "responses": [{"text": "only one"}]}), "responses"),
        (json.dumps({"external_id": "x", "prompt": "q", "responses": [{"text": "a"}, {"text": ""}]}), "responses[1].text"),
        (
            json.dumps({"external_id": "x", "conversation": [{"role": "robot", "content": "hi"}], "responses": [{"text": "a"}, {"text": "b"}]}),
            "conversation[0].role",
        ),
        (
            json.dumps({"external_id": "x", "conversation": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "responses": [{"text": "a"}, {"text": "b"}]}),
            "conversation[1].role",
        ),
    ],
)
def test_bad_line_names_line_and_field_and_imports_nothing(empty_project, bad_line, field):
    good = prompt_record("ok", "Q?", "good", "bad")
    with pytest.raises(ImportValidationError) as raised:
        project_import_jsonl(project=empty_project, lines=[good, good.replace('"ok"', '"ok2"'), bad_line], source="batch.jsonl")

    error = raised.value.errors[0]
    assert (error.line, error.field) == (3, field)
    assert raised.value.message.startswith(f"batch.jsonl, line 3, field '{field}'")
    assert Prompt.objects.count() == Response.objects.count() == ComparisonItem.objects.count() == 0


def test_duplicate_external_id_in_file_and_in_project_are_rejected(empty_project):
    line = prompt_record("dup", "Q?", "good", "bad")
    with pytest.raises(ImportValidationError) as raised:
        project_import_jsonl(project=empty_project, lines=[line, line])
    assert raised.value.errors[0].line == 2
    assert "already appears on line 1" in raised.value.errors[0].message

    project_import_jsonl(project=empty_project, lines=[line])
    with pytest.raises(ImportValidationError) as raised:
        project_import_jsonl(project=empty_project, lines=[prompt_record("new", "Q", "g", "b"), line])
    assert (raised.value.errors[0].line, raised.value.errors[0].field) == (2, "external_id")
    assert Prompt.objects.count() == 1


def test_management_command_imports_and_reports_bad_lines(tmp_path, capsys):
    good = tmp_path / "good.jsonl"
    good.write_text(prompt_record("a", "Q?", "good", "bad") + "\n")
    call_command("import_jsonl", "CLI project", str(good), "--create")
    assert Project.objects.get(name="CLI project").prompts.count() == 1

    bad = tmp_path / "bad.jsonl"
    bad.write_text(prompt_record("b", "Q?", "good", "bad") + "\n" + '{"external_id": "c"}\n')
    with pytest.raises(CommandError, match="line 2"):
        call_command("import_jsonl", "CLI project", str(bad))
    assert f"{bad}:2: conversation" in capsys.readouterr().err
    assert Project.objects.get(name="CLI project").prompts.count() == 1


def test_api_import_is_admin_only_and_reports_errors(api_client_for, admin_user, annotator, empty_project):
    from django.core.files.uploadedfile import SimpleUploadedFile

    empty_project.annotators.add(annotator)
    url = f"/api/projects/{empty_project.id}/imports/"
    body = (prompt_record("a", "Q?", "good", "bad") + "\n").encode()

    response = api_client_for(annotator).post(url, {"file": SimpleUploadedFile("a.jsonl", body)}, format="multipart")
    assert response.status_code == 403

    response = api_client_for(admin_user).post(url, {"file": SimpleUploadedFile("a.jsonl", body)}, format="multipart")
    assert response.status_code == 201
    assert response.json() == {"prompts": 1, "responses": 2, "items": 1}

    bad = body + b'{"external_id": "b", "prompt": "q", "responses": "nope"}\n'
    response = api_client_for(admin_user).post(url, {"file": SimpleUploadedFile("b.jsonl", bad)}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"line": 2, "field": "responses", "message": "must be a list of 2 to 9 responses"}
    assert "b.jsonl, line 2" in response.json()["detail"]
    assert Prompt.objects.count() == 1
