"""Train and serve: one click queues a reward-model run and a DPO LoRA run, and each version is
promoted as its run succeeds (the reward model orders the queue, the tuned policy generates into it)."""

import threading

import pytest
from django.db import connections, transaction
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.services.errors import Conflict, ValidationFailed
from tests.factories import PromptFactory
from tests.training.helpers import ModelVersionFactory, judged_pairs
from training.demo_configs import DEMO_CONFIGS
from training.models import GenerationJob, ModelVersion, RunState, TrainingRun, VersionStatus
from training.services import runs
from training.services.closed_loop import closed_loop_start
from training.services.registry import version_promote

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(project, annotator):
    return judged_pairs(project, annotator, 4)


def finish(run: TrainingRun, checkpoint: str = "/ckpt") -> TrainingRun:
    """What the training worker does with a run that trains to the end."""
    assert runs.run_claim(run_id=run.pk, worker_id="w1") is not None
    return runs.run_finish(
        run_id=run.pk, worker_id="w1", checkpoint_dir=checkpoint, steps=3, metrics={}, stopped=False
    )


def test_it_queues_a_reward_and_a_dpo_run_with_the_forms_defaults_each_to_be_promoted(
    project, judged, project_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reward, dpo = closed_loop_start(project=project, created_by=project_admin)

    assert (reward.kind, dpo.kind) == ("reward_model", "dpo")
    for run in (reward, dpo):
        assert run.state == RunState.QUEUED and run.promote_when_done and run.created_by == project_admin
        assert {k: run.config[k] for k in DEMO_CONFIGS[run.kind]} == DEMO_CONFIGS[run.kind]
    assert dpo.base_version.name == "base:smollm2-135m"  # so serving it pairs tuned with base
    assert len(callbacks) == 2  # both enqueued, after commit


def test_an_active_run_of_either_kind_refuses_the_whole_loop(project, judged):
    runs.run_create(project=project, kind="dpo", config={"model": "smollm2-135m"})

    with pytest.raises(Conflict, match="dpo"):
        closed_loop_start(project=project)

    assert not TrainingRun.objects.filter(kind="reward_model").exists()  # not half a loop


def test_nothing_to_train_on_refuses_it(project):
    with pytest.raises(ValidationFailed, match="No votes"):
        closed_loop_start(project=project)
    assert not TrainingRun.objects.exists()


def test_each_succeeded_run_promotes_its_version(project, judged, project_admin):
    PromptFactory(project=project, held_back=True)
    reward, dpo = closed_loop_start(project=project, created_by=project_admin)

    reward = finish(reward, "/ckpt/rm")
    scorer = ModelVersion.objects.get(run=reward)
    assert scorer.status == VersionStatus.ACTIVE_SCORER
    assert reward.log_tail.endswith(f"Promoted {scorer.name} to active scorer (orders the queue).")

    dpo = finish(dpo, "/ckpt/dpo")
    tuned = ModelVersion.objects.get(run=dpo)
    assert tuned.status == VersionStatus.SERVING and tuned.parent == dpo.base_version
    job = GenerationJob.objects.get(model_version=tuned)
    assert job.opponent == dpo.base_version and job.created_by == project_admin


def test_the_new_scorer_replaces_the_old_one(project, judged):
    old_scorer = ModelVersionFactory(project=project, kind="reward", status=VersionStatus.ACTIVE_SCORER)
    run = runs.run_create(
        project=project, kind="reward_model", config={"model": "minilm-l6"}, promote_when_done=True
    )

    finish(run)

    old_scorer.refresh_from_db()
    assert old_scorer.status == VersionStatus.REGISTERED
    assert ModelVersion.objects.get(run=run).status == VersionStatus.ACTIVE_SCORER


def test_a_promotion_refused_half_way_is_undone_and_logged(project, judged):
    from training.models import LoopSettings

    # The project's generation defaults are out of range: serving is refused when the generation
    # job is created, after the version's new status was written.
    LoopSettings.objects.create(project=project, generation_params={"temperature": 99})
    dpo = runs.run_create(
        project=project, kind="dpo", config={"model": "smollm2-135m"}, promote_when_done=True
    )

    dpo = finish(dpo)

    tuned = ModelVersion.objects.get(run=dpo)
    assert dpo.state == RunState.SUCCEEDED and tuned.status == VersionStatus.REGISTERED
    assert dpo.log_tail.endswith("Not promoted to serving (generates into the queue): "
                                 "Generation parameter temperature=99 is out of range.")  # fmt: skip
    assert not GenerationJob.objects.exists()


def test_a_cancel_requested_during_the_last_step_keeps_the_version_unpromoted(project, judged):
    run = runs.run_create(
        project=project, kind="reward_model", config={"model": "minilm-l6"}, promote_when_done=True
    )
    assert runs.run_claim(run_id=run.pk, worker_id="w1") is not None
    TrainingRun.objects.filter(pk=run.pk).update(cancel_requested=True)

    # The trainer saw the request only after its last step, so it did not stop.
    run = runs.run_finish(
        run_id=run.pk, worker_id="w1", checkpoint_dir="/c", steps=3, metrics={}, stopped=False
    )

    assert ModelVersion.objects.get(run=run).status == VersionStatus.REGISTERED
    assert run.log_tail.endswith("Not promoted: a cancel was requested during the last step.")


def test_a_second_finish_promotes_nothing_again(project, judged):
    run = runs.run_create(
        project=project, kind="reward_model", config={"model": "minilm-l6"}, promote_when_done=True
    )
    finish(run)
    again = runs.run_finish(
        run_id=run.pk, worker_id="w1", checkpoint_dir="/c2", steps=3, metrics={}, stopped=False
    )
    assert again is None and ModelVersion.objects.filter(project=project).count() == 1


def test_a_run_started_without_the_flag_only_registers_its_version(project, judged):
    run = finish(runs.run_create(project=project, kind="reward_model", config={"model": "minilm-l6"}))
    assert ModelVersion.objects.get(run=run).status == VersionStatus.REGISTERED
    assert "Promoted" not in run.log_tail


def test_a_refused_promotion_is_logged_and_the_run_still_succeeds(project, judged, monkeypatch):
    from training.services import registry

    def refuse(**kwargs):
        raise ValidationFailed("Nope.", field="status")

    monkeypatch.setattr(registry, "version_promote", refuse)
    run = runs.run_create(
        project=project, kind="reward_model", config={"model": "minilm-l6"}, promote_when_done=True
    )

    run = finish(run)

    assert run.state == RunState.SUCCEEDED
    assert run.log_tail.endswith("Not promoted to active scorer (orders the queue): Nope.")
    assert ModelVersion.objects.get(run=run).status == VersionStatus.REGISTERED


def test_the_button_and_the_api_start_it_for_admins_only(client, project, judged, project_admin, researcher):
    url = reverse("training-loop-start", args=[project.slug])
    client.force_login(researcher)
    assert client.post(url).status_code == 403
    client.force_login(project_admin)
    ModelVersionFactory(project=project, name="policy-in-use", status=VersionStatus.SERVING)
    page = client.get(reverse("training-runs", args=[project.slug])).content.decode()
    assert 'id="close-the-loop"' in page
    assert "Replaces the serving policy now: <strong>policy-in-use</strong>" in page

    response = client.post(url, follow=True)

    assert "are queued" in response.content.decode()
    assert sorted(TrainingRun.objects.values_list("kind", "promote_when_done")) == [
        ("dpo", True),
        ("reward_model", True),
    ]
    admin_api = APIClient()
    admin_api.force_authenticate(project_admin)
    again = admin_api.post(f"/api/projects/{project.slug}/loop/")
    assert again.status_code == 409 and TrainingRun.objects.count() == 2
    researcher_api = APIClient()
    researcher_api.force_authenticate(researcher)
    assert researcher_api.post(f"/api/projects/{project.slug}/loop/").status_code == 403


def test_the_api_starts_both_runs_and_says_they_will_be_promoted(project, judged, project_admin):
    client = APIClient()
    client.force_authenticate(project_admin)

    response = client.post(f"/api/projects/{project.slug}/loop/")

    assert response.status_code == 202
    assert [(r["kind"], r["promote_when_done"]) for r in response.json()] == [
        ("reward_model", True),
        ("dpo", True),
    ]
    one = client.post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "contrastive", "config": {"model": "minilm-l6"}, "promote_when_done": True},
        format="json",
    )
    assert one.status_code == 202 and one.json()["promote_when_done"] is True
    bad = client.post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "reward_model", "config": {"model": "minilm-l6"}, "promote_when_done": "yes"},
        format="json",
    )
    assert bad.status_code == 400 and "promote_when_done" in str(bad.json())


@pytest.mark.django_db(transaction=True)
def test_two_promotions_at_once_take_turns(project):
    """A finishing run and an admin promote two policies at the same moment. The second waits for
    the first's commit and then demotes it, instead of missing it and hitting the one-serving-
    version-per-project constraint."""
    PromptFactory(project=project, held_back=True)
    first, second = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    first_promoted, second_done, errors = threading.Event(), threading.Event(), []

    def promote_first_and_hold():
        try:
            with transaction.atomic():
                version_promote(version=first, status=VersionStatus.SERVING)
                first_promoted.set()
                second_done.wait(timeout=2)  # the second has to wait for this commit
        finally:
            connections.close_all()

    def promote_second():
        try:
            first_promoted.wait(timeout=30)
            version_promote(version=second, status=VersionStatus.SERVING)
        except Exception as error:
            errors.append(repr(error))
        finally:
            second_done.set()
            connections.close_all()

    threads = [threading.Thread(target=promote_first_and_hold), threading.Thread(target=promote_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert dict(ModelVersion.objects.values_list("pk", "status")) == {
        first.pk: VersionStatus.REGISTERED,
        second.pk: VersionStatus.SERVING,
    }
