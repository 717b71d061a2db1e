"""The training pages and API: scoped to the caller's projects, changes for admins only."""

import json
import os
import subprocess
import sys

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.factories import ComparisonFactory, ProjectFactory
from tests.training.helpers import ModelVersionFactory, judge, judged_pairs
from training.models import GenerationJob, RunState, TrainingRun, VersionStatus
from training.services import runs

pytestmark = pytest.mark.django_db

CONFIG = {"model": "minilm-l6", "max_steps": 5}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def judged(project, annotator):
    return judged_pairs(project, annotator, 3)


def test_an_admin_starts_a_run_through_the_api(project, project_admin, judged):
    response = api(project_admin).post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "reward_model", "config": CONFIG, "filters": {"min_agreement": 0.5}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.state == RunState.QUEUED and run.snapshot.filters["min_agreement"] == 0.5


def test_a_second_active_run_of_a_kind_is_a_409_unless_forced(project, project_admin, judged):
    client = api(project_admin)
    url = f"/api/projects/{project.slug}/runs/"
    assert (
        client.post(url, {"kind": "dpo", "config": {"model": "smollm2-135m"}}, format="json").status_code
        == 202
    )
    second = client.post(url, {"kind": "dpo", "config": {"model": "smollm2-135m"}}, format="json")
    assert second.status_code == 409 and "still active" in second.json()["errors"]["kind"][0]
    assert (
        client.post(
            url, {"kind": "dpo", "config": {"model": "smollm2-135m"}, "force": True}, format="json"
        ).status_code
        == 202
    )


def test_a_bad_config_is_a_400_naming_the_key(project, project_admin, judged):
    response = api(project_admin).post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "reward_model", "config": {"epochz": 1}},
        format="json",
    )
    assert response.status_code == 400 and "epochz" in response.json()["errors"]["config"][0]


def test_researchers_read_runs_but_cannot_start_them(project, researcher, judged):
    client = api(researcher)
    assert client.get(f"/api/projects/{project.slug}/runs/").status_code == 200
    response = client.post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "dpo", "config": {"model": "smollm2-135m"}},
        format="json",
    )
    assert response.status_code == 403


def test_annotators_and_outsiders_see_nothing(project, annotator, outsider):
    assert api(annotator).get(f"/api/projects/{project.slug}/runs/").status_code == 403
    assert api(outsider).get(f"/api/projects/{project.slug}/runs/").status_code == 404


def test_another_projects_run_is_a_404(project, project_admin):
    other = ProjectFactory()
    comparison = ComparisonFactory.create_pair(project=other)
    judge(comparison, project_admin, "a")
    run = runs.run_create(project=other, kind="dpo", config={"model": "smollm2-135m"})
    assert api(project_admin).get(f"/api/projects/{project.slug}/runs/{run.pk}/").status_code == 404


def test_the_run_detail_has_the_metric_series_and_log_tail(project, project_admin, judged):
    run = runs.run_create(project=project, kind="reward_model", config=CONFIG)
    runs.run_claim(run_id=run.pk, worker_id="w")
    runs.run_record_event(run_id=run.pk, worker_id="w", event={"event": "step", "step": 1, "loss": 0.7})
    body = api(project_admin).get(f"/api/projects/{project.slug}/runs/{run.pk}/").json()
    assert body["series"]["train"] == [{"step": 1, "loss": 0.7}] and "loss=0.7000" in body["log_tail"]


def test_cancel_through_the_api(project, project_admin, judged):
    run = runs.run_create(project=project, kind="reward_model", config=CONFIG)
    client = api(project_admin)
    url = f"/api/projects/{project.slug}/runs/{run.pk}/cancel/"
    assert client.post(url).json()["state"] == "cancelled"
    assert client.post(url).status_code == 409


