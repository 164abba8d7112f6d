"""Page access and the admin results page, in a real browser."""
import pytest

from tests.browser.helpers import record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def lines() -> list[str]:
    return [
        record("r1", "Which planet is largest?", [("Jupiter is the largest planet.", "model-one"), ("Saturn.", "model-two")]),
    ]


def test_pages_check_access(page, live_server, login, browser_user, make_browser_project):
    annotator = browser_user("plain-annotator")
    outsider = browser_user("outsider")
    project = make_browser_project(annotators=[annotator], lines=lines())
    other = make_browser_project(name="Not yours", annotators=[outsider], lines=lines())

    anonymous = page.goto(f"{live_server.url}/projects/{project.id}/annotate/")
    assert "/accounts/login/" in anonymous.url

    login(annotator)
    home = page.inner_text("main")
    assert project.name in home and other.name not in home
    assert page.locator("text=Results").count() == 0
    assert page.goto(f"{live_server.url}/projects/{other.id}/annotate/").status == 404
    assert page.goto(f"{live_server.url}/projects/{project.id}/results/").status == 403

    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")


def test_results_page_follows_training_without_reload(page, live_server, login, browser_user, make_browser_project, monkeypatch, sent_tasks):
    from annotation.models import Response
    from training import services
    from training.models import TrainingRun

    # No worker in this test: the test plays the worker's part through the services.
    admin = browser_user("results-admin", admin=True)
    project = make_browser_project(lines=lines())
    responses = {response.model_name: response for response in Response.objects.filter(prompt__project=project)}

    login(admin)
    page.click(f"[data-testid=project-{project.id}] >> text=Results")
    page.wait_for_function("() => document.querySelector('[data-testid=champion-version]').textContent === 'none'")
    for response in responses.values():
        assert page.inner_text(f"[data-testid=score-{response.id}]") == "—"
    assert "model-one" in page.inner_text("[data-region=responses]")  # admins may see model names
    page.evaluate("window.__sameDocument = true")

    page.click("[data-testid=train-now]")
    page.wait_for_selector("[data-status=queued]")
    run = TrainingRun.objects.get(project=project)

    services.training_run_start(run_id=run.id)
    services.training_run_report_progress(run_id=run.id, progress={"step": 3, "total_steps": 10, "loss": 0.61, "eta_s": 12})
    page.wait_for_selector(f"[data-testid=run-{run.id}][data-status=running] >> text=step 3/10")

    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="/nowhere", metrics={"accuracy": 0.75, "loss": 0.5, "pairs": 4},
        champion_metrics={}, promote=True, config={}, seed=0, code_version="test",
    )
    page.wait_for_function("() => document.querySelector('[data-testid=champion-version]').textContent.includes('1')")
    assert "75.0%" in page.inner_text(".stats")

    services.response_scores_store(version_id=version.id, scores={responses["model-one"].id: 0.75, responses["model-two"].id: -0.25})
    page.wait_for_function(f"() => document.querySelector('[data-testid=score-{responses['model-one'].id}]').textContent === '0.750'")
    assert page.inner_text(f"[data-testid=score-{responses['model-two'].id}]") == "-0.250"
    assert page.evaluate("window.__sameDocument") is True


def test_best_response_is_marked_only_when_the_model_clearly_prefers_it(
    page, live_server, login, browser_user, make_browser_project, sent_tasks
):
    from annotation.models import Response
    from training import services

    admin = browser_user("results-admin", admin=True)
    project = make_browser_project(lines=[
        record("close", "Capital of France?", [("Paris.", "model-one"), ("It is Paris.", "model-two")]),
        record("clear", "2 + 2?", [("4", "model-one"), ("5", "model-two"), ("22", "model-three")]),
    ])
    run, _ = services.training_run_request(project=project, trigger="manual")
    services.training_run_start(run_id=run.id)
    version = services.training_run_complete(
        run_id=run.id, version=1, checkpoint_path="/nowhere", metrics={"accuracy": 0.75, "loss": 0.5, "pairs": 4},
        champion_metrics={}, promote=True, config={}, seed=0, code_version="test",
    )
    ids = {(r.prompt.external_id, r.model_name): r.id for r in Response.objects.filter(prompt__project=project).select_related("prompt")}
    scores = {
        ids["close", "model-one"]: 0.51, ids["close", "model-two"]: 0.50,  # P(first wins) = 0.50: a coin toss
        ids["clear", "model-one"]: 1.20, ids["clear", "model-two"]: -0.30, ids["clear", "model-three"]: -2.0,  # P = 0.82
    }
    services.response_scores_store(version_id=version.id, scores=scores)
    services.model_version_scoring_finish(version_id=version.id)

    login(admin)
    page.goto(f"{live_server.url}/projects/{project.id}/results/")
    page.wait_for_function(f"() => document.querySelector('[data-testid=score-{ids['clear', 'model-one']}]')?.textContent === '1.200'")
    assert page.locator("td.is-best").count() == 1
    best = page.locator(f"[data-testid=score-{ids['clear', 'model-one']}]")
    assert "is-best" in best.get_attribute("class")
    assert "P ≥ 0.82" in best.get_attribute("title")
    close = page.get_attribute(f"[data-testid=score-{ids['close', 'model-one']}]", "title")
    assert "only with P = 0.50" in close and "no clear best" in close
