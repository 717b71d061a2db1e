"""End to end on real services: PostgreSQL, a Redis broker and real ``celery worker`` processes.

- the loop: import -> judge through the API -> reward-model and DPO runs trained by the worker ->
  versions registered -> the tuned policy generates -> an annotator is served tuned vs base;
- the fault: SIGKILL the worker mid-run, start another, and the run resumes from its last
  checkpoint (found by the reaper through the stale heartbeat) and succeeds with no vote lost.
- the same for an export and a generation job: a worker killed in the middle leaves it to the
  reaper, and another worker finishes it.

The worker reads pytest-django's test database (``transaction=True`` commits, and the database
name travels in ``DATABASE_URL``) and a Redis database of its own (``E2E_REDIS_DB``, default 11),
which the test empties, so parallel runs and other workers never take these tasks.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from annotation.models import Judgement
from tests.training.loop_flow import (
    client_for,
    import_and_hold_back,
    judge_kindly,
    served_tuned_vs_base,
    start_runs,
)
from training.models import GenerationJob, ModelVersion, RunMetric, RunState, TrainingRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STALE_SECONDS = 4


@pytest.fixture
def broker_url(redis_url, monkeypatch):
    """A private Redis database as the broker, for this process's Celery app and the workers."""
    import redis

    from alignweb.celery import app

    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    url = f"{base}/{os.environ.get('E2E_REDIS_DB', '11')}"
    redis.Redis.from_url(url).flushdb()
    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    # Celery's conf.broker_url prefers the CELERY_BROKER_URL environment variable over the setting
    # (as `make test` sets it), so both must name the private database.
    monkeypatch.setenv("CELERY_BROKER_URL", url)
    app.conf.broker_url, app.conf.broker_transport_options = url, {}
    app._after_fork()  # drop pooled connections to the old broker
    yield url
    app.conf.broker_url, app.conf.broker_transport_options = saved
    app._after_fork()
    redis.Redis.from_url(url).flushdb()


class Worker:
    """One ``celery worker -Q training,default -B`` process (its own session, so a kill takes its
    pool child with it)."""

    def __init__(self, broker_url: str, tmp_path: Path, checkpoint_dir: Path) -> None:
        db = connection.settings_dict
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{host}:{port}/{db['NAME']}",
            "CELERY_BROKER_URL": broker_url,
            "ALIGNWEB_CHECKPOINT_DIR": str(checkpoint_dir),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "ALIGNWEB_RUN_STALE_SECONDS": str(STALE_SECONDS),
            "ALIGNWEB_REAPER_INTERVAL_SECONDS": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
        }
        if db.get("PASSWORD"):
            self.env["PGPASSWORD"] = db["PASSWORD"]
        self.tmp_path = tmp_path
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None

    def start(self) -> "Worker":
        name = uuid.uuid4().hex[:8]
        self.log = self.tmp_path / f"worker-{name}.log"
        command = [
            sys.executable, "-m", "celery", "-A", "alignweb", "worker", "-Q", "training,default",
            "--concurrency", "1", "-B", "-s", str(self.tmp_path / f"beat-{name}"), "-n", f"e2e-{name}@%h",
            "--without-mingle", "--without-gossip", "-l", "INFO",
        ]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-6000:] if self.log and self.log.exists() else ""


@pytest.fixture
def workers(broker_url, tmp_path, checkpoint_dir):
    started: list[Worker] = []

    def start() -> Worker:
        worker = Worker(broker_url, tmp_path, checkpoint_dir).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(condition, *, timeout: float, what: str, workers: list[Worker] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    logs = "\n".join(w.tail() for w in workers)
    pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}.\n{logs}")


@contextlib.contextmanager
def table_locked(table: str):
    """Another session holds ``table`` for the block, so a worker's work that reads or writes it
    stops there, half done."""
    import psycopg

    db = connection.settings_dict
    blocker = psycopg.connect(
        host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    try:
        blocker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        blocker.rollback()
        blocker.close()


def run_state(run_id: int) -> str:
    return TrainingRun.objects.values_list("state", flat=True).get(pk=run_id)


def finished(run_id: int) -> bool:
    return run_state(run_id) in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


def test_the_loop_closes_through_a_real_worker(
    project, annotator, project_admin, tiny_bert, tiny_llama, workers
):
    worker = workers()
    import_and_hold_back(project, project_admin)
    annotator_api, admin_api = client_for(annotator), client_for(project_admin)
    assert len(judge_kindly(annotator_api, project, 10)) == 10
    base = admin_api.post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "base", "kind": "policy", "base_model": str(tiny_llama)},
        format="json",
    ).json()

    reward_id, dpo_id = start_runs(admin_api, project, base["id"], tiny_bert, tiny_llama)
    for run_id in (reward_id, dpo_id):
        wait_for(lambda r=run_id: finished(r), timeout=300, what=f"run {run_id}", workers=[worker])
        run = TrainingRun.objects.get(pk=run_id)
        assert run.state == RunState.SUCCEEDED, run.error + worker.tail()
    reward_version = ModelVersion.objects.get(run_id=reward_id)
    tuned = ModelVersion.objects.get(run_id=dpo_id)
    assert tuned.parent_id == base["id"] and reward_version.kind == "reward"

    promote = f"/api/projects/{project.slug}/model-versions/{{}}/promote/"
    assert admin_api.post(promote.format(reward_version.pk), {"status": "active_scorer"}).status_code == 200
    assert admin_api.post(promote.format(tuned.pk), {"status": "serving"}).status_code == 200
    job = wait_for(
        lambda: GenerationJob.objects.filter(model_version=tuned, state__in=["succeeded", "failed"]).first(),
        timeout=300,
        what="generation",
        workers=[worker],
    )
    assert job.state == "succeeded" and job.comparisons_created >= 1, job.error

    comparison = served_tuned_vs_base(annotator_api, project, tuned.pk, base["id"])
    assert comparison is not None and comparison.prompt.held_back


