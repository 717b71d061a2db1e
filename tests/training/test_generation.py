"""Generation jobs bring a model's responses back into the annotation queue as comparisons."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.utils import timezone

from alignweb.jobs import DEFAULT_MAX_ATTEMPTS, JobState
from annotation.models import Comparison, Response
from annotation.services.errors import ValidationFailed
from tests.factories import PromptFactory, ResponseFactory
from tests.training.helpers import FakeSampler, ModelVersionFactory
from training.endpoint import EndpointClient, EndpointError
from training.models import GenerationJob
from training.services.generation import (
    generation_execute,
    generation_heartbeat,
    generation_job_claim,
    generation_job_create,
    generation_jobs_reap_stale,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def held_back(project):
    return [PromptFactory(project=project, held_back=True) for _ in range(3)]


def run_job(job, sampler, opponent_sampler=None, **kwargs):
    assert generation_job_claim(job_id=job.pk, worker_id="w1") is not None
    return generation_execute(
        job_id=job.pk, worker_id="w1", sampler=sampler, opponent_sampler=opponent_sampler, **kwargs
    )


def test_k_and_sampling_default_to_the_projects_loop_settings(project, held_back):
    from training.models import LoopSettings

    tuned = ModelVersionFactory(project=project)
    job = generation_job_create(project=project, model_version=tuned)
    assert job.k == 1 and not LoopSettings.objects.filter(project=project).exists()  # read, not written

    LoopSettings.objects.create(
        project=project, responses_per_prompt=3, generation_params={"temperature": 0.3}
    )
    job = generation_job_create(project=project, model_version=tuned, params={"top_p": 0.5})
    assert job.k == 3 and job.params["temperature"] == 0.3 and job.params["top_p"] == 0.5


def test_k_responses_per_prompt_are_paired_against_the_opponent(project, held_back):
    project.overlap = 3
    project.save()
    base, tuned = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    job = generation_job_create(project=project, model_version=tuned, opponent=base, k=2, params={"seed": 7})
    tuned_sampler, base_sampler = FakeSampler("tuned"), FakeSampler("base")
    job = run_job(job, tuned_sampler, base_sampler, batch_size=2)
    # The opponent samples with other seeds, or a barely tuned policy would write the same texts.
    assert {c["seed"] for c in tuned_sampler.calls}.isdisjoint({c["seed"] for c in base_sampler.calls})
    assert (job.state, job.prompts_done, job.responses_created, job.comparisons_created) == (
        "succeeded",
        3,
        12,
        6,
    )
    ours = Response.objects.filter(generation__model_version=tuned)
    assert ours.count() == 6
    assert ours.first().generation_params["temperature"] == 0.8 and ours.first().generation_params["n"] == 2
    for comparison in Comparison.objects.filter(project=project):
        versions = {s.response.model_version_name for s in comparison.slots.all()}
        assert versions == {base.name, tuned.name}
        assert comparison.open_slots == 3 and comparison.prompt.held_back


def test_without_an_opponent_the_imported_responses_are_the_other_side(project, held_back):
    ResponseFactory(prompt=held_back[0], text="imported answer")
    tuned = ModelVersionFactory(project=project)
    job = run_job(generation_job_create(project=project, model_version=tuned), FakeSampler())
    assert job.comparisons_created == 1  # only the prompt with an imported response
    texts = {s.response.text for s in Comparison.objects.get().slots.all()}
    assert "imported answer" in texts


def test_running_a_job_twice_duplicates_nothing(project, held_back):
    base, tuned = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    job = generation_job_create(project=project, model_version=tuned, opponent=base)
    run_job(job, FakeSampler("tuned"), FakeSampler("base"))
    assert generation_job_claim(job_id=job.pk, worker_id="w2") is None  # finished: nothing to claim
    job.state, job.prompts_done = JobState.QUEUED, 0
    job.save()
    run_job(job, FakeSampler("tuned"), FakeSampler("base"))
    assert Comparison.objects.count() == 3 and Response.objects.count() == 6


def test_a_sampler_returning_the_wrong_number_of_responses_is_an_error(project, held_back):
    class Short(FakeSampler):
        def generate(self, prompts, **kwargs):
            return super().generate(prompts, **kwargs)[:-1]

    job = generation_job_create(project=project, model_version=ModelVersionFactory(project=project))
    with pytest.raises(ValueError, match="returned"):
        run_job(job, Short())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"k": 0}, "k must be"),
        ({"params": {"temperature": -1}}, "temperature"),
        ({"params": {"beam": 2}}, "beam"),
    ],
)
def test_it_refuses_bad_generation_settings(project, kwargs, message):
    with pytest.raises(ValidationFailed, match=message):
        generation_job_create(project=project, model_version=ModelVersionFactory(project=project), **kwargs)


def test_a_reward_model_cannot_generate(project):
    with pytest.raises(ValidationFailed, match="Only policies"):
        generation_job_create(
            project=project, model_version=ModelVersionFactory(project=project, kind="reward")
        )


class _Completions(BaseHTTPRequestHandler):
    """A canned OpenAI-compatible server: echoes the last user turn, honours n only up to 1
    (as Ollama does), and fails for the model named 'broken'."""

    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model exploded")
            return
        last = body["messages"][-1]["content"]
        payload = {
            "object": "chat.completion",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": f"echo {last} #{body['seed']}"}}
            ],
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint(settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]  # a local server, let in on purpose
    _Completions.requests = []
    server = HTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_the_endpoint_client_asks_again_when_the_server_ignores_n(endpoint):
    client = EndpointClient(base_url=endpoint, model="m", api_key="secret")
    texts = client.generate(
        [[{"role": "user", "content": "hi"}]], n=2, max_new_tokens=8, temperature=0.5, top_p=1.0, seed=10
    )
    assert texts == [["echo hi #10", "echo hi #11"]]
    first = _Completions.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer secret"
    assert first["body"]["max_tokens"] == 8 and first["body"]["n"] == 2


def test_the_endpoint_client_reports_server_errors(endpoint):
    with pytest.raises(EndpointError, match="HTTP 500") as raised:
        EndpointClient(base_url=endpoint, model="broken").chat(
            [{"role": "user", "content": "hi"}], n=1, max_new_tokens=8, temperature=0.5, top_p=1.0, seed=0
        )
    assert "exploded" not in str(raised.value)  # the far side's body is logged, never shown


def test_the_endpoint_client_reports_an_unreachable_server(settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]
    with pytest.raises(EndpointError, match="Cannot reach"):
        EndpointClient(base_url="http://127.0.0.1:9", model="m", timeout=2).chat(
            [{"role": "user", "content": "hi"}], n=1, max_new_tokens=8, temperature=0.5, top_p=1.0, seed=0
        )


def test_a_version_served_from_an_endpoint_generates_comparisons(project, held_back, endpoint):
    from training.tasks import _sampler_for

    imported = ModelVersionFactory(project=project)
    for prompt in held_back:
        ResponseFactory(prompt=prompt, text="old", model_version_name=imported.name)
    remote = ModelVersionFactory(project=project, base_model="", endpoint_url=endpoint, endpoint_model="m")
    sampler, source = _sampler_for(remote)
    job = generation_job_create(project=project, model_version=remote, opponent=imported)
    job = run_job(job, sampler, source=source)
    assert job.comparisons_created == 3
    response = Response.objects.filter(generation__model_version=remote).first()
    assert response.text.startswith("echo Question number")
    assert response.generation_params["source"] == "endpoint"


def claimed_long_ago(job, worker_id, *, attempts=1):
    """As if ``worker_id`` claimed the job and then went silent an hour ago."""
    GenerationJob.objects.filter(pk=job.pk).update(
        state=JobState.RUNNING,
        worker_id=worker_id,
        attempts=attempts,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )


def test_a_job_whose_worker_died_is_queued_again_and_resumed(
    project, held_back, django_capture_on_commit_callbacks
):
    base, tuned = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    with django_capture_on_commit_callbacks(execute=False):
        job = generation_job_create(project=project, model_version=tuned, opponent=base)
    claimed_long_ago(job, "dead-worker")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert generation_jobs_reap_stale() == [job.pk]
    assert len(callbacks) == 1  # generate_responses, sent once the re-queue is committed
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.QUEUED, "")
    assert generation_jobs_reap_stale() == []  # queued, not running: not sent twice

    job = run_job(job, FakeSampler("tuned"), FakeSampler("base"))
    assert (job.state, job.attempts, job.comparisons_created) == (JobState.SUCCEEDED, 2, 3)


def test_the_reaper_leaves_a_beating_job_alone(project, held_back):
    job = generation_job_create(project=project, model_version=ModelVersionFactory(project=project))
    assert generation_job_claim(job_id=job.pk, worker_id="alive") is not None
    assert generation_jobs_reap_stale() == []
    job.refresh_from_db()
    assert (job.state, job.worker_id) == (JobState.RUNNING, "alive")


def test_the_reaper_gives_up_on_a_job_that_used_all_its_attempts(project, held_back):
    job = generation_job_create(project=project, model_version=ModelVersionFactory(project=project))
    claimed_long_ago(job, "dead-again", attempts=DEFAULT_MAX_ATTEMPTS)
    assert generation_jobs_reap_stale() == []
    job.refresh_from_db()
    assert job.state == JobState.FAILED and f"attempt 3 of {DEFAULT_MAX_ATTEMPTS}" in job.error


def test_only_the_owner_of_a_job_can_beat_for_it(project, held_back):
    job = generation_job_create(project=project, model_version=ModelVersionFactory(project=project))
    generation_job_claim(job_id=job.pk, worker_id="owner")
    assert generation_heartbeat(job_id=job.pk, worker_id="owner")
    assert not generation_heartbeat(job_id=job.pk, worker_id="someone-else")


def test_the_task_beats_while_it_loads_the_model_and_samples(project, held_back, monkeypatch):
    from training import tasks
    from training.services import generation

    job = generation_job_create(project=project, model_version=ModelVersionFactory(project=project))
    beating = []

    class RecordingHeartbeat:
        def __init__(self, *, job_id, worker_id):
            beating.append(False)

        def __enter__(self):
            beating[-1] = True

        def __exit__(self, *exc):
            beating[-1] = False

    class CheckedSampler(FakeSampler):
        def generate(self, prompts, **kwargs):
            assert beating == [True], "sampling without a heartbeat"
            return super().generate(prompts, **kwargs)

    def sampler_for(version):
        assert beating == [True], "loading the model without a heartbeat"
        return CheckedSampler(), {}

    monkeypatch.setattr(generation, "generation_heartbeat_thread", RecordingHeartbeat)
    monkeypatch.setattr(tasks, "_sampler_for", sampler_for)
    monkeypatch.setattr(tasks.score_comparisons, "delay", lambda *args: None)
    assert tasks.generate_responses(job.pk) == JobState.SUCCEEDED
    assert beating == [False]


def test_the_generation_reaper_runs_on_the_beat_schedule_of_the_default_queue():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["reap-stale-generation-jobs"]
    assert entry["task"] == "training.tasks.reap_stale_generation_jobs"
    assert entry["options"]["queue"] == "default"
