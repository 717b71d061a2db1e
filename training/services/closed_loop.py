"""One click closes the loop: train a reward model and a DPO LoRA with the run form's default
configs (``training.demo_configs``), and promote each as it succeeds. The reward model becomes the
active scorer (it orders the queue); the tuned policy starts serving (a generation job puts
tuned-vs-base comparisons on held-back prompts into the queue)."""

from django.db import transaction

from annotation.models import Project
from training.demo_configs import DEMO_CONFIGS
from training.models import RunKind, TrainingRun
from training.services.runs import run_create

LOOP_KINDS = (RunKind.REWARD_MODEL, RunKind.DPO)  # the training worker takes them in this order


@transaction.atomic
def closed_loop_start(*, project: Project, created_by=None) -> list[TrainingRun]:
    """Queue both runs, or neither: a run of either kind still active in the project refuses the
    whole loop (Conflict), as nothing to train on does (ValidationFailed)."""
    return [
        run_create(
            project=project,
            kind=kind,
            config=DEMO_CONFIGS[kind],
            created_by=created_by,
            promote_when_done=True,
        )
        for kind in LOOP_KINDS
    ]
