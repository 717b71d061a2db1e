"""Automatic evaluation of policy versions: queued when a policy run succeeds, judged by the active
scorer, run by a leased task on real tiny models, shown on the pages and through the API."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ProjectFactory, PromptFactory
from tests.training.helpers import FakeTrainer, ModelVersionFactory, judged_pairs
from training import serializers
from training.models import (
    DataSnapshot,
    ModelVersion,
    RunState,
    TrainingRun,
    VersionEvaluation,
    VersionStatus,
)
from training.services import evaluations, runs
from training.services.execution import run_execute
from training.tasks import evaluate_version

pytestmark = pytest.mark.django_db

SHORT = {"max_new_tokens": 6, "temperature": 1.0, "top_p": 1.0, "seed": 0}


@pytest.fixture
def sent(monkeypatch):
    """The evaluations sent to the task queue (after commit)."""
    ids: list[int] = []
    monkeypatch.setattr(evaluations.evaluate_version, "delay", ids.append)
    return ids


@pytest.fixture
def held_back(project):
    return [PromptFactory(project=project, held_back=True) for _ in range(3)]


@pytest.fixture
def scorer(project):
    return ModelVersionFactory(
        project=project,
        name="rm-judge",
        kind="reward",
        status=VersionStatus.ACTIVE_SCORER,
        checkpoint_path="/x",
    )


def finish_run(project, annotator, kind: str = "dpo", **kwargs):
    """A run of ``kind`` trained to success by the fake trainer; returns (run, its version)."""
    judged_pairs(project, annotator, 3)
    config = {"model": "smollm2-135m" if kind == "dpo" else "minilm-l6", "max_steps": 2}
    run = runs.run_create(project=project, kind=kind, config=config, **kwargs)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    run = run_execute(run_id=run.pk, worker_id="w1", train_fn=FakeTrainer(total_steps=2), make_example=dict)
    assert run.state == RunState.SUCCEEDED, run.error
    return run, ModelVersion.objects.get(run=run)


def test_a_successful_policy_run_queues_its_evaluation_against_the_base_after_commit(
    project, annotator, held_back, scorer, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        run, version = finish_run(project, annotator)
    (evaluation,) = VersionEvaluation.objects.filter(version=version)
    assert evaluation.opponent == run.base_version and evaluation.opponent.name == "base:smollm2-135m"
    assert (evaluation.state, evaluation.opponent_role, evaluation.reference) == (
        "queued",
        "base",
        run.base_version,
    )
    assert (evaluation.judge, evaluation.judge_label, evaluation.n_prompts) == (scorer, "rm-judge", 3)
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert evaluation.pk in sent
    # Registering the same checkpoint again queues nothing new.
    assert evaluations.evaluations_queue_for_version(version=version) == [evaluation]
    assert VersionEvaluation.objects.count() == 1


def test_a_reward_run_queues_no_evaluation(
    project, annotator, held_back, scorer, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        finish_run(project, annotator, kind="reward_model")
    assert not VersionEvaluation.objects.exists() and sent == []


def test_without_an_active_scorer_the_evaluation_is_skipped_and_the_run_still_succeeds(
    project, annotator, held_back, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run, version = finish_run(project, annotator)
    evaluation = VersionEvaluation.objects.get(version=version)
    assert evaluation.state == "skipped" and "No active scorer" in evaluation.error
    assert evaluation.finished_at is not None and evaluation.judge_label == ""
    assert sent == [] and evaluate_version(evaluation.pk) == "not claimed"
    run.refresh_from_db()
    assert run.state == RunState.SUCCEEDED


def test_without_held_back_prompts_it_is_skipped_too(project, annotator, scorer, sent):
    _, version = finish_run(project, annotator)
    evaluation = VersionEvaluation.objects.get(version=version)
    assert evaluation.state == "skipped" and "held back" in evaluation.error


def test_a_version_that_replaces_another_is_also_evaluated_against_it_before_being_promoted(
    project, annotator, held_back, scorer, sent, django_capture_on_commit_callbacks
):
    serving = ModelVersionFactory(project=project, name="old-serving", status=VersionStatus.SERVING)
    with django_capture_on_commit_callbacks(execute=True):
        run, version = finish_run(project, annotator, promote_when_done=True)
    version.refresh_from_db()
    assert version.status == VersionStatus.SERVING  # promoted after the evaluations were queued
    rows = {e.opponent_role: e for e in VersionEvaluation.objects.filter(version=version)}
    assert set(rows) == {"base", "previous_serving"}
    assert rows["previous_serving"].opponent == serving
    assert rows["previous_serving"].reference == run.base_version  # the KL is still to the base
    assert sorted(sent) == sorted(e.pk for e in rows.values())


def test_a_serving_version_that_is_the_base_is_evaluated_against_once(
    project, annotator, held_back, scorer, sent
):
    base = ModelVersionFactory(
        project=project, name="base", base_model="smollm2-135m", status=VersionStatus.SERVING
    )
    _, version = finish_run(project, annotator, base_version=base)
    (evaluation,) = VersionEvaluation.objects.filter(version=version)
    assert (evaluation.opponent, evaluation.opponent_role) == (base, "base")


def test_an_opponent_served_from_an_endpoint_is_skipped_with_its_name(
    project, annotator, held_back, scorer, sent
):
    ModelVersionFactory(
        project=project, name="remote", base_model="", endpoint_url="http://127.0.0.1:9/v1", status="serving"
    )
    _, version = finish_run(project, annotator)
    rows = {e.opponent_role: e for e in VersionEvaluation.objects.filter(version=version)}
    assert rows["base"].state == "queued"
    assert (
        rows["previous_serving"].state == "skipped"
        and "remote has no local weights" in rows["previous_serving"].error
    )


# --- The task, on real tiny models -----------------------------------------------------------------


@pytest.fixture(scope="module")
def judge_checkpoint(tmp_path_factory, tiny_bert) -> Path:
    from tests.ml.conftest import toy_pairs
    from training.ml.api import run_training

    config = {"model": str(tiny_bert), "max_length": 64, "batch_size": 2, "max_steps": 2, "device": "cpu"}
    out = tmp_path_factory.mktemp("judge")
    return run_training("reward_model", config, toy_pairs(4), output_dir=out).checkpoint_dir


def queued_self_evaluation(project, tiny_llama, judge_checkpoint, monkeypatch, **judge_fields):
    """A 'tuned' version with the very weights of its base, queued for evaluation."""
    monkeypatch.setattr(evaluations, "DEFAULT_SETTINGS", SHORT)
    base = ModelVersionFactory(project=project, name="base", base_model=str(tiny_llama))
    tuned = ModelVersionFactory(project=project, name="tuned", parent=base, checkpoint_path=str(tiny_llama))
    judge = ModelVersionFactory(
        project=project,
        name="rm-3",
        kind="reward",
        status=VersionStatus.ACTIVE_SCORER,
        checkpoint_path=str(judge_checkpoint),
        **judge_fields,
    )
    (evaluation,) = evaluations.evaluations_queue_for_version(version=tuned)
    return evaluation, judge


def test_the_task_scores_a_version_against_its_base_with_the_judge(
    project, held_back, tiny_llama, judge_checkpoint, monkeypatch, sent
):
    evaluation, _ = queued_self_evaluation(project, tiny_llama, judge_checkpoint, monkeypatch)
    assert evaluate_version(evaluation.pk) == "succeeded"
    evaluation.refresh_from_db()
    # The same weights: every prompt a tie, no drift, the same lengths.
    assert (evaluation.win_rate, evaluation.ci_low, evaluation.ci_high) == (0.5, 0.5, 0.5)
    assert (evaluation.wins, evaluation.ties, evaluation.losses, evaluation.n_prompts) == (0, 3, 0, 3)
    assert evaluation.mean_kl == pytest.approx(0.0, abs=1e-6)
    assert 1 <= evaluation.mean_length_tuned == evaluation.mean_length_opponent <= SHORT["max_new_tokens"]
    assert (evaluation.judge_label, evaluation.settings, evaluation.error) == ("rm-3", SHORT, "")
    assert evaluation.finished_at is not None and evaluation.attempts == 1
    assert evaluate_version(evaluation.pk) == "not claimed"  # a second delivery does nothing


def test_a_dpo_checkpoint_is_scored_against_its_base_model(
    project, held_back, tiny_llama, judge_checkpoint, tmp_path, monkeypatch, sent
):
    from tests.ml.conftest import toy_pairs
    from training.ml.api import run_training

    config = {
        "model": str(tiny_llama),
        "max_steps": 3,
        "batch_size": 2,
        "lr": 5e-3,
        "max_length": 64,
        "device": "cpu",
    }
    tuned_dir = run_training("dpo", config, toy_pairs(6), output_dir=tmp_path / "dpo").checkpoint_dir
    evaluation, _ = queued_self_evaluation(project, tiny_llama, judge_checkpoint, monkeypatch)
    ModelVersion.objects.filter(pk=evaluation.version_id).update(checkpoint_path=str(tuned_dir))
    assert evaluate_version(evaluation.pk) == "succeeded", VersionEvaluation.objects.get(
        pk=evaluation.pk
    ).error
    evaluation.refresh_from_db()
    assert evaluation.ci_low <= evaluation.win_rate <= evaluation.ci_high and evaluation.n_prompts == 3
    assert evaluation.wins + evaluation.ties + evaluation.losses == 3
    assert evaluation.mean_kl != 0.0  # trained weights drift from the base


def test_a_failing_evaluation_stores_the_error_the_user_may_see(
    project, held_back, tiny_llama, tmp_path, judge_checkpoint, monkeypatch, sent
):
    evaluation, judge = queued_self_evaluation(project, tiny_llama, judge_checkpoint, monkeypatch)
    ModelVersion.objects.filter(pk=judge.pk).update(checkpoint_path=str(tmp_path / "srv" / "gone"))
    assert evaluate_version(evaluation.pk) == "failed"
    evaluation.refresh_from_db()
    assert evaluation.state == "failed" and evaluation.error.startswith("ScoringError: ")
    assert str(tmp_path) not in evaluation.error and "gone" in evaluation.error
    assert evaluation.win_rate is None


def test_a_silent_evaluation_is_queued_again_and_sent_after_commit(
    project, held_back, scorer, sent, django_capture_on_commit_callbacks
):
    base = ModelVersionFactory(project=project, name="b", base_model="smollm2-135m")
    tuned = ModelVersionFactory(project=project, name="t", parent=base, checkpoint_path="/ckpt")
    (evaluation,) = evaluations.evaluations_queue_for_version(version=tuned)
    assert evaluations.evaluation_claim(evaluation_id=evaluation.pk, worker_id="w1") is not None
    VersionEvaluation.objects.filter(pk=evaluation.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluations.evaluations_reap_stale() == [evaluation.pk]
    evaluation.refresh_from_db()
    assert (evaluation.state, evaluation.worker_id) == ("queued", "") and sent == [evaluation.pk]


def test_the_evaluation_reaper_runs_on_the_beat_schedule_of_the_default_queue():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["reap-stale-evaluations"]
    assert entry["task"] == "training.tasks.reap_stale_evaluations"
    assert entry["options"]["queue"] == "default"


# --- Shown: API and pages --------------------------------------------------------------------------


def finished_evaluation(project) -> VersionEvaluation:
    base = ModelVersionFactory(project=project, name="base-lm", base_model="smollm2-135m")
    tuned = ModelVersionFactory(project=project, name="tuned-lm", parent=base, checkpoint_path="/ckpt")
    return VersionEvaluation.objects.create(
        project=project,
        version=tuned,
        opponent=base,
        opponent_role="base",
        reference=base,
        judge_label="rm-judge-7",
        state="succeeded",
        n_prompts=20,
        win_rate=0.625,
        ci_low=0.41,
        ci_high=0.83,
        wins=11,
        ties=3,
        losses=6,
        mean_kl=0.0312,
        mean_length_tuned=54.5,
        mean_length_opponent=61.0,
        settings=SHORT,
        finished_at=timezone.now(),
    )


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_lists_a_versions_evaluations_with_their_judge(project, researcher):
    evaluation = finished_evaluation(project)
    base = f"/api/projects/{project.slug}/model-versions/{evaluation.version_id}"
    listed = api(researcher).get(f"{base}/evaluations/")
    assert listed.status_code == 200
    (row,) = listed.json()
    assert set(row) == set(serializers.VersionEvaluationSerializer().fields)
    assert (row["judge"], row["win_rate"], row["ci_low"], row["ci_high"]) == ("rm-judge-7", 0.625, 0.41, 0.83)
    assert (
        row["opponent"] == {"id": evaluation.opponent_id, "name": "base-lm"} and row["reference"] == "base-lm"
    )
    detail = api(researcher).get(f"{base}/").json()
    assert detail["evaluations"] == listed.json()


def test_another_projects_version_is_a_404_and_annotators_are_refused(project, researcher, annotator):
    evaluation = finished_evaluation(project)
    other = ProjectFactory()
    elsewhere = ModelVersionFactory(project=other)
    url = f"/api/projects/{project.slug}/model-versions/{elsewhere.pk}/evaluations/"
    assert api(researcher).get(url).status_code == 404
    own = f"/api/projects/{project.slug}/model-versions/{evaluation.version_id}/evaluations/"
    assert api(annotator).get(own).status_code == 403


def test_the_schema_types_the_evaluations_endpoint():
    from drf_spectacular.generators import SchemaGenerator

    body = SchemaGenerator().get_schema(request=None, public=True)
    path = body["paths"]["/api/projects/{slug}/model-versions/{version_id}/evaluations/"]["get"]
    items = path["responses"]["200"]["content"]["application/json"]["schema"]["items"]
    assert items == {"$ref": "#/components/schemas/VersionEvaluation"}
    assert "win_rate" in body["components"]["schemas"]["VersionEvaluation"]["properties"]


def test_the_registry_and_the_run_page_show_the_evaluation_and_its_judge(client, project, researcher):
    evaluation = finished_evaluation(project)
    client.force_login(researcher)
    page = client.get(reverse("training-runs", args=[project.slug])).content.decode()
    assert "win rate <strong>0.63</strong>" in page and "rm-judge-7" in page
    assert "[0.41\N{EN DASH}0.83]" in page
    assert "11 won, 3 tied, 6 lost of 20" in page and "KL to base-lm 0.0312" in page
    run = finish_run_row(project, evaluation.version)
    page = client.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert (
        "Automatic evaluation" in page and "rm-judge-7" in page and "win rate <strong>0.63</strong>" in page
    )


def finish_run_row(project, version):
    """A succeeded run that produced ``version`` (the page lists its versions' evaluations)."""
    snapshot = DataSnapshot.objects.create(project=project, sha256="0" * 64)
    run = TrainingRun.objects.create(project=project, kind="dpo", snapshot=snapshot, state="succeeded")
    ModelVersion.objects.filter(pk=version.pk).update(run=run)
    return run


def test_a_skipped_evaluation_says_why_on_the_registry_page(client, project, researcher):
    evaluation = finished_evaluation(project)
    VersionEvaluation.objects.filter(pk=evaluation.pk).update(
        state="skipped", error="No active scorer to judge with.", win_rate=None
    )
    client.force_login(researcher)
    page = client.get(reverse("training-runs", args=[project.slug])).content.decode()
    assert "skipped</span> · No active scorer to judge with." in page
