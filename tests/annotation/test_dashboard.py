import pytest

from annotation.models import Export
from tests.factories import ComparisonFactory, judgement

pytestmark = pytest.mark.django_db


def url(project) -> str:
    return f"/projects/{project.slug}/dashboard/"


def test_researchers_see_progress_agreement_and_annotators_with_svg_plots(
    client, project, researcher, annotator
):
    comparison = ComparisonFactory.create_pair(project=project)
    judgement(comparison, annotator, "a", duration_ms=4000)
    judgement(comparison, researcher, "a")
    client.force_login(researcher)
    response = client.get(url(project))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 3
    assert "Progress over time" in html and "Agreement" in html
    assert "annie" in html and "rita" in html
    assert "No reward-model runs yet" in html


def test_annotators_and_outsiders_get_a_404(client, project, annotator, outsider):
    for user in (annotator, outsider):
        client.force_login(user)
        assert client.get(url(project)).status_code == 404


def test_labels_are_escaped_in_the_charts(client, project, researcher):
    from tests.factories import MembershipFactory

    evil = MembershipFactory(project=project, user__username="<script>x").user
    judgement(ComparisonFactory.create_pair(project=project), evil, "a")
    client.force_login(researcher)
    html = client.get(url(project)).content.decode()
    assert "<script>x" not in html
    assert "&lt;script&gt;x" in html


def test_the_export_form_queues_an_export(client, project, researcher, django_capture_on_commit_callbacks):
    client.force_login(researcher)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            url(project) + "export/",
            {
                "format": "trl",
                "aggregation": "unanimous",
                "ties": "exclude",
                "include_imported": "on",
                "min_votes": "",
            },
        )
    assert response.status_code == 302
    export = Export.objects.get()
    assert export.options["aggregation"] == "unanimous"
    assert export.options["include_imported"] is True and export.options["pseudonymise"] is False
    assert len(callbacks) == 1


def test_the_export_form_reports_a_bad_option(client, project, researcher):
    client.force_login(researcher)
    response = client.post(url(project) + "export/", {"format": "trl", "min_agreement": "lots"}, follow=True)
    assert b"min_agreement" in response.content
    assert not Export.objects.exists()


def test_finished_reward_model_runs_show_their_evaluation_accuracy(client, project, researcher):
    from training.models import DataSnapshot, RunMetric, TrainingRun

    snapshot = DataSnapshot.objects.create(project=project, sha256="0" * 64)
    run = TrainingRun.objects.create(
        project=project, kind="reward_model", name="rm-first", snapshot=snapshot, state="succeeded"
    )
    RunMetric.objects.create(run=run, phase="eval", step=10, values={"accuracy": 0.5})
    RunMetric.objects.create(run=run, phase="eval", step=20, values={"accuracy": 0.625})
    client.force_login(researcher)
    html = client.get(url(project)).content.decode()
    assert "No reward-model runs yet" not in html
    assert "rm-first: 0.625" in html
