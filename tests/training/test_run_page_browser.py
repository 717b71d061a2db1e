"""The run page in a real browser: progress, curves and the log update live while the worker
reports, and Cancel asks the run to stop."""

import re

import pytest
from playwright.sync_api import expect

from tests.training.helpers import judged_pairs
from training.models import TrainingRun
from training.services import runs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_run_page_follows_a_run_live_and_cancels_it(
    live_server, page, project, annotator, project_admin, csp_violations
):
    judged_pairs(project, annotator, 3)
    run = runs.run_create(project=project, kind="reward_model", config={"model": "minilm-l6"})
    runs.run_claim(run_id=run.pk, worker_id="w")

    page.goto(f"{live_server.url}/accounts/login/?next=/training/{project.slug}/runs/{run.pk}/")
    page.fill("input[name=username]", project_admin.username)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    expect(page.locator("[data-field=state]")).to_have_text("Running")
    expect(page.locator("#chart-loss")).to_contain_text("No points yet")

    for step in range(1, 6):
        event = {"event": "step", "step": step, "total_steps": 10, "loss": 1 / step, "eta_seconds": 50.0}
        runs.run_record_event(run_id=run.pk, worker_id="w", event=event)
    runs.run_record_event(
        run_id=run.pk, worker_id="w", event={"event": "eval", "step": 5, "metrics": {"accuracy": 0.7}}
    )
    expect(page.locator("[data-field=step]")).to_have_text("5", timeout=10_000)
    expect(page.locator("[data-field=eta]")).to_contain_text("50 s left")
    expect(page.locator("#chart-loss path")).to_have_count(1)
    expect(page.locator("#chart-accuracy path")).to_have_count(1)
    expect(page.locator("#run-log")).to_contain_text("step 5/10 loss=0.2000")
    assert page.evaluate("document.getElementById('run-bar').value") == pytest.approx(0.5)

    page.click("#cancel-form button")
    expect(page.locator("#cancel-form button")).to_have_text(re.compile("Stopping"))
    assert TrainingRun.objects.get(pk=run.pk).cancel_requested
    assert runs.run_record_event(run_id=run.pk, worker_id="w", event={"event": "step", "step": 6}) is True
    runs.run_finish(
        run_id=run.pk, worker_id="w", checkpoint_dir="/tmp/ck-6", steps=6, metrics={}, stopped=True
    )
    page.reload()
    expect(page.locator("[data-field=state]")).to_have_text("Cancelled")
    expect(page.locator("#cancel-form")).to_have_count(0)
    assert csp_violations == []  # live updates and SVG charts run under the Content-Security-Policy


def test_the_run_page_draws_an_rl_runs_curves_live(
    live_server, page, csp_violations, project, annotator, project_admin
):
    from tests.training.helpers import ModelVersionFactory

    judged_pairs(project, annotator, 3)
    ModelVersionFactory(project=project, kind="reward", checkpoint_path="/srv/rm", status="active_scorer")
    run = runs.run_create(project=project, kind="ppo", config={"model": "smollm2-135m"})
    runs.run_claim(run_id=run.pk, worker_id="w")

    page.goto(f"{live_server.url}/accounts/login/?next=/training/{project.slug}/runs/{run.pk}/")
    page.fill("input[name=username]", project_admin.username)
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    expect(page.locator("#chart-reward")).to_contain_text("No points yet")
    for step in range(1, 4):
        metrics = {"reward": 0.1 * step, "reward_std": 0.5, "kl": 0.01 * step, "kl_coef": 0.05,
                   "clip_fraction": 0.1, "approx_kl": 0.001}  # fmt: skip
        event = {"event": "step", "step": step, "total_steps": 10, "loss": 1 / step, "metrics": metrics}
        runs.run_record_event(run_id=run.pk, worker_id="w", event=event)
    expect(page.locator("[data-field=step]")).to_have_text("3", timeout=10_000)
    expect(page.locator("#chart-reward path")).to_have_count(2)  # reward and reward_std
    expect(page.locator("#chart-kl path")).to_have_count(2)
    expect(page.locator("#chart-ppo-clipping path")).to_have_count(2)
    expect(page.locator("#chart-length")).to_contain_text("No points yet")
    assert csp_violations == []
