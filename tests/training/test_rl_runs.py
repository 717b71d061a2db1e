"""Online RL runs (rloo, ppo, soft_q): started from the API and the runs page against the project's
active scorer, trained on the snapshot's training half only, recorded and drawn like every run."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import ComparisonFactory, ProjectFactory
from tests.training.helpers import FakeExample, FakeTrainer, ModelVersionFactory, judge, judged_pairs
from training.models import DataSnapshot, ModelVersion, RunMetric, RunState, TrainingRun
from training.services import runs
from training.services.execution import run_execute
from training.services.snapshots import snapshot_examples

pytestmark = pytest.mark.django_db

RL_KINDS = ["rloo", "ppo", "soft_q"]
CONFIG = {"model": "smollm2-135m", "max_steps": 4, "k": 2}


class RecordingRL(FakeTrainer):
    """The fake trainer as an ``rl_fn``: the same resume and stop contract, and the prompts kept."""

    def __call__(self, kind, config, prompts, **kwargs):
        self.prompts = list(prompts)
        return super().__call__(kind, config, prompts, **kwargs)


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def runs_url(project) -> str:
    return f"/api/projects/{project.slug}/runs/"


@pytest.fixture
def judged(project, annotator):
    return judged_pairs(project, annotator, 4)


@pytest.fixture
def scorer(project):
    return ModelVersionFactory(
        project=project, kind="reward", checkpoint_path="/srv/checkpoints/rm/final", status="active_scorer"
    )


@pytest.mark.parametrize("kind", RL_KINDS)
def test_an_admin_starts_each_rl_kind_through_the_api_against_the_active_scorer(
    kind, project, project_admin, judged, scorer
):
    response = api(project_admin).post(runs_url(project), {"kind": kind, "config": CONFIG}, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert run.kind == kind and run.state == RunState.QUEUED
    assert run.config["reward_model"] == "/srv/checkpoints/rm/final"
    assert response.json()["config"]["reward_model"] == "/srv/checkpoints/rm/final"
    # The tuned policy gets a parent as a DPO run's does: the base model, registered once.
    assert (run.base_version.name, run.base_version.kind) == ("base:smollm2-135m", "policy")


def test_a_reward_model_given_by_the_caller_is_refused_naming_the_field(
    project, project_admin, judged, scorer
):
    config = {**CONFIG, "reward_model": "/etc/some/other/model"}
    response = api(project_admin).post(runs_url(project), {"kind": "ppo", "config": config}, format="json")
    assert response.status_code == 400
    assert "reward_model" in response.json()["errors"]["config"][0]
    assert not TrainingRun.objects.exists() and not DataSnapshot.objects.exists()


def test_an_rl_run_without_an_active_scorer_is_a_clear_400(project, project_admin, judged):
    ModelVersionFactory(project=project, kind="reward", checkpoint_path="/srv/rm")  # registered only
    response = api(project_admin).post(runs_url(project), {"kind": "rloo", "config": CONFIG}, format="json")
    assert response.status_code == 400
    assert (
        "no" in response.json()["errors"]["kind"][0]
        and "active scorer" in response.json()["errors"]["kind"][0]
    )
    assert not TrainingRun.objects.exists()


def test_another_projects_scorer_does_not_count(project, project_admin, judged):
    other = ProjectFactory()
    ModelVersionFactory(project=other, kind="reward", checkpoint_path="/srv/theirs", status="active_scorer")
    response = api(project_admin).post(runs_url(project), {"kind": "soft_q", "config": CONFIG}, format="json")
    assert response.status_code == 400 and "active scorer" in response.json()["errors"]["kind"][0]


def test_the_runs_page_offers_the_rl_kinds_with_their_fields_and_starts_one(
    client, project, project_admin, judged, scorer
):
    client.force_login(project_admin)
    page = client.get(reverse("training-runs", args=[project.slug])).content.decode()
    for kind in RL_KINDS:
        assert f'<option value="{kind}">' in page and f'data-kind="{kind}"' in page
    assert "Soft Q-learning (online RL, experimental)" in page
    assert "<code>clip_range</code>" in page and "<code>advantage</code>" in page  # typed from the configs
    assert "Set by the server: the project&#x27;s active scorer." in page
    assert '"ppo": {"model": "smollm2-135m"' in page  # the kind's default config for the textarea

    response = client.post(
        reverse("training-run-start", args=[project.slug]), {"kind": "rloo", "config": json.dumps(CONFIG)}
    )
    run = TrainingRun.objects.get()
    assert response.status_code == 302 and response.url == reverse(
        "training-run", args=[project.slug, run.pk]
    )
    assert run.kind == "rloo" and run.config["reward_model"] == scorer.checkpoint_path


def test_the_runs_page_refuses_a_reward_model_in_the_form(client, project, project_admin, judged, scorer):
    client.force_login(project_admin)
    config = json.dumps({**CONFIG, "reward_model": "/tmp/mine"})
    page = client.post(
        reverse("training-run-start", args=[project.slug]), {"kind": "rloo", "config": config}, follow=True
    ).content.decode()
    assert "reward_model is chosen by the server" in page
    assert not TrainingRun.objects.exists()


def test_an_rl_run_trains_on_the_training_halfs_prompts_only(project, annotator, scorer):
    # Two comparisons per prompt, enough of them for an evaluation split; and held-back prompts.
    for comparison in judged_pairs(project, annotator, 22):
        twin = ComparisonFactory.create_pair(
            project=project, texts=("fine", "worse"), prompt=comparison.prompt
        )
        judge(twin, annotator, "a")
    held_back = judged_pairs(project, annotator, 3, held_back=True)
    run = runs.run_create(project=project, kind="rloo", config=CONFIG)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    trainer = RecordingRL(total_steps=2)
    finished = run_execute(
        run_id=run.pk, worker_id="w1", train_fn=None, make_example=FakeExample, rl_fn=trainer
    )
    assert finished.state == RunState.SUCCEEDED, finished.error

    given = [json.dumps(p, sort_keys=True) for p in trainer.prompts]
    train, evaluation = snapshot_examples(snapshot=run.snapshot)
    eval_prompts = {json.dumps(row["prompt"], sort_keys=True) for row in evaluation}
    expected = {json.dumps(row["prompt"], sort_keys=True) for row in train} - eval_prompts
    assert eval_prompts and len(given) == len(set(given)) == len(expected)  # each prompt once
    assert set(given) == expected
    assert not {json.dumps(c.prompt.messages, sort_keys=True) for c in held_back} & set(given)
    assert trainer.calls[0]["kind"] == "rloo" and trainer.calls[0]["config"]["reward_model"]
    assert "training prompts" in finished.log_tail


def test_an_rl_run_stopped_by_cancel_keeps_its_checkpoint_and_a_reaped_one_resumes(project, judged, scorer):
    cancelled = runs.run_create(project=project, kind="ppo", config=CONFIG)
    runs.run_claim(run_id=cancelled.pk, worker_id="w1")
    runs.run_cancel(run=cancelled)
    trainer = FakeTrainer(total_steps=10)
    finished = run_execute(
        run_id=cancelled.pk, worker_id="w1", train_fn=None, make_example=FakeExample, rl_fn=trainer
    )
    assert finished.state == RunState.CANCELLED and trainer.steps_run == [1]
    assert finished.checkpoint_path.endswith("checkpoint-1")

    run = runs.run_create(project=project, kind="soft_q", config=CONFIG)
    runs.run_claim(run_id=run.pk, worker_id="dead")
    FakeTrainer._write(Path(run.output_dir), 3)
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1), step=3)
    assert runs.runs_reap_stale() == [run.pk]
    runs.run_claim(run_id=run.pk, worker_id="w2")
    trainer = FakeTrainer(total_steps=5)
    finished = run_execute(
        run_id=run.pk, worker_id="w2", train_fn=None, make_example=FakeExample, rl_fn=trainer
    )
    assert trainer.steps_run == [4, 5]
    assert (finished.state, finished.resumed_from_step) == (RunState.SUCCEEDED, 3)
    assert ModelVersion.objects.get(run=run).kind == "policy"


def test_a_worker_without_an_rl_trainer_fails_the_run_with_a_message(project, judged, scorer):
    run = runs.run_create(project=project, kind="rloo", config=CONFIG)
    runs.run_claim(run_id=run.pk, worker_id="w1")
    finished = run_execute(run_id=run.pk, worker_id="w1", train_fn=FakeTrainer(), make_example=FakeExample)
    assert finished.state == RunState.FAILED and "online RL trainer" in finished.error


@pytest.mark.parametrize(
    "kind,expected",
    [
        (
            "rloo",
            ["reward", "reward_std", "kl", "kl_coef", "entropy", "response_length", "samples_per_second"],
        ),
        ("ppo", ["reward", "advantage_mean", "policy_loss", "value_loss", "clip_fraction", "approx_kl"]),
    ],
)
def test_the_run_page_draws_the_rl_metrics(kind, expected, client, project, project_admin, judged, scorer):
    run = runs.run_create(project=project, kind=kind, config=CONFIG)
    RunMetric.objects.create(run=run, phase="train", step=1, values={"reward": 0.5, "kl": 0.01})
    client.force_login(project_admin)
    page = client.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert 'id="chart-reward"' in page and 'id="chart-kl"' in page and 'id="chart-accuracy"' not in page
    charts = json.loads(page.split('id="run-charts" type="application/json">')[1].split("</script>")[0])
    drawn = {line["key"] for chart in charts for line in chart["lines"]}
    assert set(expected) <= drawn
    if kind == "rloo":
        assert "clip_fraction" not in drawn  # PPO's own charts only on PPO runs


def test_pairwise_runs_keep_their_loss_and_accuracy_charts(client, project, project_admin, judged):
    run = runs.run_create(project=project, kind="reward_model", config={"model": "minilm-l6"})
    client.force_login(project_admin)
    page = client.get(reverse("training-run", args=[project.slug, run.pk])).content.decode()
    assert 'id="chart-loss"' in page and 'id="chart-accuracy"' in page and 'id="chart-reward"' not in page


def test_comparing_runs_adds_reward_and_kl_charts_when_an_rl_run_is_among_them(
    client, project, project_admin, judged, scorer
):
    pairwise = runs.run_create(project=project, kind="reward_model", config={"model": "minilm-l6"})
    rl = runs.run_create(project=project, kind="rloo", config=CONFIG)
    client.force_login(project_admin)
    url = reverse("training-run-compare", args=[project.slug])
    assert 'id="chart-reward"' not in client.get(f"{url}?run={pairwise.pk}").content.decode()
    page = client.get(f"{url}?run={pairwise.pk}&run={rl.pk}").content.decode()
    assert 'id="chart-reward"' in page and 'id="chart-kl"' in page


# --- The real ML core on tiny models ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_reward_checkpoint(tiny_bert, tmp_path_factory):
    """A reward model checkpoint of the tiny BERT after one step: a real scorer, trained in a second."""
    from training.ml.api import run_training
    from training.ml.data import PreferenceExample

    pairs = [PreferenceExample(prompt="hi", chosen="thanks good", rejected="bad rude") for _ in range(4)]
    config = {"model": str(tiny_bert), "max_steps": 1, "batch_size": 4, "max_length": 32, "device": "cpu"}
    result = run_training("reward_model", config, pairs, output_dir=tmp_path_factory.mktemp("rm"))
    return str(result.checkpoint_dir)


def tiny_rl_config(tiny_llama, **overrides) -> dict:
    config = {"model": str(tiny_llama), "max_steps": 2, "batch_size": 2, "k": 2, "max_new_tokens": 4,
              "max_length": 48, "lr": 1e-3, "lora": False, "device": "cpu"}  # fmt: skip
    return {**config, **overrides}


RL_METRICS = ["reward", "reward_std", "kl", "kl_coef", "entropy", "response_length", "truncated_fraction",
              "advantage_mean", "advantage_std", "samples_per_second", "loss"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("kind", RL_KINDS)
def test_a_real_tiny_rl_run_registers_a_policy_and_stores_its_metrics(
    kind, project, annotator, project_admin, tiny_llama, tiny_reward_checkpoint, client
):
    from training.ml.api import run_rl, run_training
    from training.ml.data import PreferenceExample

    judged_pairs(project, annotator, 4)
    ModelVersionFactory(
        project=project, kind="reward", checkpoint_path=tiny_reward_checkpoint, status="active_scorer"
    )
    extra = {"ppo_epochs": 2, "max_steps": 4} if kind == "ppo" else {}
    run = runs.run_create(project=project, kind=kind, config=tiny_rl_config(tiny_llama, **extra))
    runs.run_claim(run_id=run.pk, worker_id="w1")
    finished = run_execute(
        run_id=run.pk, worker_id="w1", train_fn=run_training, make_example=PreferenceExample, rl_fn=run_rl
    )
    assert finished.state == RunState.SUCCEEDED, finished.error
    version = ModelVersion.objects.get(run=run)
    assert version.kind == "policy" and version.parent == run.base_version
    assert version.lineage["config"]["reward_model"] == tiny_reward_checkpoint
    points = list(RunMetric.objects.filter(run=run, phase="train").order_by("step"))
    assert [p.step for p in points] == list(range(1, finished.step + 1))
    assert set(RL_METRICS) <= set(points[-1].values)
    if kind == "ppo":
        assert {"policy_loss", "value_loss", "clip_fraction", "approx_kl"} <= set(points[-1].values)

    client.force_login(project_admin)
    body = client.get(f"/api/projects/{project.slug}/runs/{run.pk}/").json()
    assert "reward" in body["series"]["train"][-1] and "kl" in body["series"]["train"][-1]


@pytest.mark.slow
def test_a_real_rl_run_that_lost_its_worker_resumes_from_its_checkpoint(
    project, annotator, tiny_llama, tiny_reward_checkpoint
):
    from training.ml.api import run_rl

    judged_pairs(project, annotator, 4)
    ModelVersionFactory(
        project=project, kind="reward", checkpoint_path=tiny_reward_checkpoint, status="active_scorer"
    )
    config = tiny_rl_config(tiny_llama, max_steps=3, checkpoint_every=1)
    run = runs.run_create(project=project, kind="rloo", config=config)
    runs.run_claim(run_id=run.pk, worker_id="dead")

    def dies_after_step_2(kind, config, prompts, *, on_log, **kwargs):
        # Stops as a worker that lost the run does: on_log answers True, the trainer checkpoints.
        return run_rl(kind, config, prompts, on_log=lambda e: on_log(e) or e.get("step") == 2, **kwargs)

    assert run_execute(
        run_id=run.pk, worker_id="dead", train_fn=None, make_example=None, rl_fn=dies_after_step_2
    ) is None  # fmt: skip
    TrainingRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert runs.runs_reap_stale() == [run.pk]
    runs.run_claim(run_id=run.pk, worker_id="w2")
    finished = run_execute(run_id=run.pk, worker_id="w2", train_fn=None, make_example=None, rl_fn=run_rl)
    assert (finished.state, finished.step, finished.resumed_from_step) == (RunState.SUCCEEDED, 3, 2)
    assert ModelVersion.objects.get(run=run).kind == "policy"
