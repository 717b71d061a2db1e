"""The whole loop on tiny models with the real ML core, tasks run in this process (no broker):
import -> judge through the API -> reward and DPO runs -> versions registered -> the tuned policy
generates -> an annotator is served a tuned-vs-base comparison."""

import pytest

from annotation.models import Judgement
from tests.training.loop_flow import (
    client_for,
    import_and_hold_back,
    judge_kindly,
    served_tuned_vs_base,
    start_runs,
)
from training.models import GenerationJob, ModelVersion, RunMetric, RunState, TrainingRun, VersionStatus
from training.tasks import generate_responses, score_comparisons, train_run

pytestmark = [pytest.mark.django_db, pytest.mark.integration, pytest.mark.slow]


def test_the_loop_closes_in_process(project, annotator, project_admin, tiny_bert, tiny_llama, settings):
    settings.ALIGNWEB_RUN_STALE_SECONDS = 3600
    import_and_hold_back(project, project_admin)
    annotator_api, admin_api = client_for(annotator), client_for(project_admin)
    assert len(judge_kindly(annotator_api, project, 10)) == 10

    base = admin_api.post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "base", "kind": "policy", "base_model": str(tiny_llama)},
        format="json",
    ).json()
    reward_id, dpo_id = start_runs(admin_api, project, base["id"], tiny_bert, tiny_llama)
    assert train_run(reward_id) == RunState.SUCCEEDED, TrainingRun.objects.get(pk=reward_id).error
    assert train_run(dpo_id) == RunState.SUCCEEDED, TrainingRun.objects.get(pk=dpo_id).error
    assert train_run(dpo_id) == "not claimed"  # a second delivery does nothing

    reward_run = TrainingRun.objects.get(pk=reward_id)
    assert reward_run.snapshot.judgement_count == 10 and reward_run.step == 6
    assert RunMetric.objects.filter(run=reward_run, phase="eval").exists()
    reward_version = ModelVersion.objects.get(run=reward_run)
    tuned = ModelVersion.objects.get(run_id=dpo_id)
    assert (reward_version.kind, tuned.kind, tuned.parent_id, tuned.name) == (
        "reward",
        "policy",
        base["id"],
        "tuned",
    )
    assert "accuracy" in reward_version.metrics

    promote = f"/api/projects/{project.slug}/model-versions/{{}}/promote/"
    assert admin_api.post(promote.format(reward_version.pk), {"status": "active_scorer"}).status_code == 200
    assert score_comparisons(project.pk) > 0
    assert admin_api.post(promote.format(tuned.pk), {"status": "serving"}).status_code == 200
    job = GenerationJob.objects.get(model_version=tuned)
    assert job.opponent_id == base["id"]
    assert generate_responses(job.pk) == "succeeded", GenerationJob.objects.get(pk=job.pk).error
    job.refresh_from_db()
    assert job.comparisons_created >= 1 and job.prompts_done == 4

    comparison = served_tuned_vs_base(annotator_api, project, tuned.pk, base["id"])
    assert comparison is not None and comparison.prompt.held_back
    assert Judgement.objects.filter(comparison=comparison, annotator=annotator).exists()
    assert ModelVersion.objects.get(pk=tuned.pk).status == VersionStatus.SERVING
    board = admin_api.get(f"/api/projects/{project.slug}/leaderboard/").json()
    assert {"tuned", "base"} <= set(board["models"])
