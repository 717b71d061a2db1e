"""The closed loop's answers have the fields the schema gives them (``training.serializers``):
the payloads are built by ``training.selectors`` for speed, the serializers only describe them."""

import pytest
from rest_framework.test import APIClient

from tests.training.helpers import ModelVersionFactory, judged_pairs
from training import serializers

pytestmark = pytest.mark.django_db


def fields(serializer_class) -> set[str]:
    return set(serializer_class().fields)


def test_every_answer_has_exactly_the_fields_of_its_schema(project, project_admin, annotator):
    judged_pairs(project, annotator, 3)
    client = APIClient()
    client.force_authenticate(project_admin)
    base = f"/api/projects/{project.slug}"
    policy = ModelVersionFactory(project=project, name="base")

    run = client.post(
        f"{base}/runs/", {"kind": "reward_model", "config": {"model": "minilm-l6"}}, format="json"
    )
    assert run.status_code == 202, run.json()
    assert set(run.json()) == fields(serializers.RunSerializer)
    assert set(client.get(f"{base}/runs/").json()[0]) == fields(serializers.RunSerializer)
    detail = client.get(f"{base}/runs/{run.json()['id']}/").json()
    assert set(detail) == fields(serializers.RunDetailSerializer)
    assert set(detail["snapshot"]) == fields(serializers.SnapshotSummarySerializer)

    assert set(client.get(f"{base}/model-versions/").json()[0]) == fields(serializers.VersionSerializer)
    version = client.get(f"{base}/model-versions/{policy.pk}/").json()
    assert set(version) == fields(serializers.VersionDetailSerializer)

    job = client.post(
        f"{base}/generations/", {"model_version": policy.pk, "held_back_only": False}, format="json"
    )
    assert job.status_code == 202, job.json()
    assert set(job.json()) == fields(serializers.GenerationJobSerializer)
    assert set(client.get(f"{base}/generations/").json()[0]) == fields(serializers.GenerationJobSerializer)

    assert set(client.get(f"{base}/loop-settings/").json()) == fields(serializers.LoopSettingsSerializer)
    assert set(client.get(f"{base}/leaderboard/").json()) == fields(serializers.LeaderboardSerializer)


def test_a_version_id_must_be_a_number_of_this_project(project, project_admin, annotator):
    client = APIClient()
    client.force_authenticate(project_admin)
    url = f"/api/projects/{project.slug}/generations/"
    assert client.post(url, {"model_version": "one"}, format="json").json() == {
        "errors": {"model_version": ["Give the version's id."]}
    }
    assert client.post(url, {}, format="json").json() == {
        "errors": {"model_version": ["Name the model version to generate from."]}
    }
    assert client.post(url, {"model_version": 10**9}, format="json").status_code == 404
    refused = client.post(url, {"model_version": None, "held_back_only": "no"}, format="json").json()
    assert refused["errors"]["held_back_only"] == ["held_back_only must be true or false."]
    assert client.post(url, [1], format="json").json() == {
        "errors": {"non_field_errors": ["Send a JSON object."]}
    }
