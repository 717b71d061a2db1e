"""Storing an annotator's verdict on the comparison they hold a lease on."""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from annotation.db import prepared_cursor
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    Judgement,
    Project,
    RationalePolicy,
)
from annotation.services.errors import Conflict, ValidationFailed
from annotation.services.queue import assignment_for_update, json_column
from annotation.token_bearer import TokenBearer, checked_principal

SHOWN_CHOICES = ("left", "right", "tie", "both_bad")
RATIONALE_MAX_CHARS = 10_000
DURATION_MAX_MS = 2_147_483_647  # the column is a PositiveIntegerField


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

    PostgreSQL does it in one call of ``annotation_judgement_submit`` (migration 0005) when the
    input is of the plain types a JSON body carries; the function checks the label scheme under
    the row lock and, when the input does not fit it, stores nothing and returns the scheme for
    the checks below to name the problem. Anything else, and other databases, go step by step
    inside one transaction. ``annotator`` may be a ``TokenBearer`` on PostgreSQL: the call checks
    the token too (``annotation_judgement_submit_by_token``, 0009), and ``TokenRefused`` says it
    is no good.
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        plain = _plain_input(choice_shown, strength, rationale, duration_ms)
        if plain is not None:
            submitted, annotator = _submit_in_one_call(
                assignment_id=assignment_id, annotator=annotator, now=now, **plain
            )
            if submitted is not None:
                return submitted
    if isinstance(annotator, TokenBearer):
        annotator = annotator.user()  # input the one call does not take: check the token on its own
    return _submit_step_by_step(
        assignment_id=assignment_id,
        annotator=annotator,
        choice_shown=choice_shown,
        strength=strength,
        rationale=rationale,
        duration_ms=duration_ms,
        now=now,
    )


@transaction.atomic
def _submit_step_by_step(
    *, assignment_id: int, annotator, choice_shown, strength, rationale, duration_ms, now: datetime
) -> tuple[Judgement, bool]:
    """The portable path: lock, check, store, one statement at a time (runs on PostgreSQL too)."""
    assignment = assignment_for_update(assignment_id=assignment_id, annotator=annotator)
    fields = _checked_fields(assignment, choice_shown, strength, rationale, duration_ms)
    if fields is None:
        return _stored_judgement(assignment), False
    judgement = _store_step_by_step(assignment=assignment, annotator=annotator, fields=fields, now=now)
    assignment.status = AssignmentStatus.SUBMITTED
    assignment.finished_at = now
    return judgement, True


def _checked_fields(
    assignment: Assignment, choice_shown: str, strength: int | None, rationale: str, duration_ms: int | None
) -> dict | None:
    """The judgement's fields, validated against the project's label scheme; None for a replay."""
    if assignment.status == AssignmentStatus.SUBMITTED:
        return None
    project = assignment.comparison.project
    choice = _canonical_choice(choice_shown=choice_shown, assignment=assignment, project=project)
    _check_strength(strength=strength, choice=choice, project=project)
    rationale = _checked_rationale(rationale=rationale, project=project)
    _check_duration(duration_ms)
    return {
        "choice": choice,
        "strength": strength,
        "rationale": rationale,
        "duration_ms": duration_ms,
        "display_order": assignment.display_order,
    }


def _stored_judgement(assignment: Assignment) -> Judgement:
    existing = Judgement.objects.filter(assignment=assignment).first()
    if existing is None:
        raise Conflict(_REMOVED_MESSAGE, field="assignment")
    return existing


_CONFLICT_MESSAGE = (
    "Your lease on this item ran out and other annotators have taken it; "
    "your judgement was not stored. Ask for the next item."
)
_REMOVED_MESSAGE = "This item was judged and the judgement has since been removed."

_SUBMIT_CALL_SQL = """
SELECT /* judgement:submit */ * FROM annotation_judgement_submit(
    %(assignment)s, %(user)s, %(members_only)s, %(choice_shown)s, %(strength)s::smallint, %(rationale)s,
    %(duration_ms)s::integer, %(created_at)s, %(now)s)
"""
_SUBMIT_BY_TOKEN_CALL_SQL = """
SELECT /* judgement:submit-by-token */ * FROM annotation_judgement_submit_by_token(
    %(key)s, %(assignment)s, %(choice_shown)s, %(strength)s::smallint, %(rationale)s,
    %(duration_ms)s::integer, %(created_at)s, %(now)s)
"""
_SMALLINT = range(-32768, 32768)