def test_promote_through_the_api_queues_generation(project, project_admin):
    base, tuned = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    client = api(project_admin)
    client.post(f"/api/projects/{project.slug}/model-versions/{base.pk}/promote/", {"status": "serving"})
    response = client.post(
        f"/api/projects/{project.slug}/model-versions/{tuned.pk}/promote/",
        {"status": "serving"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["status"] == VersionStatus.SERVING
    assert GenerationJob.objects.get(model_version=tuned).opponent == base
    bad = client.post(f"/api/projects/{project.slug}/model-versions/{tuned.pk}/promote/", {"status": "boss"})
    assert bad.status_code == 400


def test_register_an_endpoint_version_and_queue_generation_through_the_api(project, project_admin, settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]  # a local Ollama, let in on purpose
    client = api(project_admin)
    created = client.post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "ollama", "endpoint_url": "http://127.0.0.1:11434/v1", "endpoint_model": "llama3"},
        format="json",
    )
    assert created.status_code == 201
    job = client.post(
        f"/api/projects/{project.slug}/generations/",
        {"model_version": created.json()["id"], "k": 2, "params": {"temperature": 0.3}},
        format="json",
    )
    assert job.status_code == 202 and job.json()["params"]["temperature"] == 0.3


def test_the_queue_order_can_be_switched(project, project_admin):
    client = api(project_admin)
    url = f"/api/projects/{project.slug}/loop-settings/"
    assert client.get(url).json()["queue_order"] == "informative"  # a new project's default
    assert client.patch(url, {"queue_order": "random"}, format="json").json()["queue_order"] == "random"
    assert client.patch(url, {"queue_order": "loudest"}, format="json").status_code == 400


def test_annotators_cannot_see_the_leaderboard(project, annotator):
    assert api(annotator).get(f"/api/projects/{project.slug}/leaderboard/").status_code == 403


def test_the_leaderboard_api_for_researchers(project, annotator, researcher):
    base, tuned = (
        ModelVersionFactory(project=project, name="base"),
        ModelVersionFactory(project=project, name="tuned"),
    )
    for i, choice in enumerate(["a", "a", "tie", "b", "both_bad"]):
        comparison = ComparisonFactory.create_pair(project=project, texts=(f"t{i}", f"b{i}"))
        for slot, version in zip(comparison.slots.order_by("position"), (tuned, base), strict=True):
            slot.response.model_version_name = version.name
            slot.response.save()
        judge(comparison, annotator, choice)
    board = api(researcher).get(f"/api/projects/{project.slug}/leaderboard/").json()
    assert board["models"] == ["tuned", "base"]
    assert board["votes"][0][1] == 5 and board["win_rate"][0][1] == pytest.approx(0.6)
    assert board["rows"][0]["ties"] == 2


