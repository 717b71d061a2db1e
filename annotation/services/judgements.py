"""Storing an annotator's verdict on the comparison they hold a lease on.

The rules live in one place, ``annotation/sql/judgement_submit.sql``: it checks the label scheme
under the assignment's row lock and stores the judgement in the same call, or answers with a code
that says which rule the input broke. This module only checks that the input has the types the
call takes, sends it, and turns each code into the message the annotator reads.
"""

from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.utils import timezone

from annotation.models import AssignmentStatus, Judgement
from annotation.parsing import is_plain_int
from annotation.services.errors import Conflict, ValidationFailed
from annotation.services.vote_rows import assignment_with_scheme, judgement_for
from annotation.token_bearer import TokenBearer, call_as_caller

SHOWN_CHOICES = ("left", "right", "tie", "both_bad")
RATIONALE_MAX_CHARS = 10_000  # judgement_submit.sql refuses longer ones ('rationale-too-long')
_INTEGER = range(-(2**31), 2**31)  # the function's integer parameters


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
    ``annotator`` may be a ``TokenBearer``: the call checks the token too, and ``TokenRefused``
    says it is no good.
    """
    problem = _type_problem(choice_shown, strength, rationale, duration_ms)
    if problem is not None:
        if isinstance(annotator, TokenBearer):
            annotator.user()  # a bad token is refused before a bad body
        message, field = problem
        raise ValidationFailed(message, field=field)
    now = now or timezone.now()
    rationale = (rationale or "").strip()
    params = {
        "assignment": assignment_id,
        "choice_shown": choice_shown,
        "strength": strength,
        "rationale": rationale,
        "duration_ms": duration_ms,
        "created_at": timezone.now(),
        "now": now,
    }
    row, annotator = _call_submit(annotator=annotator, params=params)
    return _judgement_from_answer(
        row,
        assignment_id=assignment_id,
        annotator=annotator,
        now=now,
        given={"choice_shown": choice_shown, "strength": strength, "rationale": rationale},
    )


def _judgement_from_answer(
    row, *, assignment_id: int, annotator, now: datetime, given: dict
) -> tuple[Judgement, bool]:
    """The stored or replayed judgement from the function's answer; a refusal raised, worded."""
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
        created_at,
        status,
        *scheme,
    ) = row
    if outcome == "missing":
        raise Http404("No such assignment.")
    if outcome in _CONFLICTS:
        raise Conflict(_CONFLICTS[outcome], field="assignment")
    assignment = assignment_with_scheme(
        assignment_id=assignment_id,
        annotator=annotator,
        comparison_id=comparison_id,
        status=status,
        display_order=display_order,
        scheme=scheme,
    )
    if outcome not in ("stored", "replay"):
        message, field = refusal(outcome, assignment=assignment, **given)
        raise (Conflict if field == "assignment" else ValidationFailed)(message, field=field)
    if outcome == "stored":
        assignment.status = AssignmentStatus.SUBMITTED
        assignment.finished_at = now
    judgement = judgement_for(
        assignment,
        judgement_id=judgement_id,
        choice=choice,
        strength=stored_strength,
        rationale=stored_rationale,
        duration_ms=stored_duration_ms,
        left_response_id=left_response_id,
        created_at=created_at,
    )
    return judgement, outcome == "stored"


def _type_problem(choice_shown, strength, rationale, duration_ms) -> tuple[str, str] | None:
    """(message, field) when the input is not of the types the call takes, else None."""
    if not isinstance(choice_shown, str):
        return _choice_unknown(choice_shown), "choice"
    if strength is not None and not (is_plain_int(strength) and strength in _INTEGER):
        return "Strength must be an integer index into the scale, or null.", "strength"
    if rationale is not None and not isinstance(rationale, str):
        return "The rationale must be text.", "rationale"
    if duration_ms is not None and not (is_plain_int(duration_ms) and duration_ms in _INTEGER):
        return _DURATION_MESSAGE, "duration_ms"
    return None


_SUBMIT_CALL_SQL = """
SELECT /* judgement:submit */ * FROM annotation_judgement_submit(
    %(key)s, %(user)s, %(superuser)s, %(assignment)s, %(choice_shown)s, %(strength)s::integer,
    %(rationale)s, %(duration_ms)s::integer, %(created_at)s, %(now)s)
"""


def _call_submit(*, annotator, params: dict) -> tuple[tuple, AbstractBaseUser]:
    """One round trip: the function's row, and the annotator it acted for (a token's user)."""
    return call_as_caller(annotator, _SUBMIT_CALL_SQL, params)


_CONFLICTS = {
    "conflict": (
        "Your lease on this item ran out and other annotators have taken it; "
        "your judgement was not stored. Ask for the next item."
    ),
    "removed": "This item was judged and the judgement has since been removed.",
}
_DURATION_MESSAGE = "duration_ms must be a whole number of milliseconds, 0 or more."


def _choice_unknown(choice_shown) -> str:
    return f"Choose one of {', '.join(SHOWN_CHOICES)}; got {choice_shown!r}."


def refusal(code: str, *, assignment, choice_shown, strength, rationale) -> tuple[str, str]:
    """(message, field) for a refusal code of ``annotation_judgement_submit``.

    Words only: which rule applies is the function's to decide. The project and display order
    come from the same row, to name the scale or the number of responses.
    """
    scale = assignment.comparison.project.strength_scale
    scale = scale if isinstance(scale, list) else []  # worded only when the function found a list
    named_scale = f"0 to {len(scale) - 1} ({', '.join(map(str, scale))})"
    messages = {
        "no-left-response": (
            f"Comparison {assignment.comparison_id} has no response in position "
            f"{(assignment.display_order or [None])[0]}.",
            "assignment",
        ),
        "choice-unknown": (_choice_unknown(choice_shown), "choice"),
        "tie-not-allowed": ("This project does not allow ties; pick the better response.", "choice"),
        "both-bad-not-allowed": ("This project does not allow 'both bad'.", "choice"),
        "not-a-pair": (
            f"This comparison has {len(assignment.display_order or [])} responses; "
            "only pairs can be judged left/right.",
            "choice",
        ),
        "strength-missing": (f"Say how strong the preference is: {named_scale}.", "strength"),
        "strength-out-of-scale": (f"Strength {strength} is outside the scale {named_scale}.", "strength"),
        "strength-on-tie": ("Leave strength empty: a tie or 'both bad' has no strength.", "strength"),
        "strength-not-rated": ("Leave strength empty: this project does not rate strength.", "strength"),
        "rationale-too-long": (
            f"The rationale is {len(rationale)} characters; the limit is {RATIONALE_MAX_CHARS}.",
            "rationale",
        ),
        "rationale-required": ("This project asks for a rationale: say briefly why.", "rationale"),
        "rationale-off": ("This project does not collect rationales; leave it empty.", "rationale"),
        "duration-negative": (_DURATION_MESSAGE, "duration_ms"),
    }
    if code not in messages:
        raise RuntimeError(f"annotation_judgement_submit answered {code!r}, which has no message.")
    return messages[code]
