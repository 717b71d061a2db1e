"""The closed loop, driven the way people drive it: an import, annotators judging through the
API, an admin starting runs and promoting versions through the API. ``execute`` decides who runs
the tasks: the test itself (in-process) or a real Celery worker (end-to-end)."""

import io
import json
import random

from rest_framework.test import APIClient

from annotation.models import Assignment, Comparison, Prompt
from annotation.services.imports import preferences_import
from tests.ml.conftest import BAD, GOOD
from training.models import GeneratedResponse

TOPICS = ["hello", "hi", "how is it ?", "what is it ?", "yes", "no", "help"]


def preference_rows(n: int, seed: int = 0) -> list[dict]:
    """TRL rows whose chosen reply is kind and rejected reply rude (learnable in a few steps)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        prompt = f"{rng.choice(TOPICS)} {rng.choice(TOPICS)} {i}"
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [{"role": "assistant", "content": " ".join(rng.sample(GOOD, 3))}],
                "rejected": [{"role": "assistant", "content": " ".join(rng.sample(BAD, 3))}],
            }
        )
    return rows


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def import_and_hold_back(project, admin, *, rows: int = 24, held_back: int = 4) -> None:
    data = "\n".join(json.dumps(r) for r in preference_rows(rows)).encode()
    preferences_import(project=project, fmt="trl", file=io.BytesIO(data), filename="toy.jsonl", user=admin)
    for prompt in Prompt.objects.filter(project=project).order_by("-id")[:held_back]:
        prompt.held_back = True
        prompt.save(update_fields=["held_back"])


def judge_kindly(client: APIClient, project, count: int) -> list[int]:
    """Judge ``count`` comparisons through the API, choosing the kind reply. Returns their ids."""
    judged = []
    for _ in range(count):
        response = client.post(f"/api/projects/{project.slug}/next/")
        if response.status_code == 204:
            break
        assignment = response.json()["assignment"]
        left = assignment["responses"][0]["text"]
        choice = "left" if any(word in left.split() for word in GOOD) else "right"
        stored = client.post(
            f"/api/assignments/{assignment['id']}/judgement/",
            {"choice": choice, "strength": 1, "rationale": "", "duration_ms": 1500},
            format="json",
        )
        assert stored.status_code == 201, stored.content
        judged.append(Assignment.objects.get(pk=assignment["id"]).comparison_id)
    return judged


def reward_config(tiny_bert) -> dict:
    return {"model": str(tiny_bert), "max_steps": 6, "batch_size": 4, "lr": 1e-3, "max_length": 64,
            "eval_every": 3, "checkpoint_every": 3, "device": "cpu"}  # fmt: skip


def dpo_config(tiny_llama) -> dict:
    return {"model": str(tiny_llama), "max_steps": 4, "batch_size": 2, "lr": 1e-3, "max_length": 64,
            "checkpoint_every": 2, "device": "cpu"}  # fmt: skip


def start_runs(
    admin_client: APIClient, project, base_policy_id: int, tiny_bert, tiny_llama
) -> tuple[int, int]:
    url = f"/api/projects/{project.slug}/runs/"
    reward = admin_client.post(
        url,
        {
            "kind": "reward_model",
            "config": reward_config(tiny_bert),
            "filters": {"include_prior_labels": True},
        },
        format="json",
    )
    assert reward.status_code == 202, reward.content
    dpo = admin_client.post(
        url,
        {"kind": "dpo", "config": dpo_config(tiny_llama), "base_version": base_policy_id, "name": "tuned"},
        format="json",
    )
    assert dpo.status_code == 202, dpo.content
    return reward.json()["id"], dpo.json()["id"]


def served_tuned_vs_base(
    client: APIClient, project, tuned_id: int, base_id: int, limit: int = 60
) -> Comparison | None:
    """Take items from the queue (judging them) until one compares the tuned and base versions."""
    for _ in range(limit):
        response = client.post(f"/api/projects/{project.slug}/next/")
        if response.status_code == 204:
            return None
        assignment = response.json()["assignment"]
        comparison = Assignment.objects.get(pk=assignment["id"]).comparison
        versions = set(
            GeneratedResponse.objects.filter(
                response__in=[slot.response_id for slot in comparison.slots.all()]
            ).values_list("model_version_id", flat=True)
        )
        client.post(
            f"/api/assignments/{assignment['id']}/judgement/",
            {"choice": "left", "strength": 0, "rationale": "", "duration_ms": 900},
            format="json",
        )
        if versions == {tuned_id, base_id}:
            return comparison
    return None
