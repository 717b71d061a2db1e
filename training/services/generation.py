"""Generation jobs: K sampled responses per prompt from a model version, paired into new
comparisons against an opponent (the previous serving version, the parent, or imported
responses), so annotators judge the tuned model against what came before.

The sampler is passed in: ``training.ml.generation.Generator`` for checkpoints and base models,
``training.endpoint.EndpointClient`` for OpenAI-compatible servers. Both have
``generate(prompts, *, n, max_new_tokens, temperature, top_p, seed) -> list[list[str]]``.
Progress is committed per batch together with the rows it created, so a job that is run twice
or resumed after a crash continues where it stopped and never duplicates a response.
"""

import hashlib
import random
from collections.abc import Iterable
from datetime import timedelta
from typing import Protocol

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from alignweb.heartbeat import Heartbeat
from alignweb.jobs import Lifecycle
from alignweb.named_tasks import named_task
from annotation.models import Comparison, ComparisonResponse, Project, Prompt, Response
from annotation.services.errors import ValidationFailed
from training.models import GeneratedResponse, GenerationJob, ModelVersion
from training.selectors import held_back_prompts, loop_settings_for

DEFAULT_PARAMS = {"max_new_tokens": 128, "temperature": 0.8, "top_p": 0.95, "seed": 0}
MAX_K = 16
OPPONENT_SEED_OFFSET = 1_000_003
generate_responses = named_task("training.tasks.generate_responses")


