"""Deleting a project takes everything in it: votes, responses, model versions and their lineage,
runs and their data snapshots. Inside a project the same rows cannot be deleted one at a time
while something still refers to them (RESTRICT, not PROTECT)."""

import pytest
from django.db.models import RestrictedError
from django.urls import reverse

from annotation.models import Comparison, Judgement, JudgementTally, Project, Response
from tests.factories import ProjectFactory, UserFactory
from tests.training.helpers import ModelVersionFactory, judged_pairs
from training.models import DataSnapshot, GeneratedResponse, ModelVersion, TrainingRun
from training.services import runs

pytestmark = pytest.mark.django_db


@pytest.fixture
def full_project(project, annotator):
    """A project with votes, a generated response, a version lineage and a run on a snapshot."""
    comparisons = judged_pairs(project, annotator, 3)
    base = ModelVersionFactory(project=project)
    tuned = ModelVersionFactory(project=project, parent=base)
    generated = comparisons[0].slots.get(position=0).response
    Response.objects.filter(pk=generated.pk).update(model_version_name=tuned.name)
    GeneratedResponse.objects.create(response=generated, model_version=tuned)
    run = runs.run_create(
        project=project, kind="reward_model", config={"model": "minilm-l6", "max_steps": 1}, base_version=base
    )
    return project, comparisons, base, tuned, run


def test_deleting_a_project_takes_everything_in_it_and_nothing_else(full_project, annotator):
    project, _, base, tuned, run = full_project
    other_project = ProjectFactory()
    other = judged_pairs(other_project, annotator, 1)[0]

    project.delete()

    assert not Project.objects.filter(pk=project.pk).exists()
    assert not Comparison.objects.filter(project_id=project.pk).exists()
    assert not ModelVersion.objects.filter(pk__in=[base.pk, tuned.pk]).exists()
    assert not TrainingRun.objects.filter(pk=run.pk).exists()
    assert not DataSnapshot.objects.filter(pk=run.snapshot_id).exists()
    assert not JudgementTally.objects.filter(project_id=project.pk).exists()
    assert list(Judgement.objects.values_list("comparison_id", flat=True)) == [other.pk]
    assert JudgementTally.objects.get(project=other_project).judgements == 1


def test_a_judged_response_or_a_used_version_or_snapshot_cannot_be_deleted_alone(full_project):
    _, _, base, tuned, run = full_project
    judged_response = Response.objects.get(pk=Judgement.objects.first().left_response_id)
    for referenced in (judged_response, base, tuned, run.snapshot):
        with pytest.raises(RestrictedError):
            referenced.delete()
    assert Judgement.objects.count() == 3


def test_a_superuser_deletes_a_project_from_the_admin(client, full_project):
    project = full_project[0]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse("admin:annotation_project_delete", args=[project.pk])
    confirm = client.get(url)
    assert confirm.status_code == 200 and b"Are you sure" in confirm.content
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Project.objects.filter(pk=project.pk).exists()
