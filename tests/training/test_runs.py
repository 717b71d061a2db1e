"""Training runs: creation rules, atomic claims, progress, cancellation and dead-worker recovery."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from annotation.services.errors import Conflict, ValidationFailed
from tests.training.helpers import FakeExample, FakeTrainer, ModelVersionFactory, judged_pairs
from training.models import ModelVersion, RunMetric, RunState, TrainingRun
from training.services import runs
from training.services.execution import run_execute

pytestmark = pytest.mark.django_db

CONFIG = {"model": "minilm-l6", "max_steps": 6}


@pytest.fixture
def judged(project, annotator):
    return judged_pairs(project, annotator, 4)


def make_run(project, **kwargs) -> TrainingRun:
    kind, config = kwargs.pop("kind", "reward_model"), kwargs.pop("config", CONFIG)
    return runs.run_create(project=project, kind=kind, config=config, **kwargs)


def test_it_creates_a_queued_run_with_a_normalised_config_and_a_snapshot(project, judged, project_admin):
    run = make_run(project, created_by=project_admin)
    assert run.state == RunState.QUEUED
    assert run.config["model"] == "minilm-l6" and "batch_size" in run.config  # defaults filled in
    assert run.snapshot.judgement_count == 4
    assert run.output_dir.endswith(f"runs/{run.pk}")


def test_it_enqueues_the_task_only_after_commit(project, judged, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_run(project)
    assert len(callbacks) == 1


def test_it_refuses_an_unknown_config_key(project, judged):
    with pytest.raises(ValidationFailed, match="learning_rat"):
        runs.run_create(project=project, kind="reward_model", config={"learning_rat": 1})


def test_it_refuses_an_unknown_kind(project, judged):
    with pytest.raises(ValidationFailed, match="Unknown run kind"):
        runs.run_create(project=project, kind="sft", config={})


def test_it_refuses_a_run_without_votes(project):
    with pytest.raises(ValidationFailed, match="No votes"):
        make_run(project)


def test_it_allows_one_active_run_per_project_and_kind_unless_forced(project, judged):
    first = make_run(project)
    with pytest.raises(Conflict, match=f"Run {first.pk}"):
        make_run(project)
    assert make_run(project, kind="dpo").state == RunState.QUEUED  # another kind is fine
    forced = make_run(project, force=True)
    assert forced.forced


def test_exactly_one_of_two_claims_wins(project, judged):
    run = make_run(project)
    assert runs.run_claim(run_id=run.pk, worker_id="w1") is not None
    assert runs.run_claim(run_id=run.pk, worker_id="w2") is None
    run.refresh_from_db()
    assert (run.state, run.worker_id, run.attempts) == (RunState.RUNNING, "w1", 1)


def test_a_claim_past_the_attempt_limit_fails_the_run(project, judged):
    run = make_run(project, max_attempts=1)
    TrainingRun.objects.filter(pk=run.pk).update(attempts=1)
    assert runs.run_claim(run_id=run.pk, worker_id="w1") is None
    run.refresh_from_db()
    assert run.state == RunState.FAILED and "attempt" in run.error


def test_events_record_progress_metrics_and_the_log_tail(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    event = {"event": "step", "step": 3, "total_steps": 10, "loss": 0.5, "eta_seconds": 12.0, "lr": 1e-4}
    assert runs.run_record_event(run_id=run.pk, worker_id="w1", event=event) is False
    runs.run_record_event(
        run_id=run.pk, worker_id="w1", event={"event": "eval", "step": 3, "metrics": {"accuracy": 0.8}}
    )
    run.refresh_from_db()
    assert (run.step, run.total_steps, run.eta_seconds) == (3, 10, 12.0)
    assert "loss=0.5000" in run.log_tail and "accuracy=0.8" in run.log_tail
    points = {(p.phase, p.step): p.values for p in RunMetric.objects.filter(run=run)}
    assert points[("train", 3)]["loss"] == 0.5 and points[("eval", 3)]["accuracy"] == 0.8


def test_a_replayed_step_overwrites_its_metric_point(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    for loss in (0.9, 0.4):
        runs.run_record_event(run_id=run.pk, worker_id="w1", event={"event": "step", "step": 2, "loss": loss})
    assert list(RunMetric.objects.filter(run=run).values_list("values__loss", flat=True)) == [0.4]


def test_a_worker_that_lost_the_run_is_told_to_stop(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    assert runs.run_record_event(run_id=run.pk, worker_id="someone-else", event={"event": "step", "step": 1})


def test_cancelling_a_queued_run_cancels_it_at_once(project, judged):
    run = runs.run_cancel(run=make_run(project))
    assert run.state == RunState.CANCELLED


def test_cancelling_a_running_run_asks_the_trainer_to_stop(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    runs.run_cancel(run=run)
    assert runs.run_record_event(run_id=run.pk, worker_id="w1", event={"event": "step", "step": 1}) is True


def test_cancelling_a_finished_run_is_a_conflict(project, judged):
    run = make_run(project)
    TrainingRun.objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)
    with pytest.raises(Conflict, match="already succeeded"):
        runs.run_cancel(run=run)


def test_a_run_trains_to_success_and_registers_a_version(project, judged):
    base = ModelVersionFactory(project=project, kind="reward")
    run = make_run(project, base_version=base)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    trainer = FakeTrainer(total_steps=4)
    finished = run_execute(run_id=run.pk, worker_id="w1", train_fn=trainer, make_example=FakeExample)
    assert finished.state == RunState.SUCCEEDED and finished.step == 4
    assert (
        trainer.calls[0]["n"] == 4 and trainer.calls[0]["lineage"]["snapshot_sha256"] == run.snapshot.sha256
    )
    version = ModelVersion.objects.get(run=run)
    assert (version.kind, version.parent, version.metrics["accuracy"]) == ("reward", base, 0.75)
    assert version.lineage["snapshot_sha256"] == run.snapshot.sha256


def test_cancel_stops_within_one_step_and_keeps_the_checkpoint(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    trainer = FakeTrainer(total_steps=100)
    original = runs.run_record_event

    def cancel_at_step_3(**kwargs):
        if kwargs["event"].get("step") == 3 and kwargs["event"]["event"] == "step":
            runs.run_cancel(run=TrainingRun.objects.get(pk=run.pk))
        return original(**kwargs)

    runs.run_record_event = cancel_at_step_3
    try:
        finished = run_execute(run_id=run.pk, worker_id="w1", train_fn=trainer, make_example=FakeExample)
    finally:
        runs.run_record_event = original
    assert finished.state == RunState.CANCELLED
    assert trainer.steps_run == [1, 2, 3]
    assert finished.checkpoint_path.endswith("checkpoint-3")
    assert not ModelVersion.objects.filter(run=run).exists()


def test_a_crash_fails_the_run_with_a_short_error_and_logs_the_traceback(project, judged, caplog):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    finished = run_execute(
        run_id=run.pk, worker_id="w1", train_fn=FakeTrainer(crash_at=2), make_example=FakeExample
    )
    assert finished.state == RunState.FAILED and "worker killed" in finished.error
    assert "Traceback" not in finished.error and "/work" not in finished.error
    assert "site-packages" not in finished.error and ".py" not in finished.error
    assert "Traceback" in caplog.text and "worker killed" in caplog.text


def test_a_stale_run_is_requeued_and_resumes_from_its_checkpoint_without_repeating_steps(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="dead")
    # The first worker checkpointed step 4 and died; its heartbeat is old.
    FakeTrainer._write(Path(run.output_dir), 4)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1), step=4)
    assert runs.runs_reap_stale() == [run.pk]
    run.refresh_from_db()
    assert run.state == RunState.QUEUED and "went silent" in run.log_tail

    assert runs.run_claim(run_id=run.pk, worker_id="w2") is not None
    trainer = FakeTrainer(total_steps=6)
    finished = run_execute(run_id=run.pk, worker_id="w2", train_fn=trainer, make_example=FakeExample)
    assert trainer.steps_run == [5, 6]
    assert (finished.state, finished.attempts, finished.resumed_from_step) == (RunState.SUCCEEDED, 2, 4)


def test_the_reaper_leaves_live_runs_alone(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="alive")
    assert runs.runs_reap_stale() == []


def test_the_reaper_fails_a_run_that_used_all_its_attempts(project, judged):
    run = make_run(project, max_attempts=1)
    runs.run_claim(run_id=run.pk, worker_id="dead")
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runs.runs_reap_stale() == []
    run.refresh_from_db()
    assert run.state == RunState.FAILED and "attempt 1 of 1" in run.error


def test_a_finish_from_a_worker_that_lost_the_run_changes_nothing(project, judged):
    run = make_run(project)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    assert (
        runs.run_finish(
            run_id=run.pk, worker_id="w0", checkpoint_dir="/x", steps=1, metrics={}, stopped=False
        )
        is None
    )
    run.refresh_from_db()
    assert run.state == RunState.RUNNING


def test_a_dpo_run_without_a_base_version_gets_its_base_model_registered_as_the_parent(project, judged):
    first = make_run(project, kind="dpo", config={"model": "smollm2-135m"})
    second = make_run(project, kind="dpo", config={"model": "smollm2-135m"}, force=True)
    assert first.base_version.name == "base:smollm2-135m" and first.base_version.kind == "policy"
    assert second.base_version == first.base_version
    assert ModelVersion.objects.filter(project=project).count() == 1