def test_a_run_resumes_from_its_checkpoint_after_the_worker_is_killed(
    project, annotator, project_admin, tiny_bert, workers
):
    import_and_hold_back(project, project_admin, held_back=0)
    annotator_api, admin_api = client_for(annotator), client_for(project_admin)
    judged = judge_kindly(annotator_api, project, 12)
    votes_before = sorted(Judgement.objects.values_list("id", "choice"))
    first = workers()
    config = {"model": str(tiny_bert), "max_steps": 400, "batch_size": 4, "lr": 1e-3, "max_length": 64,
              "checkpoint_every": 10, "device": "cpu"}  # fmt: skip
    response = admin_api.post(
        f"/api/projects/{project.slug}/runs/",
        {"kind": "reward_model", "config": config, "filters": {"include_prior_labels": True}},
        format="json",
    )
    assert response.status_code == 202, response.content
    run_id = response.json()["id"]
    wait_for(
        lambda: TrainingRun.objects.filter(pk=run_id, step__gte=25).exists(),
        timeout=300,
        what="step 25",
        workers=[first],
    )
    first.kill()
    killed_at = TrainingRun.objects.get(pk=run_id)
    assert killed_at.state == RunState.RUNNING and killed_at.step < 400

    second = workers()
    wait_for(lambda: finished(run_id), timeout=300, what="the resumed run", workers=[first, second])
    run = TrainingRun.objects.get(pk=run_id)
    assert run.state == RunState.SUCCEEDED, run.error + second.tail()
    assert run.attempts == 2 and run.step == 400
    # It resumed from a checkpoint (a multiple of 10, at most where the first worker died), not from 0.
    assert run.resumed_from_step and run.resumed_from_step % 10 == 0
    assert 10 <= run.resumed_from_step <= killed_at.step
    steps = list(RunMetric.objects.filter(run=run, phase="train").values_list("step", flat=True))
    assert sorted(steps) == list(range(1, 401))  # every step once in the series
    assert sorted(Judgement.objects.values_list("id", "choice")) == votes_before  # no vote lost
    assert len(run.snapshot.judgement_ids) == len(judged)
    assert ModelVersion.objects.filter(run=run).count() == 1


def test_an_export_whose_worker_is_killed_is_written_by_the_next_worker(
    project, annotator, project_admin, workers, tmp_path
):
    from annotation.models import Export
    from tests.factories import ComparisonFactory, judgement

    judgement(ComparisonFactory.create_pair(project=project, texts=("Yes.", "No.")), annotator, "a")
    with table_locked("annotation_judgement"):  # the export stops at its first read, mid-export
        first = workers()
        response = client_for(project_admin).post(
            f"/api/projects/{project.slug}/exports/", {"format": "votes"}, format="json"
        )
        assert response.status_code == 202, response.content
        export_id = response.json()["id"]
        wait_for(
            lambda: Export.objects.filter(pk=export_id, state="running").exists(),
            timeout=120,
            what="a worker to claim the export",
            workers=[first],
        )
        first.kill()

    second = workers()
    wait_for(
        lambda: Export.objects.filter(pk=export_id, state__in=["succeeded", "failed"]).exists(),
        timeout=120,
        what="the reaper and the next worker",
        workers=[first, second],
    )
    export = Export.objects.get(pk=export_id)
    assert (export.state, export.attempts, export.rows) == ("succeeded", 2, 1), export.error + second.tail()
    written = tmp_path / "media" / export.path
    assert written.name == f"{export_id}-votes-2.jsonl" and written.is_file()


def test_a_generation_job_whose_worker_is_killed_is_finished_by_the_next_worker(project, tiny_llama, workers):
    from tests.factories import PromptFactory, ResponseFactory
    from tests.training.helpers import ModelVersionFactory
    from training.services.generation import generation_job_create

    for i in range(2):
        ResponseFactory(prompt=PromptFactory(project=project, held_back=True), text=f"imported answer {i}")
    tuned = ModelVersionFactory(project=project, base_model=str(tiny_llama))
    with table_locked("annotation_response"):  # the job stops at its first batch, mid-job
        first = workers()
        job = generation_job_create(project=project, model_version=tuned, params={"max_new_tokens": 4})
        wait_for(
            lambda: GenerationJob.objects.filter(pk=job.pk, state="running").exists(),
            timeout=120,
            what="a worker to claim the generation job",
            workers=[first],
        )
        first.kill()

    second = workers()
    wait_for(
        lambda: GenerationJob.objects.filter(pk=job.pk, state__in=["succeeded", "failed"]).exists(),
        timeout=180,  # a job counts as silent after at least 30 s
        what="the reaper and the next worker",
        workers=[first, second],
    )
    job.refresh_from_db()
    assert (job.state, job.attempts, job.prompts_done) == ("succeeded", 2, 2), job.error + second.tail()
    assert job.comparisons_created == 2