def _plain_input(choice_shown, strength, rationale, duration_ms) -> dict | None:
    """The input as the one-call path takes it, if it is of plain types and passes the checks that
    do not depend on the project (rationale stripped); None sends it down the portable path, whose
    checks name what is wrong, after a replay has had its chance to return the stored judgement."""
    if rationale is None:
        rationale = ""
    if (
        not isinstance(choice_shown, str)
        or choice_shown not in SHOWN_CHOICES
        or not (strength is None or (_plain_int(strength) and strength in _SMALLINT))
        or not isinstance(rationale, str)
        or not (duration_ms is None or (_plain_int(duration_ms) and 0 <= duration_ms <= DURATION_MAX_MS))
    ):
        return None
    rationale = rationale.strip()
    if len(rationale) > RATIONALE_MAX_CHARS:
        return None
    return {
        "choice_shown": choice_shown,
        "strength": strength,
        "rationale": rationale,
        "duration_ms": duration_ms,
    }


def _plain_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _submit_in_one_call(
    *, assignment_id: int, annotator, choice_shown: str, strength, rationale: str, duration_ms, now: datetime
) -> tuple[tuple[Judgement, bool] | None, AbstractBaseUser]:
    """PostgreSQL: lock, replay check, label scheme, slot, judgement and assignment in one round trip.

    Returns the outcome and the annotator (a ``TokenBearer``'s user once the call checked it). The
    outcome is None when the function's checks refused the input but the Python ones accept it (a
    scheme it does not read, such as a strength scale that is not a list): the caller takes the
    portable path.
    """
    created_at = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "assignment": assignment_id,
        "choice_shown": choice_shown,
        "strength": strength,
        "rationale": rationale,
        "duration_ms": duration_ms,
        "created_at": adapt(created_at),
        "now": adapt(now),
    }
    with prepared_cursor() as cursor:
        if isinstance(annotator, TokenBearer):
            cursor.execute(_SUBMIT_BY_TOKEN_CALL_SQL, dict(params, key=annotator.key))
            principal_id, is_superuser, *row = cursor.fetchone()
            annotator = checked_principal(principal_id, is_superuser, row[0])
        else:
            params.update(user=annotator.pk, members_only=not annotator.is_superuser)
            cursor.execute(_SUBMIT_CALL_SQL, params)
            row = cursor.fetchone()
        (
            outcome,
            judgement_id,
            comparison_id,
            choice,
            stored_strength,
            stored_rationale,
            stored_duration_ms,
            display_order,
            left_response_id,
            stored_at,
            status,
            project_id,
            slug,
            allow_tie,
            allow_both_bad,
            strength_scale,
            rationale_policy,
            overlap,
        ) = row
    if outcome == "missing":
        raise Http404("No such assignment.")
    if outcome == "removed":
        raise Conflict(_REMOVED_MESSAGE, field="assignment")
    if outcome == "conflict":
        raise Conflict(_CONFLICT_MESSAGE, field="assignment")
    display_order = json_column(display_order)
    if outcome == "no-left-response":
        raise Conflict(
            f"Comparison {comparison_id} has no response in position {display_order[0]}.",
            field="assignment",
        )
    alias = connection.alias
    project = Project.from_db(
        alias,
        ["id", "slug", "allow_tie", "allow_both_bad", "strength_scale", "rationale", "overlap"],
        [project_id, slug, allow_tie, allow_both_bad, json_column(strength_scale), rationale_policy, overlap],
    )
    comparison = Comparison.from_db(alias, ["id", "project_id"], [comparison_id, project_id])
    comparison.project = project
    assignment = Assignment.from_db(
        alias,
        ["id", "comparison_id", "annotator_id", "status", "display_order"],
        [assignment_id, comparison_id, annotator.pk, status, display_order],
    )
    assignment.comparison = comparison
    assignment.annotator = annotator
    if outcome == "invalid":
        _checked_fields(assignment, choice_shown, strength, rationale, duration_ms)  # raises, naming why
        return None, annotator
    if outcome == "stored":
        assignment.status = AssignmentStatus.SUBMITTED
        assignment.finished_at = now
    judgement = Judgement.from_db(
        alias,
        [
            "id",
            "comparison_id",
            "annotator_id",
            "assignment_id",
            "choice",
            "strength",
            "rationale",
            "duration_ms",
            "display_order",
            "left_response_id",
            "created_at",
        ],
        [
            judgement_id,
            comparison_id,
            annotator.pk,
            assignment_id,
            choice,
            stored_strength,
            stored_rationale,
            stored_duration_ms,
            display_order,
            left_response_id,
            stored_at,
        ],
    )
    judgement.comparison = comparison
    judgement.annotator = annotator
    judgement.assignment = assignment
    return (judgement, outcome == "stored"), annotator


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