def test_the_pages_render_for_an_admin(client, project, project_admin, judged):
    run = runs.run_create(project=project, kind="reward_model", config=CONFIG)
    ModelVersionFactory(project=project, kind="reward")
    client.force_login(project_admin)
    for url in (
        reverse("training-runs", args=[project.slug]),
        reverse("training-run", args=[project.slug, run.pk]),
        reverse("training-run-compare", args=[project.slug]) + f"?run={run.pk}",
        reverse("training-leaderboard", args=[project.slug]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert "Cancel run" in page and "chart-loss" in page and "run-initial" in page


def test_the_start_form_starts_a_run_and_reports_bad_json(client, project, project_admin, judged):
    client.force_login(project_admin)
    url = reverse("training-run-start", args=[project.slug])
    bad = client.post(url, {"kind": "reward_model", "config": "{not json"}, follow=True)
    assert "not valid JSON" in bad.content.decode()
    good = client.post(url, {"kind": "reward_model", "config": json.dumps(CONFIG)})
    run = TrainingRun.objects.get()
    assert good.status_code == 302 and good.url == reverse("training-run", args=[project.slug, run.pk])


def test_researchers_cannot_post_to_the_pages(client, project, researcher, judged):
    client.force_login(researcher)
    assert client.get(reverse("training-runs", args=[project.slug])).status_code == 200
    response = client.post(
        reverse("training-run-start", args=[project.slug]), {"kind": "dpo", "config": "{}"}
    )
    assert response.status_code == 403


def test_the_web_process_never_imports_torch():
    """Importing the URLconf, views, API, services and tasks, and validating a config, must leave
    torch out of the process (a fresh interpreter, so other tests' imports do not count)."""
    code = (
        "import django, sys; django.setup();"
        "import alignweb.urls, training.views, training.api, training.selectors, training.tasks;"
        "import training.services.runs, training.services.generation, training.services.registry;"
        "import training.services.active_learning, training.services.execution, training.leaderboard;"
        "from training.services.configs import run_config_validate;"
        "run_config_validate(kind='dpo', config={'model': 'smollm2-135m'});"
        "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules];"
        "print('heavy:', bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "alignweb.settings"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_without_held_back_prompts_says_there_is_nothing_to_generate_on(
    client, project, project_admin
):
    tuned = ModelVersionFactory(project=project)
    client.force_login(project_admin)
    response = client.post(
        reverse("training-version-promote", args=[project.slug, tuned.pk]), {"status": "serving"}, follow=True
    )
    assert "no prompt is held back" in response.content.decode()


def test_the_leaderboard_is_fitted_once_per_set_of_votes(project, annotator, researcher, monkeypatch):
    from training import selectors
    from training.leaderboard import leaderboard

    base, tuned = (
        ModelVersionFactory(project=project, name="base"),
        ModelVersionFactory(project=project, name="tuned"),
    )
    comparisons = []
    for i in range(4):
        comparison = ComparisonFactory.create_pair(project=project, texts=(f"t{i}", f"b{i}"))
        for slot, version in zip(comparison.slots.order_by("position"), (tuned, base), strict=True):
            slot.response.model_version_name = version.name
            slot.response.save()
        comparisons.append(comparison)
    for comparison, choice in zip(comparisons[:3], ["a", "a", "b"], strict=True):
        judge(comparison, annotator, choice)
    fits = []
    monkeypatch.setattr(selectors, "leaderboard", lambda *a, **k: fits.append(1) or leaderboard(*a, **k))

    first = selectors.project_leaderboard(project=project, rounds=20)
    cached = selectors.project_leaderboard(project=project, rounds=20)
    fresh = leaderboard(selectors.arena_battles(project=project), rounds=20, seed=project.pk)
    assert len(fits) == 1 and cached.to_dict() == first.to_dict() == fresh.to_dict()

    judge(comparisons[3], annotator, "b")
    after = selectors.project_leaderboard(project=project, rounds=20)
    assert len(fits) == 2 and after.votes[0][1] == 4 != first.votes[0][1]


def test_the_arena_counts_votes_by_player_pair_and_outcome_in_the_database(project, annotator, researcher):
    from annotation.models import ComparisonResponse
    from tests.factories import ResponseFactory
    from training.leaderboard import Battle
    from training.selectors import arena_battles

    def versus(a_name: str, b_name: str, *, source: str = "factory"):
        comparison = ComparisonFactory.create_pair(project=project, texts=(f"{a_name}?", f"{b_name}!"))
        for slot, name in zip(comparison.slots.order_by("position"), (a_name, b_name), strict=True):
            slot.response.model_version_name, slot.response.source_name = name, source
            slot.response.save()
        return comparison

    tuned_base = versus("tuned", "base")
    for voter, choice in ((annotator, "a"), (researcher, "a")):
        judge(tuned_base, voter, choice)
    judge(versus("tuned", "base"), annotator, "tie")
    judge(versus("tuned", "base"), annotator, "both_bad")  # counted as a tie, in the same cell
    judge(versus("base", ""), annotator, "b")  # an imported response plays as its source
    judge(versus("", "", source=""), annotator, "a")  # one player on both sides: no battle
    three = versus("tuned", "base")
    ComparisonResponse.objects.create(
        comparison=three, response=ResponseFactory(prompt=three.prompt, text="third"), position=2
    )
    judge(three, annotator, "a")  # a three-way comparison is not a pairwise battle
    judge(ComparisonFactory.create_pair(project=ProjectFactory()), annotator, "a")  # another project

    assert arena_battles(project=project) == [
        Battle("base", "imported:factory", "b", count=1),
        Battle("tuned", "base", "a", count=2),
        Battle("tuned", "base", "tie", count=2),
    ]
