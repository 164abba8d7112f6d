"""The results page's Export dialog and its Models (leaderboard) card.

An admin downloads files through the dialog as a person would (Playwright's download event),
and the test reads what was saved. With WORKBENCH_SCREENSHOTS naming a folder, the tests also
save results-export.png (the open dialog) and results-leaderboard.png (the card) there:

    WORKBENCH_SCREENSHOTS=docs/screenshots pytest tests/browser/test_results_export.py
"""
import csv
import io
import json
import os
from pathlib import Path

import pytest

from tests.browser.helpers import record
from tests.labelling import label_in_order, make_champion

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each prompt pits two models against each other; the first-imported response is the better
# model's, and label_in_order pins display order, so "A" always picks it.
MATCHES = [("m-alpha", "m-beta"), ("m-beta", "m-gamma"), ("m-alpha", "m-gamma")]


def match_lines(count: int) -> list[str]:
    lines = []
    for index in range(count):
        better, worse = MATCHES[index % len(MATCHES)]
        lines.append(record(f"p{index}", f"Question {index}?", [(f"better answer {index}", better), (f"worse answer {index}", worse)]))
    return lines


def skip_next(project, user, reason="unclear"):
    from annotation.assignment import assignment_claim_next
    from annotation.services import assignment_skip

    assignment = assignment_claim_next(project=project, annotator=user)
    assignment_skip(assignment_id=assignment.id, annotator=user, reason=reason)


@pytest.fixture
def labelled(browser_user, make_browser_project):
    """Two annotators label six items (always the better model), the second also skips one."""
    first, second = browser_user("annotator-ursula"), browser_user("annotator-vincent")
    project = make_browser_project(name="Model comparison", annotators=[first, second], lines=match_lines(7), labels_per_item=2)
    label_in_order(project, first, "AAAAAA")
    label_in_order(project, second, "AAAAAA")
    skip_next(project, second)
    return project, first, second


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def save(page, name: str, *, selector: str | None = None) -> Path:
        page.mouse.move(0, 0)  # no hover effects in the picture
        page.wait_for_timeout(250)
        page.evaluate("document.getElementById('toasts').replaceChildren()")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: horizontal overflow"
        path = folder / f"{name}.png"
        if selector:
            page.locator(selector).screenshot(path=str(path))
        else:
            page.screenshot(path=str(path))
        return path

    return save


def open_export(page, live_server, project):
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.click("[data-testid=export-open]")
    page.wait_for_selector("[data-testid=export-dialog][open]")


def download(page) -> tuple[str, bytes]:
    """Clicks Download and returns the saved file's suggested name and bytes.

    The browser downloads the export URL itself (the dialog only checked it first), so the file
    streams to disk: not a blob: URL the page built from a body it held in memory.
    """
    with page.expect_download() as info:
        page.click("[data-testid=export-download]")
    saved = info.value
    assert saved.url == page.inner_text("[data-testid=export-url]"), saved.url
    return saved.suggested_filename, Path(saved.path()).read_bytes()


