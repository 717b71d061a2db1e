"""Storing an annotator's verdict on the comparison they hold a lease on."""

import json
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Judgement,
    Project,
    RationalePolicy,
)
from annotation.services.errors import Conflict, ValidationFailed
from annotation.services.queue import assignment_for_update

SHOWN_CHOICES = ("left", "right", "tie", "both_bad")
RATIONALE_MAX_CHARS = 10_000
DURATION_MAX_MS = 2_147_483_647  # the column is a PositiveIntegerField


@transaction.atomic
def judgement_submit(
    *,
    assignment_id: int,
    annotator: AbstractBaseUser,
    choice_shown: str,
    strength: int | None,
    rationale: str,
    duration_ms: int | None,
    now: datetime | None = None,
) -> tuple[Judgement, bool]:
    """Store the annotator's judgement on their assignment; return it and whether it is new.

    ``choice_shown`` is what the annotator pressed ("left", "right", "tie", "both_bad"); it is
    mapped to canonical positions through the assignment's ``display_order``, so the stored
    choice means the same whichever side each response was shown on.

    Idempotent: a double submit or a replayed request returns the judgement already stored
    (``created=False``) and changes nothing. A lease that ran out may still be submitted while its
    slot is free; once other annotators took the slot it is a ``Conflict`` and nothing is stored.
    The assignment row lock serialises this against a second submit, a skip and the lease sweep.
    """
    now = now or timezone.now()
    assignment = assignment_for_update(assignment_id=assignment_id, annotator=annotator)
    if assignment.status == AssignmentStatus.SUBMITTED:
        existing = Judgement.objects.filter(assignment=assignment).first()
        if existing is not None:
            return existing, False
        raise Conflict("This item was judged and the judgement has since been removed.", field="assignment")

    comparison = assignment.comparison
    project = comparison.project
    choice = _canonical_choice(choice_shown=choice_shown, assignment=assignment, project=project)
    _check_strength(strength=strength, choice=choice, project=project)
    rationale = _checked_rationale(rationale=rationale, project=project)
    _check_duration(duration_ms)

    fields = {
        "choice": choice,
        "strength": strength,
        "rationale": rationale,
        "duration_ms": duration_ms,
        "display_order": assignment.display_order,
    }
    store = _store_in_one_statement if connection.vendor == "postgresql" else _store_step_by_step
    judgement = store(assignment=assignment, annotator=annotator, fields=fields, now=now)
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.finished_at = now
    return judgement, True


_CONFLICT_MESSAGE = (
    "Your lease on this item ran out and other annotators have taken it; "
    "your judgement was not stored. Ask for the next item."
)

# PostgreSQL: the slot, the judgement and the assignment in one round trip (data-modifying CTEs run
# once, together, in one statement). The judgement row only exists if the slot was taken, and the
# assignment is only marked submitted if the judgement was stored.
_STORE_SQL = """
WITH slot AS (
  UPDATE annotation_comparison
     SET judgement_count = judgement_count + 1{take_free_slot}
   WHERE id = %(comparison)s{only_if_free}
  RETURNING id
), stored AS (
  INSERT INTO annotation_judgement (comparison_id, annotator_id, assignment_id, choice, strength,
                                    rationale, duration_ms, display_order, left_response_id, created_at)
  SELECT slot.id, %(annotator)s::bigint, %(assignment)s::bigint, %(choice)s::text, %(strength)s::smallint,
         %(rationale)s::text, %(duration_ms)s::integer, %(display_order)s::jsonb, cr.response_id,
         %(created_at)s::timestamptz
    FROM slot
    JOIN annotation_comparisonresponse cr ON cr.comparison_id = slot.id AND cr.position = %(left)s
  RETURNING id, left_response_id
), finished AS (
  UPDATE annotation_assignment SET status = 'submitted', finished_at = %(now)s
   WHERE id = %(assignment)s AND EXISTS (SELECT 1 FROM stored)
)
SELECT /* judgement:store */ (SELECT count(*) FROM slot), (SELECT id FROM stored),
       (SELECT left_response_id FROM stored)
"""


def _store_in_one_statement(*, assignment: Assignment, annotator, fields: dict, now: datetime) -> Judgement:
    comparison = assignment.comparison
    held = assignment.status == AssignmentStatus.LEASED
    created_at = timezone.now()
    sql = _STORE_SQL.format(
        # A held lease owns its slot (even past its time, until the sweep comes by); an expired or
        # skipped one gave it back and takes it again only if it is still free.
        take_free_slot="" if held else ", open_slots = open_slots - 1",
        only_if_free="" if held else " AND open_slots > 0",
    )
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                **fields,
                "display_order": json.dumps(fields["display_order"]),
                "comparison": comparison.pk,
                "annotator": annotator.pk,
                "assignment": assignment.pk,
                "left": assignment.display_order[0],
                "created_at": adapt(created_at),
                "now": adapt(now),
            },
        )
        slots_taken, judgement_id, left_response_id = cursor.fetchone()
    if not slots_taken:
        raise Conflict(_CONFLICT_MESSAGE, field="assignment")
    if judgement_id is None:
        raise Conflict(
            f"Comparison {comparison.pk} has no response in position {assignment.display_order[0]}.",
            field="assignment",
        )
    judgement = Judgement(
        id=judgement_id,
        comparison=comparison,
        annotator=annotator,
        assignment=assignment,
        left_response_id=left_response_id,
        created_at=created_at,
        **fields,
    )
    judgement._state.adding = False
    judgement._state.db = connection.alias
    return judgement


