"""Hostile imports: every bad input is a 400 naming line and field (never a 500), the
report stays small however bad the file, oversized uploads get a 413, concurrent
uploads of one file leave one winner and tell the others which lines clash, and lines
without an external_id never collide across files.

Run on PostgreSQL too (DATABASE_URL=postgres://...): it is the database that cannot
store NUL, lone surrogates or NaN, so there these tests prove no 500 escapes."""
import json
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connections

from annotation.importing import MAX_ERRORS_REPORTED, MAX_MESSAGE_CHARS, ImportValidationError
from annotation.models import ComparisonItem, Prompt, Response
from annotation.services import project_create, project_import_jsonl
from tests.conftest import prompt_record
from tests.real_services import require_postgresql

pytestmark = pytest.mark.django_db


@pytest.fixture
def project():
    return project_create(name="Hostile")


@pytest.fixture
def upload(api_client_for, admin_user, project):
    """POST bytes as the multipart ``file`` of an import, as the admin."""

    def post(body: bytes, name: str = "upload.jsonl"):
        return api_client_for(admin_user).post(
            f"/api/projects/{project.id}/imports/", {"file": SimpleUploadedFile(name, body)}, format="multipart"
        )

    return post


def nothing_imported():
    return Prompt.objects.count() == Response.objects.count() == ComparisonItem.objects.count() == 0


GOOD = prompt_record("good", "Q?", "yes", "no")
LONG = "m" * 201
DEEP_METADATA = '{"a": ' * 10_000 + "1" + "}" * 10_000
TOO_DEEP_FOR_COLUMNS = '{"a": ' * 40 + "1" + "}" * 40