def test_admin_downloads_labels_and_skips_as_csv(page, live_server, login, browser_user, labelled, shots):
    from annotation.export import LABEL_COLUMNS

    project, first, second = labelled
    admin = browser_user("root", admin=True)
    login(admin)
    open_export(page, live_server, project)
    page.check("[name=kind][value=labels]")
    page.select_option("[data-testid=export-format]", "csv")
    # The pair-only controls are gone, the filters stay.
    assert page.locator("[data-testid=export-style]").is_hidden()
    assert page.locator("[data-testid=export-since]").is_visible()
    url = page.inner_text("[data-testid=export-url]")
    assert url == f"{live_server.url}/api/projects/{project.id}/export/labels/?format=csv"
    shots(page, "results-export")

    name, body = download(page)
    assert name.endswith(".csv")
    text = body.decode("utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == LABEL_COLUMNS
    assert len(rows) - 1 == 12 + 1  # 12 labels and one skip
    assert sorted(row[0] for row in rows[1:]).count("skip") == 1
    for username in (first.username, second.username, admin.username):
        assert username not in text  # annotators appear by pseudonym only
    assert page.inner_text("[data-testid=export-status]").startswith(f"Downloading {name}")

    # Only one annotator's rows: the checkbox becomes ?annotators=<id>.
    page.check(f"[name=annotators][value='{second.id}']")
    assert page.inner_text("[data-testid=export-url]").endswith(f"&annotators={second.id}")
    _, body = download(page)
    assert len(list(csv.reader(io.StringIO(body.decode("utf-8"))))) - 1 == 6 + 1


def test_admin_downloads_conversational_pairs(page, live_server, login, browser_user, labelled):
    from training.export import pair_spec_for
    from training.pairs import project_pair_records

    project, _, _ = labelled
    login(browser_user("root", admin=True))
    open_export(page, live_server, project)
    page.check("[name=kind][value=pairs]")
    page.select_option("[data-testid=export-format]", "jsonl")
    page.select_option("[data-testid=export-style]", "conversational")
    page.select_option("[data-testid=export-ties]", "0")
    assert page.inner_text("[data-testid=export-url]").endswith("/export/pairs/?format=jsonl&style=conversational&ties=0")

    name, body = download(page)
    assert name.endswith(".jsonl")
    lines = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    assert len(lines) == len(project_pair_records(project, pair_spec_for(project, ties=False))) > 0
    for line in lines:
        assert isinstance(line["prompt"], list) and line["prompt"][0]["role"] == "user"
        assert [message["role"] for message in line["chosen"]] == ["assistant"]
        assert [message["role"] for message in line["rejected"]] == ["assistant"]
        assert line["chosen"][0]["content"].startswith("better answer")


def test_admin_downloads_pairs_as_parquet_when_the_server_offers_it(page, live_server, login, browser_user, labelled):
    project, _, _ = labelled
    login(browser_user("root", admin=True))
    probe = page.request.get(f"{live_server.url}/api/projects/{project.id}/export/pairs/?format=parquet")
    if probe.status != 200:
        pytest.skip(f"the server does not export Parquet yet ({probe.status})")
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")

    open_export(page, live_server, project)
    page.check("[name=kind][value=pairs]")
    page.select_option("[data-testid=export-format]", "parquet")
    name, body = download(page)
    assert name.endswith(".parquet")
    table = pyarrow_parquet.read_table(io.BytesIO(body))
    assert {"prompt", "chosen", "rejected"} <= set(table.column_names) and table.num_rows > 0


def test_a_rejected_filter_shows_the_servers_error_and_downloads_nothing(page, live_server, login, browser_user, labelled):
    project, _, _ = labelled
    login(browser_user("root", admin=True))
    open_export(page, live_server, project)
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    page.check("[name=kind][value=labels]")
    page.fill("[data-testid=export-since]", "2026-03-02T10:00")
    page.fill("[data-testid=export-until]", "2026-03-01T10:00")
    url = page.inner_text("[data-testid=export-url]")
    assert "since=2026-03-02T10%3A00%3A00" in url and "until=2026-03-01T10%3A00%3A00" in url  # ISO 8601, with offset
    page.click("[data-testid=export-download]")
    page.wait_for_selector("[data-testid=export-error]:not([hidden])")
    error = page.inner_text("[data-testid=export-error]")
    assert "Invalid export filters." in error and "To: Must be after since." in error
    assert page.get_attribute("[data-testid=export-until]", "aria-invalid") == "true"

    # Fixing the dates clears the mark; an out-of-range agreement threshold is the server's to refuse too.
    page.fill("[data-testid=export-until]", "2026-03-03T10:00")
    page.fill("[data-testid=export-agreement-below]", "2")
    page.click("[data-testid=export-download]")
    page.wait_for_function("() => document.querySelector('[data-testid=export-error]').textContent.includes('Agreement below')")
    assert page.get_attribute("[data-testid=export-until]", "aria-invalid") is None
    page.wait_for_timeout(300)
    assert downloads == []

    # Esc closes the dialog and gives focus back to the Export button.
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-testid=export-dialog]:not([open])", state="attached")
    assert page.evaluate("document.activeElement.dataset.testid") == "export-open"


def test_scores_offer_the_loaded_versions(page, live_server, login, browser_user, labelled, sent_tasks):
    project, _, _ = labelled
    make_champion(project, {"m-alpha": [1.0, 2.0], "m-beta": [0.0], "m-gamma": [0.5, 0.7]})
    login(browser_user("root", admin=True))
    open_export(page, live_server, project)
    page.check("[name=kind][value=scores]")
    page.wait_for_selector("[data-testid=export-version] option[value='1']", state="attached")
    assert page.locator("[data-testid=export-since]").is_hidden()
    page.select_option("[data-testid=export-format]", "csv")
    page.select_option("[data-testid=export-version]", "1")
    assert page.inner_text("[data-testid=export-url]").endswith("/export/scores/?format=csv&version=1")
    _, body = download(page)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    alpha = [row["score"] for row in rows if row["model_name"] == "m-alpha"]
    assert len(alpha) == 5 and sorted(float(score) for score in alpha if score) == [1.0, 2.0]  # three not scored


