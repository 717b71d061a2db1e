"""Test data and fakes for the closed loop: judged comparisons, model versions, and a fake
trainer and sampler that keep the ML core's contracts without torch."""

import json
import random
from dataclasses import dataclass
from pathlib import Path

import factory

from annotation.models import Judgement
from tests.factories import ComparisonFactory, MembershipFactory, UserFactory, content_hash
from training.models import ModelVersion


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"version-{n}")
    kind = "policy"
    base_model = "tiny-test-model"


def judge(comparison, annotator, choice: str, *, strength: int | None = None) -> Judgement:
    """A stored judgement of ``comparison`` (shown in canonical order)."""
    first = comparison.slots.get(position=0).response
    return Judgement.objects.create(
        comparison=comparison,
        annotator=annotator,
        choice=choice,
        strength=strength,
        display_order=[0, 1],
        left_response=first,
    )


def judged_pairs(project, annotator, count: int, *, choice: str = "a", held_back: bool = False) -> list:
    comparisons = []
    for i in range(count):
        comparison = ComparisonFactory.create_pair(
            project=project, texts=(f"good answer {i}", f"bad answer {i}"), prompt__held_back=held_back
        )
        judge(comparison, annotator, choice)
        comparisons.append(comparison)
    return comparisons


def member(project, username: str, role: str = "annotator"):
    return MembershipFactory(project=project, user=UserFactory(username=username), role=role).user


@dataclass
class FakeResult:
    checkpoint_dir: Path
    steps: int
    metrics: dict
    stopped: bool


@dataclass
class FakeExample:
    prompt: object
    chosen: str
    rejected: str
    margin: float | None = None
    weight: float = 1.0
    annotator_id: str | None = None
    is_tie: bool = False


class FakeTrainer:
    """Keeps ``training.ml.api.run_training``'s contract: resumes from the newest checkpoint in
    ``output_dir``, reports each step through ``on_log`` and stops (writing a checkpoint) when it
    returns True. ``crash_at`` raises after that step, as a killed worker would stop."""

    def __init__(
        self, *, total_steps: int = 6, checkpoint_every: int = 2, crash_at: int | None = None
    ) -> None:
        self.total_steps = total_steps
        self.checkpoint_every = checkpoint_every
        self.crash_at = crash_at
        self.steps_run: list[int] = []
        self.calls: list[dict] = []

    def __call__(self, kind, config, examples, *, output_dir, on_log=None, eval_examples=None, lineage=None):
        self.calls.append({"kind": kind, "config": config, "n": len(examples), "lineage": lineage})
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        done = [int(p.name.split("-")[1]) for p in output_dir.glob("checkpoint-*")]
        step = max(done, default=0)
        while step < self.total_steps:
            step += 1
            self.steps_run.append(step)
            stop = on_log(
                {
                    "event": "step",
                    "step": step,
                    "total_steps": self.total_steps,
                    "loss": 1.0 / step,
                    "eta_seconds": float(self.total_steps - step),
                    "lr": 1e-3,
                }
            )
            if self.crash_at == step:
                raise RuntimeError("worker killed")
            if stop or step % self.checkpoint_every == 0 or step == self.total_steps:
                path = self._write(output_dir, step)
                on_log(
                    {"event": "checkpoint", "step": step, "total_steps": self.total_steps, "path": str(path)}
                )
            if stop:
                return FakeResult(path, step, {"loss": 1.0 / step}, stopped=True)
        on_log(
            {"event": "eval", "step": step, "total_steps": self.total_steps, "metrics": {"accuracy": 0.75}}
        )
        final = output_dir / "final"
        final.mkdir(exist_ok=True)
        return FakeResult(final, step, {"accuracy": 0.75, "loss": 1.0 / step}, stopped=False)

    @staticmethod
    def _write(output_dir: Path, step: int) -> Path:
        path = output_dir / f"checkpoint-{step}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "checkpoint.json").write_text(json.dumps({"step": step}))
        return path


class FakeSampler:
    """Deterministic 'generation': the prompt's last turn, the seed and the sample index."""

    def __init__(self, tag: str = "tuned") -> None:
        self.tag = tag
        self.calls: list[dict] = []

    def generate(self, prompts, *, n, max_new_tokens, temperature, top_p, seed):
        self.calls.append({"prompts": len(prompts), "n": n, "seed": seed})
        rng = random.Random(seed)
        return [
            [f"{self.tag} reply {i} to {p[-1]['content']} ({rng.randint(0, 9)})" for i in range(n)]
            for p in prompts
        ]


def response_hash(text: str) -> str:
    return content_hash(text)