# Raw JSON text, so the escapes reach json.loads exactly as a user's file would carry them.
HOSTILE_LINES = [
    ('{"external_id": "n1", "prompt": "q", "responses": [{"text": "a\\u0000b"}, {"text": "c"}]}', "responses[0].text"),
    ('{"external_id": "n2", "prompt": "q\\u0000", "responses": [{"text": "a"}, {"text": "c"}]}', "prompt"),
    (
        '{"external_id": "n3", "conversation": [{"role": "user", "content": "\\u0000"}], "responses": [{"text": "a"}, {"text": "c"}]}',
        "conversation[0].content",
    ),
    ('{"external_id": "n\\u00004", "prompt": "q", "responses": [{"text": "a"}, {"text": "c"}]}', "external_id"),
    ('{"external_id": "n5", "prompt": "q", "responses": [{"text": "a", "model": "m\\u0000"}, {"text": "c"}]}', "responses[0].model"),
    ('{"external_id": "n6", "prompt": "q", "metadata": {"k\\u0000": 1}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata"),
    ('{"external_id": "n7", "prompt": "q", "metadata": {"k": ["\\u0000"]}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.k[0]"),
    ('{"external_id": "s1", "prompt": "q", "responses": [{"text": "a\\ud800b"}, {"text": "c"}]}', "responses[0].text"),
    ('{"external_id": "s\\udfff2", "prompt": "q", "responses": [{"text": "a"}, {"text": "c"}]}', "external_id"),
    ('{"external_id": "s3", "prompt": "q", "metadata": {"k": "\\ud800"}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.k"),
    ('{"external_id": "s4", "prompt": "q", "responses": [{"text": "a", "model": "\\ud800"}, {"text": "c"}]}', "responses[0].model"),
    ('{"external_id": "f1", "prompt": "q", "metadata": {"score": NaN}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.score"),
    ('{"external_id": "f2", "prompt": "q", "metadata": {"x": Infinity}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.x"),
    ('{"external_id": "f3", "prompt": "q", "metadata": {"x": [-Infinity]}, "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.x[0]"),
    (
        '{"external_id": "f4", "prompt": "q", "responses": [{"text": "a"}, {"text": "c", "metadata": {"p": 1e400}}]}',
        "responses[1].metadata.p",
    ),
    (json.dumps({"external_id": "l1", "prompt": "q", "responses": [{"text": "a", "model": LONG}, {"text": "c"}]}), "responses[0].model"),
    (json.dumps({"external_id": "x" * 256, "prompt": "q", "responses": [{"text": "a"}, {"text": "c"}]}), "external_id"),
    (json.dumps({"external_id": 10**300, "prompt": "q", "responses": [{"text": "a"}, {"text": "c"}]}), "external_id"),
    ('{"external_id": "d1", "prompt": "q", "metadata": ' + DEEP_METADATA + ', "responses": [{"text": "a"}, {"text": "c"}]}', "(line)"),
    ('{"external_id": "d2", "prompt": "q", "metadata": ' + TOO_DEEP_FOR_COLUMNS + ', "responses": [{"text": "a"}, {"text": "c"}]}', "metadata.a"),
    ('{"external_id": 1' + "0" * 5000 + ', "prompt": "q", "responses": [{"text": "a"}, {"text": "c"}]}', "(line)"),
]


@pytest.mark.parametrize(("bad_line", "field"), HOSTILE_LINES, ids=[f"{i}-{field}" for i, (_, field) in enumerate(HOSTILE_LINES)])
def test_hostile_line_is_a_400_naming_line_and_field(upload, bad_line, field):
    response = upload((GOOD + "\n" + bad_line + "\n").encode())

    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert body["code"] == "invalid"
    assert (body["errors"][0]["line"], body["errors"][0]["field"][: len(field)]) == (2, field)
    assert "line 2" in body["detail"]
    assert len(response.content) < 5_000
    assert nothing_imported()


@pytest.mark.parametrize(("bad_line", "field"), HOSTILE_LINES[:3] + HOSTILE_LINES[7:8] + HOSTILE_LINES[11:12])
def test_hostile_line_through_the_service(project, bad_line, field):
    with pytest.raises(ImportValidationError) as raised:
        project_import_jsonl(project=project, lines=[GOOD, bad_line])
    assert (raised.value.errors[0].line, raised.value.errors[0].field) == (2, field)
    assert nothing_imported()


def test_what_postgresql_can_store_still_imports(upload):
    line = (
        '{"external_id": "ok-\\ud83d\\ude00", "prompt": "emoji \\ud83d\\ude00 and \\u00e9", '
        '"metadata": {"big": 1e300, "small": -1e-300, "n": 12345678901234567890, "deep": ' + '{"a": ' * 30 + "1" + "}" * 30 + "}, "
        '"responses": [{"text": "a", "model": "' + "m" * 200 + '"}, {"text": "b"}]}'
    )
    response = upload((line + "\r\n").encode())
    assert response.status_code == 201, response.content[:500]
    prompt = Prompt.objects.get()
    assert prompt.external_id == "ok-\U0001f600"
    assert float(prompt.metadata["big"]) == 1e300  # PostgreSQL's jsonb gives it back as an int


def test_garbage_file_gets_a_small_capped_report(upload):
    response = upload(b"x\n" * 102_400)  # 200 KB: every line is bad JSON

    assert response.status_code == 400
    assert len(response.content) < 20_000
    body = response.json()
    assert len(body["errors"]) == MAX_ERRORS_REPORTED
    assert body["error_count"] == 102_400
    assert "and 102399 more problems" in body["detail"]
    assert nothing_imported()


def test_every_kind_of_bad_line_counts_towards_the_cap(upload):
    kinds = [b"\xff\xfe\n", b"x\n", b"[1]\n", b'{"external_id": "e"}\n']
    response = upload(b"".join(kinds) * 1000)

    assert response.status_code == 400
    body = response.json()
    assert len(body["errors"]) == MAX_ERRORS_REPORTED
    assert body["error_count"] > 4000  # the last kind has more than one problem per line
    assert len(response.content) < 20_000


def test_long_messages_are_cut(project):
    long_id = "y" * 255
    line = prompt_record(long_id, "Q", "g", "b")
    with pytest.raises(ImportValidationError) as raised:
        project_import_jsonl(project=project, lines=[line, line], source="s" * 5000)
    assert all(len(error.message) <= MAX_MESSAGE_CHARS for error in raised.value.errors)
    assert len(raised.value.message) < 1_000


def test_upload_over_the_limit_is_a_413(upload, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1_000
    lines = "\n".join(prompt_record(f"p{i}", "Q?", "good", "bad") for i in range(40)).encode()

    just_over = upload(lines[:1_500])  # caught on the file's own size
    far_over = upload(lines * 20)  # refused on Content-Length, before the body is read
    for response in (just_over, far_over):
        assert response.status_code == 413
        body = response.json()
        assert body["code"] == "too_large"
        assert "1,000 bytes" in body["detail"]
        assert body["fields"] == {"file": ["must be at most 1,000 bytes"]}
    assert nothing_imported()


def test_files_without_external_ids_do_not_collide(upload):
    first = json.dumps({"prompt": "Q1", "responses": [{"text": "a"}, {"text": "b"}]}) + "\n"
    second = json.dumps({"prompt": "Q2", "responses": [{"text": "a"}, {"text": "b"}]}) + "\n"

    assert upload(first.encode(), "one.jsonl").status_code == 201
    assert upload(second.encode(), "two.jsonl").status_code == 201
    assert Prompt.objects.count() == 2

    # The same prompt again, even reformatted and renamed, is still caught as a duplicate.
    again = json.dumps({"responses": [{"text": "a"}, {"text": "b"}], "prompt": "Q1"}, indent=None, separators=(",", ":"))
    response = upload((again + "\n").encode(), "renamed.jsonl")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "external_id"
    assert "is already in project" in response.json()["errors"][0]["message"]
    assert Prompt.objects.count() == 2


def test_management_command_says_how_many_problems_were_not_listed(project, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"x\n" * 120)
    with pytest.raises(CommandError, match="and 119 more problems"):
        call_command("import_jsonl", project.name, str(bad))
    err = capsys.readouterr().err
    assert err.count(f"{bad}:") == MAX_ERRORS_REPORTED + 1
    assert "70 more problems not listed" in err


@pytest.mark.django_db(transaction=True)
def test_concurrent_uploads_of_one_file_leave_one_winner(api_client_for, admin_user, project):
    require_postgresql("Proving that imports into one project take turns")
    body = "\n".join(prompt_record(f"c{i}", f"Q{i}?", "good", "bad") for i in range(50)).encode()
    start = threading.Barrier(4)
    results, failures = [], []

    def race():
        try:
            start.wait()
            client = api_client_for(admin_user)
            response = client.post(
                f"/api/projects/{project.id}/imports/",
                {"file": SimpleUploadedFile("same.jsonl", body)},
                format="multipart",
            )
            results.append((response.status_code, response.json()))
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            failures.append(exc)
        finally:
            connections.close_all()  # each thread opened its own connection

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert sorted(status for status, _ in results) == [201, 400, 400, 400]
    for status, body_json in results:
        if status == 400:
            assert body_json["errors"][0] == {
                "line": 1,
                "field": "external_id",
                "message": "'c0' is already in project 'Hostile'",
            }
            assert body_json["error_count"] == 50
    assert Prompt.objects.filter(project=project).count() == 50
