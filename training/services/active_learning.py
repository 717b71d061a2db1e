"""Queue order from the active scorer: the annotation queue serves open comparisons by
``priority`` (highest first), so writing priorities here *is* the queue order.

- uncertainty: ``priority = 1 - 2 * |P(A > B) - 0.5|``; 1.0 for a coin flip, 0.0 for a sure call.
- random: a uniform draw, re-drawn on every rescoring.
Gold comparisons keep their priority (the queue mixes them in at the project's gold rate).
"""

import random
from collections.abc import Callable

from django.db import transaction
from django.db.models import Count

from annotation.models import Comparison, ComparisonResponse, Project
from training.models import LoopSettings, QueueOrder

ProbFirstBetter = Callable[[list[dict], str, str], float]


def uncertainty_priority(p_first_better: float) -> float:
    """1 at P = 0.5, falling linearly to 0 at P = 0 or 1."""
    p = min(1.0, max(0.0, float(p_first_better)))
    return 1.0 - 2.0 * abs(p - 0.5)


def pending_comparisons(*, project: Project):
    """Open, non-gold comparisons of exactly two responses: what the scorer can order."""
    return (
        Comparison.objects.filter(project=project, open_slots__gt=0, is_gold=False)
        .annotate(n_slots=Count("slots"))
        .filter(n_slots=2)
        .order_by("id")
    )


def comparisons_prioritise(
    *,
    project: Project,
    prob_first_better: ProbFirstBetter | None = None,
    order: str | None = None,
    seed: int | None = None,
    batch_size: int = 500,
) -> int:
    """Re-score the project's pending comparisons in the project's queue order (or ``order``).
    Uncertainty needs ``prob_first_better(messages, text_a, text_b)`` from the active scorer;
    without one the queue order falls back to random. Returns how many were updated."""
    if order is None:
        order = LoopSettings.objects.get_or_create(project=project)[0].queue_order
    if order not in QueueOrder.values:
        raise ValueError(f"Unknown queue order {order!r}.")
    if order == QueueOrder.UNCERTAINTY and prob_first_better is None:
        order = QueueOrder.RANDOM
    rng = random.Random(seed)
    ids = list(pending_comparisons(project=project).values_list("id", flat=True))
    updated = 0
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        comparisons = {c.pk: c for c in Comparison.objects.filter(pk__in=chunk).select_related("prompt")}
        texts: dict[int, dict[int, str]] = {pk: {} for pk in chunk}
        for comparison_id, position, text in ComparisonResponse.objects.filter(
            comparison_id__in=chunk
        ).values_list("comparison_id", "position", "response__text"):
            texts[comparison_id][position] = text
        for pk in chunk:
            comparison = comparisons[pk]
            if order == QueueOrder.UNCERTAINTY:
                p = prob_first_better(comparison.prompt.messages, texts[pk][0], texts[pk][1])
                comparison.priority = uncertainty_priority(p)
            else:
                comparison.priority = rng.random()
        with transaction.atomic():
            Comparison.objects.bulk_update(list(comparisons.values()), ["priority"])
        updated += len(chunk)
    return updated


@transaction.atomic
def queue_order_set(*, project: Project, queue_order: str) -> LoopSettings:
    """Switch the project's queue order and re-score the pending comparisons after commit."""
    from annotation.services.errors import ValidationFailed

    if queue_order not in QueueOrder.values:
        raise ValidationFailed(f"Use one of: {', '.join(QueueOrder.values)}.", field="queue_order")
    loop, _ = LoopSettings.objects.get_or_create(project=project)
    loop.queue_order = queue_order
    loop.save(update_fields=["queue_order"])
    from training.tasks import score_comparisons

    score_comparisons.delay_on_commit(project.pk)
    return loop
