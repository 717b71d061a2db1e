"""The registry: one serving policy and one active scorer per project; serving feeds the queue."""

import pytest
from django.db import IntegrityError, transaction

from annotation.services.errors import Conflict, ValidationFailed
from tests.factories import PromptFactory
from tests.training.helpers import ModelVersionFactory
from training.models import GenerationJob, ModelVersion, VersionStatus
from training.services.registry import version_create, version_promote

pytestmark = pytest.mark.django_db


def test_promoting_a_policy_demotes_the_previous_serving_one(project):
    old, new = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    version_promote(version=old, status="serving")
    version_promote(version=new, status="serving")
    old.refresh_from_db()
    assert (old.status, new.status) == (VersionStatus.REGISTERED, VersionStatus.SERVING)


def test_serving_a_tuned_policy_queues_generation_against_the_previous_serving_version(project):
    PromptFactory(project=project, held_back=True)
    PromptFactory(project=project)
    base, tuned = ModelVersionFactory(project=project), ModelVersionFactory(project=project)
    version_promote(version=base, status="serving")
    version_promote(version=tuned, status="serving")
    job = GenerationJob.objects.get(model_version=tuned)
    assert job.opponent == base and job.prompts_total == 1 and job.held_back_only


def test_without_a_previous_serving_version_the_parent_is_the_opponent(project):
    base = ModelVersionFactory(project=project)
    tuned = ModelVersionFactory(project=project, parent=base)
    version_promote(version=tuned, status="serving")
    assert GenerationJob.objects.get(model_version=tuned).opponent == base


def test_only_a_reward_model_can_be_the_active_scorer(project):
    with pytest.raises(ValidationFailed, match="Only a reward model"):
        version_promote(version=ModelVersionFactory(project=project), status="active_scorer")
    with pytest.raises(ValidationFailed, match="Only a policy"):
        version_promote(version=ModelVersionFactory(project=project, kind="reward"), status="serving")


def test_the_database_allows_one_serving_version_per_project(project):
    ModelVersionFactory(project=project, status="serving")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersionFactory(project=project, status="serving")


def test_it_registers_an_endpoint_policy(project, monkeypatch):
    public = [(2, 1, 6, "", ("93.184.216.34", 8000))]
    monkeypatch.setattr("socket.getaddrinfo", lambda *args, **kwargs: public)
    version = version_create(
        project=project, name="vllm-llama", endpoint_url="http://gpu:8000/v1", endpoint_model="llama"
    )
    assert version.kind == "policy" and version.lineage == {"registered": "endpoint"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "x"}, "exactly one"),
        ({"name": "x", "base_model": "a", "endpoint_url": "http://h", "endpoint_model": "m"}, "exactly one"),
        ({"name": "x", "endpoint_url": "ftp://h", "endpoint_model": "m"}, "http://"),
        ({"name": "x", "endpoint_url": "http://h"}, "Name the model"),
        ({"name": "x", "kind": "reward", "endpoint_url": "http://h", "endpoint_model": "m"}, "Only policies"),
        ({"name": " ", "base_model": "a"}, "needs a name"),
    ],
)
def test_it_refuses_bad_registrations(project, kwargs, message):
    with pytest.raises(ValidationFailed, match=message):
        version_create(project=project, **kwargs)


def test_a_duplicate_name_is_a_conflict(project):
    version_create(project=project, name="base", base_model="smollm2-135m")
    with pytest.raises(Conflict):
        version_create(project=project, name="base", base_model="smollm2-135m")
    assert ModelVersion.objects.filter(project=project).count() == 1