def test_admin_downloads_the_leaderboard_when_the_server_offers_it(page, live_server, login, browser_user, labelled):
    project, _, _ = labelled
    login(browser_user("root", admin=True))
    probe = page.request.get(f"{live_server.url}/api/projects/{project.id}/export/leaderboard/?format=csv")
    if probe.status != 200:
        pytest.skip(f"the server does not export the leaderboard yet ({probe.status})")

    open_export(page, live_server, project)
    page.check("[name=kind][value=leaderboard]")
    assert page.locator("[data-testid=export-since]").is_hidden() and page.locator("[data-testid=export-version]").is_hidden()
    page.select_option("[data-testid=export-format]", "csv")
    assert page.inner_text("[data-testid=export-url]").endswith("/export/leaderboard/?format=csv")
    _, body = download(page)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert [row["model"] for row in rows] == ["m-alpha", "m-beta", "m-gamma"]


def test_leaderboard_card_ranks_the_models_with_charts_and_win_rates(
    page, live_server, login, browser_user, labelled, sent_tasks, shots
):
    from tests.browser.test_security_browser import violations, watch_csp

    project, _, _ = labelled
    # The reward model puts gamma above beta, unlike the annotators.
    make_champion(project, {"m-alpha": [2.0, 1.8, 2.2, 2.1], "m-beta": [0.2, 0.4, 0.1, 0.3], "m-gamma": [0.9, 1.1, 1.0, 0.8]})
    console = watch_csp(page)
    login(browser_user("root", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector("[data-testid=leaderboard][data-loaded=true]")

    order = page.eval_on_selector_all("[data-region=leaderboard-rows] tr", "rows => rows.map((row) => row.dataset.model)")
    assert order == ["m-alpha", "m-beta", "m-gamma"]
    first = page.inner_text("[data-region=leaderboard-rows] tr[data-model=m-alpha]").split("\t")
    assert first[0] == "1" and first[1] == "m-alpha" and first[3] == "8"  # each model met each other in 4 labels
    assert "±" in first[4]
    assert page.inner_text("[data-region=leaderboard-agreement]").startswith("The reward model orders 2 of 3 model pairs as people do")
    assert "12 comparisons" in page.inner_text("[data-region=leaderboard-summary]")
    assert page.locator("[data-testid=leaderboard-empty]").is_hidden()

    # Chart.js is served by the app and has drawn both charts, in people's order.
    assert page.evaluate("typeof window.Chart") == "function"
    for testid in ("leaderboard-rating-chart", "leaderboard-reward-chart"):
        labels = page.evaluate(
            "(id) => { const chart = Chart.getChart(document.querySelector(`[data-testid=${id}]`)); return chart && chart.data.labels; }",
            testid,
        )
        assert labels == ["m-alpha", "m-beta", "m-gamma"], testid
    assert page.evaluate("document.querySelector('[data-testid=leaderboard-rating-chart]').width") > 0

    # The win-rate matrix is folded away until asked for.
    assert page.locator("[data-testid=win-rate]").is_hidden()
    page.click("[data-region=win-rate-details] summary")
    cell = page.locator("[data-testid=win-rate] tr[data-model=m-alpha] td").nth(1)
    assert cell.inner_text() == "100 %" and "heat--10" in cell.get_attribute("class")
    assert violations(page, console) == []
    page.locator("[data-testid=leaderboard]").scroll_into_view_if_needed()
    shots(page, "results-leaderboard", selector="[data-testid=leaderboard]")


def test_leaderboard_card_without_model_comparisons(page, live_server, login, browser_user, make_browser_project):
    project = make_browser_project(lines=[record("p1", "Q?", [("one", "m1"), ("two", "m2")])])
    login(browser_user("root", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_selector("[data-testid=leaderboard][data-loaded=true]")
    assert page.inner_text("[data-testid=leaderboard-empty]") == "No model-vs-model comparisons yet"
    assert page.locator("[data-region=leaderboard-body]").is_hidden()


def test_admin_downloads_the_data_a_version_was_trained_on(page, live_server, login, browser_user, labelled, sent_tasks, settings, tmp_path):
    import hashlib

    from training.export import pair_spec_for
    from training.models import TrainingRun
    from training.pairs import project_pair_records
    from training.snapshots import snapshot_write

    project, _, _ = labelled
    settings.MODEL_STORE_DIR = str(tmp_path / "models")
    version = make_champion(project, {})
    snapshot = snapshot_write(project_pair_records(project, pair_spec_for(project)))
    TrainingRun.objects.filter(id=version.training_run_id).update(snapshot_path=str(snapshot.path), snapshot_sha256=snapshot.sha256)

    login(browser_user("root", admin=True))
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    with page.expect_download() as info:
        page.click(f"[data-testid=snapshot-{version.id}]")
    body = Path(info.value.path()).read_bytes()
    assert hashlib.sha256(body).hexdigest() == snapshot.sha256
    pairs = [json.loads(line) for line in body.decode().splitlines()]
    assert len(pairs) == 12 and {"chosen", "rejected", "context"} <= pairs[0].keys()