class Sampler(Protocol):
    def generate(
        self,
        prompts: list[list[dict]],
        *,
        n: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[list[str]]: ...


class JobLost(Exception):
    """Another worker took the job over (this one was presumed dead)."""


def _clean_params(raw: dict) -> dict:
    unknown = set(raw) - set(DEFAULT_PARAMS)
    if unknown:
        raise ValidationFailed(
            f"Unknown generation parameters: {', '.join(sorted(unknown))}.", field="params"
        )
    params = {**DEFAULT_PARAMS, **raw}
    checks = {
        "max_new_tokens": lambda v: isinstance(v, int) and 1 <= v <= 4096,
        "temperature": lambda v: isinstance(v, int | float) and 0 <= v <= 5,
        "top_p": lambda v: isinstance(v, int | float) and 0 < v <= 1,
        "seed": lambda v: isinstance(v, int) and v >= 0,
    }
    for name, ok in checks.items():
        if isinstance(params[name], bool) or not ok(params[name]):
            raise ValidationFailed(
                f"Generation parameter {name}={params[name]!r} is out of range.", field="params"
            )
    return params


def job_prompts(job: GenerationJob):
    if job.held_back_only:
        return held_back_prompts(project=job.project)
    return Prompt.objects.filter(project_id=job.project_id).order_by("id")


@transaction.atomic
def generation_job_create(
    *,
    project: Project,
    model_version: ModelVersion,
    opponent: ModelVersion | None = None,
    k: int | None = None,
    params: dict | None = None,
    held_back_only: bool = True,
    prompt_limit: int | None = None,
    created_by=None,
) -> GenerationJob:
    """Queue a generation job (enqueued after commit)."""
    if model_version.project_id != project.pk or (opponent and opponent.project_id != project.pk):
        raise ValidationFailed("Versions must belong to the project.", field="model_version")
    if model_version.kind != "policy" or (opponent and opponent.kind != "policy"):
        raise ValidationFailed("Only policies generate responses.", field="model_version")
    if opponent and opponent.pk == model_version.pk:
        raise ValidationFailed("A version cannot be compared with itself.", field="opponent")
    loop = loop_settings_for(project=project)
    k = loop.responses_per_prompt if k is None else k
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationFailed(f"k must be from 1 to {MAX_K}.", field="k")
    if prompt_limit is not None and (not isinstance(prompt_limit, int) or prompt_limit < 1):
        raise ValidationFailed("prompt_limit must be a positive integer.", field="prompt_limit")
    job = GenerationJob(
        project=project,
        model_version=model_version,
        opponent=opponent,
        k=k,
        params=_clean_params({**(loop.generation_params or {}), **(params or {})}),
        held_back_only=held_back_only,
        prompt_limit=prompt_limit,
        created_by=created_by,
    )
    total = job_prompts(job).count()
    job.prompts_total = min(total, prompt_limit) if prompt_limit else total
    job.save()
    generate_responses.delay_on_commit(job.pk)
    return job


def _requeued(job_id: int, worker_id: str) -> None:
    generate_responses.delay_on_commit(job_id)


# At least 30 s: the first beat can wait behind loading a model, which a short
# ALIGNWEB_RUN_STALE_SECONDS (as in tests and the demo) would take for a dead worker.
GENERATION_JOBS = Lifecycle(
    GenerationJob, name="generation", min_stale=timedelta(seconds=30), on_requeue=_requeued
)


def generation_job_claim(*, job_id: int, worker_id: str) -> GenerationJob | None:
    """Take a queued job (one whose worker went silent is queued again by the reaper); None if
    someone else has it, or it is finished."""
    if not GENERATION_JOBS.claim(job_id, worker_id=worker_id):
        return None
    return GenerationJob.objects.select_related("model_version", "opponent", "project").get(pk=job_id)


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _opponent_responses(job: GenerationJob, prompt_ids: Iterable[int]) -> dict[int, list[Response]]:
    found: dict[int, list[Response]] = {pid: [] for pid in prompt_ids}
    responses = Response.objects.filter(prompt_id__in=list(found)).order_by("id")
    if job.opponent_id:
        responses = responses.filter(model_version_name=job.opponent.name)
    else:
        responses = responses.filter(model_version_name="")
    for response in responses:
        found[response.prompt_id].append(response)
    return found


def _store_responses(
    prompt: Prompt, version: ModelVersion, texts: list[str], params: dict
) -> tuple[list, int]:
    stored, created_count = [], 0
    for text in texts:
        response, created = Response.objects.get_or_create(
            prompt=prompt,
            content_hash=_text_hash(text),
            model_version_name=version.name,
            defaults={"text": text, "generation_params": params},
        )
        if created:
            GeneratedResponse.objects.create(response=response, model_version=version)
        stored.append(response)
        created_count += created
    return stored, created_count


def _pair(job: GenerationJob, prompt: Prompt, ours: Response, theirs: Response) -> bool:
    """One comparison of two responses, sides drawn at random (seeded, so a rerun draws the same)."""
    if ours.content_hash == theirs.content_hash:
        return False  # identical text: nothing to judge
    rng = random.Random(f"{job.pk}:{prompt.pk}:{ours.pk}:{theirs.pk}")
    ordered = [ours, theirs] if rng.random() < 0.5 else [theirs, ours]
    key = hashlib.sha256(
        "|".join(
            [prompt.content_hash] + [f"{r.content_hash}@{r.model_version_name}" for r in ordered]
        ).encode()
    ).hexdigest()
    comparison, created = Comparison.objects.get_or_create(
        project_id=job.project_id,
        key=key,
        defaults={"prompt": prompt, "open_slots": job.project.overlap},
    )
    if created:
        ComparisonResponse.objects.bulk_create(
            [ComparisonResponse(comparison=comparison, response=r, position=i) for i, r in enumerate(ordered)]
        )
    return created


def _sample(sampler: Sampler, prompts: list[Prompt], *, k: int, params: dict, seed: int) -> list[list[str]]:
    outputs = sampler.generate(
        [p.messages for p in prompts],
        n=k,
        max_new_tokens=params["max_new_tokens"],
        temperature=float(params["temperature"]),
        top_p=float(params["top_p"]),
        seed=seed,
    )
    if len(outputs) != len(prompts) or any(len(texts) != k for texts in outputs):
        raise ValueError(
            f"The sampler returned {[len(t) for t in outputs]} responses for {len(prompts)} prompts x {k}."
        )
    return outputs


def generation_execute(
    *,
    job_id: int,
    worker_id: str,
    sampler: Sampler,
    opponent_sampler: Sampler | None = None,
    source: dict | None = None,
    batch_size: int = 8,
) -> GenerationJob:
    """Generate the rest of a claimed job, committing each batch with its progress."""
    job = GenerationJob.objects.select_related("project", "model_version", "opponent").get(pk=job_id)
    prompts = list(job_prompts(job)[: job.prompts_total])
    while job.prompts_done < len(prompts):
        batch = prompts[job.prompts_done : job.prompts_done + batch_size]
        seed = job.params["seed"] + job.prompts_done
        outputs = _sample(sampler, batch, k=job.k, params=job.params, seed=seed)
        opponents = _opponent_responses(job, [p.pk for p in batch])
        missing = [p for p in batch if not opponents[p.pk]]
        opponent_outputs = {}
        if missing and job.opponent_id and opponent_sampler is not None:
            # Another seed: a lightly tuned policy sampled with the base's seed often writes the
            # very same text, which leaves nothing to judge.
            generated = _sample(
                opponent_sampler, missing, k=job.k, params=job.params, seed=seed + OPPONENT_SEED_OFFSET
            )
            opponent_outputs = {p.pk: texts for p, texts in zip(missing, generated, strict=True)}
        record = {**job.params, "n": job.k, "seed": seed, "job": job.pk, **(source or {})}
        with transaction.atomic():
            responses_created = comparisons_created = 0
            for prompt, texts in zip(batch, outputs, strict=True):
                ours, created = _store_responses(prompt, job.model_version, texts, record)
                responses_created += created
                theirs = opponents[prompt.pk]
                if prompt.pk in opponent_outputs:
                    theirs, created = _store_responses(
                        prompt, job.opponent, opponent_outputs[prompt.pk], {**record, "opponent": True}
                    )
                    responses_created += created
                for i, response in enumerate(ours):
                    if theirs:
                        comparisons_created += _pair(job, prompt, response, theirs[i % len(theirs)])
            owned = GENERATION_JOBS.owned(job.pk, worker_id=worker_id)
            advanced = owned.filter(prompts_done=job.prompts_done).update(
                prompts_done=F("prompts_done") + len(batch),
                responses_created=F("responses_created") + responses_created,
                comparisons_created=F("comparisons_created") + comparisons_created,
                heartbeat_at=timezone.now(),
            )
            if not advanced:
                raise JobLost(f"Generation job {job.pk} was taken over by another worker.")
        job.refresh_from_db()
    GENERATION_JOBS.finish(job.pk, worker_id=worker_id)
    job.refresh_from_db()
    return job


def generation_heartbeat(*, job_id: int, worker_id: str) -> bool:
    """Prove the worker is alive between batches; False when the job is no longer its own."""
    return GENERATION_JOBS.beat(job_id, worker_id=worker_id)


def generation_heartbeat_thread(*, job_id: int, worker_id: str) -> Heartbeat:
    """Beats while the worker loads its model and samples, so a slow batch is not taken for a
    dead worker and queued again."""
    return GENERATION_JOBS.heartbeat(job_id, worker_id=worker_id)


def generation_jobs_reap_stale(*, now=None) -> list[int]:
    """Queue again the running jobs whose worker went silent, to be claimed afresh and resumed
    from ``prompts_done`` (up to ``max_attempts`` claims); fail those out of attempts. Returns the
    ids queued again."""
    return GENERATION_JOBS.reap_stale(now=now)


def generation_fail(*, job_id: int, worker_id: str, error: str) -> None:
    GENERATION_JOBS.fail(job_id, worker_id=worker_id, error=error)