def _store_step_by_step(*, assignment: Assignment, annotator, fields: dict, now: datetime) -> Judgement:
    """The portable path (SQLite): the same writes, one statement at a time."""
    comparison = assignment.comparison
    with connection.cursor() as cursor:
        if assignment.status == AssignmentStatus.LEASED:
            # The slot is still this lease's (even if its time ran out and the sweep has not come by).
            cursor.execute(
                "UPDATE annotation_comparison SET judgement_count = judgement_count + 1 WHERE id = %s",
                [comparison.pk],
            )
        else:
            # Expired or skipped: the slot went back to the pool; take it again only if still free.
            cursor.execute(
                "UPDATE annotation_comparison"
                " SET open_slots = open_slots - 1, judgement_count = judgement_count + 1"
                " WHERE id = %s AND open_slots > 0",
                [comparison.pk],
            )
            if cursor.rowcount == 0:
                raise Conflict(_CONFLICT_MESSAGE, field="assignment")
        cursor.execute(
            "SELECT response_id FROM annotation_comparisonresponse"
            " WHERE comparison_id = %s AND position = %s",
            [comparison.pk, assignment.display_order[0]],
        )
        (left_response_id,) = cursor.fetchone()
        judgement = Judgement.objects.create(
            comparison=comparison,
            annotator=annotator,
            assignment=assignment,
            left_response_id=left_response_id,
            **fields,
        )
        cursor.execute(
            "UPDATE annotation_assignment SET status = %s, finished_at = %s WHERE id = %s",
            [AssignmentStatus.SUBMITTED.value, connection.ops.adapt_datetimefield_value(now), assignment.pk],
        )
    return judgement


def _canonical_choice(*, choice_shown: str, assignment: Assignment, project: Project) -> str:
    """Map a choice in display terms to canonical positions ("left" shown B means "b")."""
    if choice_shown not in SHOWN_CHOICES:
        raise ValidationFailed(
            f"Choose one of {', '.join(SHOWN_CHOICES)}; got {choice_shown!r}.", field="choice"
        )
    if choice_shown == "tie":
        if not project.allow_tie:
            raise ValidationFailed(
                "This project does not allow ties; pick the better response.", field="choice"
            )
        return Choice.TIE
    if choice_shown == "both_bad":
        if not project.allow_both_bad:
            raise ValidationFailed("This project does not allow 'both bad'.", field="choice")
        return Choice.BOTH_BAD
    order = assignment.display_order
    if len(order) != 2:
        raise ValidationFailed(
            f"This comparison has {len(order)} responses; only pairs can be judged left/right.",
            field="choice",
        )
    position = order[0] if choice_shown == "left" else order[1]
    return Choice.A if position == 0 else Choice.B


def _check_strength(*, strength: int | None, choice: str, project: Project) -> None:
    scale = project.strength_scale or []
    if strength is not None and (isinstance(strength, bool) or not isinstance(strength, int)):
        raise ValidationFailed("Strength must be an integer index into the scale, or null.", field="strength")
    if choice not in (Choice.A, Choice.B) or not scale:
        if strength is not None:
            reason = "a tie or 'both bad' has no strength" if scale else "this project does not rate strength"
            raise ValidationFailed(f"Leave strength empty: {reason}.", field="strength")
        return
    if strength is None:
        raise ValidationFailed(
            f"Say how strong the preference is: 0 to {len(scale) - 1} ({', '.join(map(str, scale))}).",
            field="strength",
        )
    if not 0 <= strength < len(scale):
        raise ValidationFailed(
            f"Strength {strength} is outside the scale 0 to {len(scale) - 1} ({', '.join(map(str, scale))}).",
            field="strength",
        )


def _checked_rationale(*, rationale: str | None, project: Project) -> str:
    if rationale is None:
        rationale = ""
    if not isinstance(rationale, str):
        raise ValidationFailed("The rationale must be text.", field="rationale")
    rationale = rationale.strip()
    if len(rationale) > RATIONALE_MAX_CHARS:
        raise ValidationFailed(
            f"The rationale is {len(rationale)} characters; the limit is {RATIONALE_MAX_CHARS}.",
            field="rationale",
        )
    if project.rationale == RationalePolicy.REQUIRED and not rationale:
        raise ValidationFailed("This project asks for a rationale: say briefly why.", field="rationale")
    if project.rationale == RationalePolicy.OFF and rationale:
        raise ValidationFailed("This project does not collect rationales; leave it empty.", field="rationale")
    return rationale


def _check_duration(duration_ms: int | None) -> None:
    if duration_ms is None:
        return
    if (
        isinstance(duration_ms, bool)
        or not isinstance(duration_ms, int)
        or not 0 <= duration_ms <= DURATION_MAX_MS
    ):
        raise ValidationFailed(
            "duration_ms must be a whole number of milliseconds, 0 or more.", field="duration_ms"
        )
