"""An endpoint version's API key is named, not stored (issue #15): only variables with the
operator's prefix may be named, the key goes to that version's endpoint only, and neither the key
nor the variable's name is ever shown back."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from rest_framework.test import APIClient

from annotation.models import Response
from annotation.services.errors import ValidationFailed
from tests.factories import PromptFactory, ResponseFactory
from tests.training.helpers import ModelVersionFactory
from training import tasks
from training.endpoint import EndpointClient
from training.endpoint_keys import MissingKey, api_key_env_check, api_key_for
from training.models import GenerationJob, ModelVersion
from training.services.generation import generation_job_create
from training.tasks import _sampler_for

pytestmark = pytest.mark.django_db

OWN_ENV = "ALIGNWEB_ENDPOINT_KEY_VLLM"
OWN_KEY = "sk-own-0123456789"
GLOBAL_KEY = "sk-global-9876543210"


class _Completions(BaseHTTPRequestHandler):
    """Answers every chat completion; remembers which path got which Authorization header."""

    seen: list[tuple[str, str | None]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Completions.seen.append((self.path, self.headers.get("Authorization")))
        choices = [
            {"index": 0, "message": {"role": "assistant", "content": f"from {self.path} #{body['seed']}"}}
        ]
        data = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(settings):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]  # a local server, let in on purpose
    _Completions.seen = []
    httpd = HTTPServer(("127.0.0.1", 0), _Completions)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv(OWN_ENV, OWN_KEY)
    monkeypatch.setenv("ALIGNWEB_ENDPOINT_API_KEY", GLOBAL_KEY)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def register(project, user, **fields):
    payload = {"name": "remote", "endpoint_url": "http://127.0.0.1:8/v1", "endpoint_model": "m"} | fields
    return api(user).post(f"/api/projects/{project.slug}/model-versions/", payload, format="json")


# --- Which names may be given. -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_KEY",
        "DATABASE_URL",
        "ALIGNWEB_ENDPOINT_API_KEY",  # the global key: given by leaving the field empty
        "ALIGNWEB_ENDPOINT_KEY_",  # the prefix alone
        "alignweb_endpoint_key_vllm",
        "ALIGNWEB_ENDPOINT_KEY_V LLM",
        "ALIGNWEB_ENDPOINT_KEY_VLLM\n",
        "XALIGNWEB_ENDPOINT_KEY_VLLM",
        "ALIGNWEB_ENDPOINT_KEY_VLLM-2",
    ],
)
def test_a_name_outside_the_operators_prefix_is_a_400_on_api_key_env(project, project_admin, settings, name):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]

    response = register(project, project_admin, api_key_env=name)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["api_key_env"]
    assert "ALIGNWEB_ENDPOINT_KEY_" in response.json()["errors"]["api_key_env"][0]
    assert not ModelVersion.objects.filter(project=project, name="remote").exists()


def test_the_rule_follows_the_operators_prefix(settings):
    settings.ALIGNWEB_ENDPOINT_KEY_PREFIX = "LLM_KEY_"

    assert api_key_env_check("LLM_KEY_OLLAMA") == "LLM_KEY_OLLAMA"
    with pytest.raises(ValidationFailed, match="LLM_KEY_"):
        api_key_env_check(OWN_ENV)


def test_a_base_model_takes_no_key_variable(project, project_admin):
    response = api(project_admin).post(
        f"/api/projects/{project.slug}/model-versions/",
        {"name": "local", "base_model": "smollm2-135m", "api_key_env": OWN_ENV},
        format="json",
    )

    assert response.status_code == 400
    assert "api_key_env" in response.json()["errors"]


# --- Never shown back. ---------------------------------------------------------------------------


def test_the_variable_is_write_only(project, project_admin, settings, keys, client):
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["127.0.0.1"]

    created = register(project, project_admin, api_key_env=OWN_ENV)
    version_id = created.json()["id"]
    listed = api(project_admin).get(f"/api/projects/{project.slug}/model-versions/")
    detail = api(project_admin).get(f"/api/projects/{project.slug}/model-versions/{version_id}/")
    client.force_login(project_admin)
    page = client.get(f"/training/{project.slug}/runs/")

    assert created.status_code == 201 and created.json()["own_api_key"] is True
    assert ModelVersion.objects.get(pk=version_id).api_key_env == OWN_ENV
    for answer in (created, listed, detail, page):
        assert answer.status_code in (200, 201)
        assert OWN_ENV.encode() not in answer.content and OWN_KEY.encode() not in answer.content
    assert "api_key_env" not in detail.json()


def test_the_key_is_not_in_the_clients_repr():
    client = EndpointClient(base_url="http://127.0.0.1:8/v1", model="m", api_key=OWN_KEY)

    assert OWN_KEY not in repr(client)


# --- Sent to that version's endpoint only. -------------------------------------------------------


def test_each_endpoint_gets_its_own_key_and_the_others_get_the_global_one(project, server, keys, monkeypatch):
    monkeypatch.setattr(tasks.score_comparisons, "delay", lambda *args: None)
    for _ in range(2):
        PromptFactory(project=project, held_back=True)
    own = ModelVersionFactory(
        project=project,
        base_model="",
        endpoint_url=f"{server}/own/v1",
        endpoint_model="m",
        api_key_env=OWN_ENV,
    )
    shared = ModelVersionFactory(
        project=project, base_model="", endpoint_url=f"{server}/shared/v1", endpoint_model="m"
    )
    job = generation_job_create(project=project, model_version=own, opponent=shared)

    assert tasks.generate_responses(job.pk) == "succeeded"

    auth: dict[str, set] = {}
    for path, header in _Completions.seen:
        auth.setdefault(path.split("/")[1], set()).add(header)
    assert auth == {"own": {f"Bearer {OWN_KEY}"}, "shared": {f"Bearer {GLOBAL_KEY}"}}
    generated = Response.objects.filter(generation__model_version__in=[own, shared])
    assert generated.count() == 4
    for response in generated:
        assert OWN_KEY not in json.dumps(response.generation_params) and OWN_ENV not in json.dumps(
            response.generation_params
        )


def test_without_any_key_no_authorization_is_sent(project, server, monkeypatch):
    monkeypatch.delenv("ALIGNWEB_ENDPOINT_API_KEY", raising=False)
    version = ModelVersionFactory(
        project=project, base_model="", endpoint_url=f"{server}/v1", endpoint_model="m"
    )

    sampler, _ = _sampler_for(version)
    sampler.generate(
        [[{"role": "user", "content": "hi"}]], n=1, max_new_tokens=4, temperature=0.5, top_p=1, seed=0
    )

    assert _Completions.seen == [("/v1/chat/completions", None)]


def test_a_named_variable_that_is_not_set_fails_the_job_and_sends_nothing(project, server, monkeypatch):
    monkeypatch.setenv("ALIGNWEB_ENDPOINT_API_KEY", GLOBAL_KEY)
    monkeypatch.delenv(OWN_ENV, raising=False)
    PromptFactory(project=project, held_back=True)
    imported = ModelVersionFactory(project=project)
    ResponseFactory(prompt=project.prompts.get(), model_version_name=imported.name)
    own = ModelVersionFactory(
        project=project,
        base_model="",
        endpoint_url=f"{server}/own/v1",
        endpoint_model="m",
        api_key_env=OWN_ENV,
    )
    job = generation_job_create(project=project, model_version=own, opponent=imported)

    assert tasks.generate_responses(job.pk) == "failed"

    job = GenerationJob.objects.get(pk=job.pk)
    assert _Completions.seen == []  # not the global key instead: that one was not meant for it
    assert job.error.startswith("MissingKey:") and OWN_ENV not in job.error and GLOBAL_KEY not in job.error


def test_a_name_the_operator_no_longer_allows_is_refused_at_use(settings, monkeypatch):
    monkeypatch.setenv(OWN_ENV, OWN_KEY)
    assert api_key_for(OWN_ENV, endpoint_url="https://llm.example.org/v1") == OWN_KEY

    settings.ALIGNWEB_ENDPOINT_KEY_PREFIX = "LLM_KEY_"

    with pytest.raises(MissingKey):
        api_key_for(OWN_ENV, endpoint_url="https://llm.example.org/v1")


def test_the_global_key_goes_only_to_hosts_the_operator_listed(settings, monkeypatch):
    monkeypatch.setenv("ALIGNWEB_ENDPOINT_API_KEY", GLOBAL_KEY)
    monkeypatch.setenv(OWN_ENV, OWN_KEY)
    settings.ALIGNWEB_ENDPOINT_ALLOWED_HOSTS = ["vllm.internal", "API.Example.org"]

    assert api_key_for("", endpoint_url="http://vllm.internal:8000/v1") == GLOBAL_KEY
    assert api_key_for("", endpoint_url="https://api.example.org./v1") == GLOBAL_KEY
    # A public server a project admin registered: reachable, but not given the operator's key.
    assert api_key_for("", endpoint_url="https://collector.example.net/v1") is None
    assert api_key_for("", endpoint_url="https://vllm.internal.example.net/v1") is None
    assert api_key_for("", endpoint_url="not a url") is None
    # A version's own key is the operator's choice for it, wherever it points.
    assert api_key_for(OWN_ENV, endpoint_url="https://collector.example.net/v1") == OWN_KEY


@pytest.mark.parametrize("prefix", ["", "KEY", "key_", "_KEY_", "A-B_"])
def test_a_prefix_that_is_not_a_variable_name_stem_stops_the_server(prefix):
    environment = {**os.environ, "ALIGNWEB_ENDPOINT_KEY_PREFIX": prefix}
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment | {"DJANGO_SETTINGS_MODULE": "alignweb.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert started.returncode != 0
    assert "ALIGNWEB_ENDPOINT_KEY_PREFIX" in started.stderr
