"""Each rule ``annotation_judgement_submit`` (annotation/sql/judgement_submit.sql) enforces: its code
from the function itself, and the message and field ``judgement_submit`` turns it into."""

import re

import pytest
from django.db import connection
from django.utils import timezone

from annotation import sql
from annotation.models import Assignment, AssignmentStatus, Judgement, RationalePolicy
from annotation.services.errors import ValidationFailed
from annotation.services.judgements import judgement_submit, refusal
from annotation.services.queue import comparison_next_for_annotator
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db

SCALE = ["slight", "clear", "strong"]
# (code, project change, display order, input, field, words the message must contain)
REFUSALS = [
    (
        "choice-unknown",
        {},
        None,
        {"choice_shown": "A"},
        "choice",
        "Choose one of left, right, tie, both_bad; got 'A'",
    ),
    (
        "tie-not-allowed",
        {"allow_tie": False},
        None,
        {"choice_shown": "tie", "strength": None},
        "choice",
        "ties",
    ),
    (
        "both-bad-not-allowed",
        {"allow_both_bad": False},
        None,
        {"choice_shown": "both_bad", "strength": None},
        "choice",
        "'both bad'",
    ),
    ("not-a-pair", {}, [0, 1, 2], {}, "choice", "This comparison has 3 responses"),
    ("strength-missing", {}, None, {"strength": None}, "strength", "0 to 2 (slight, clear, strong)"),
    (
        "strength-out-of-scale",
        {},
        None,
        {"strength": 3},
        "strength",
        "Strength 3 is outside the scale 0 to 2",
    ),
    ("strength-out-of-scale", {}, None, {"strength": -1}, "strength", "Strength -1 is outside"),
    ("strength-on-tie", {}, None, {"choice_shown": "tie", "strength": 1}, "strength", "a tie or 'both bad'"),
    (
        "strength-not-rated",
        {"strength_scale": []},
        None,
        {"strength": 0},
        "strength",
        "does not rate strength",
    ),
    (
        "strength-not-rated",
        {"strength_scale": {"not": "a list"}},
        None,
        {"strength": 0},
        "strength",
        "does not rate strength",
    ),
    (
        "rationale-too-long",
        {},
        None,
        {"rationale": "x" * 10_001},
        "rationale",
        "10001 characters; the limit is 10000",
    ),
    (
        "rationale-required",
        {"rationale": RationalePolicy.REQUIRED},
        None,
        {"rationale": "   "},
        "rationale",
        "asks for a rationale",
    ),
    (
        "rationale-off",
        {"rationale": RationalePolicy.OFF},
        None,
        {"rationale": "because"},
        "rationale",
        "does not collect rationales",
    ),
    ("duration-negative", {}, None, {"duration_ms": -5}, "duration_ms", "0 or more"),
]
DEFAULT_INPUT = {"choice_shown": "left", "strength": 1, "rationale": "", "duration_ms": 1500}


@pytest.fixture
def lease(project, annotator):
    ComparisonFactory.create_pair(project=project, texts=[f"response {i}" for i in range(3)])
    project.strength_scale = SCALE
    project.save()
    return comparison_next_for_annotator(project=project, annotator=annotator)


def function_code(assignment_id, annotator, given) -> str:
    """What the function itself answers (its transaction rolled back by the test)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT outcome FROM annotation_judgement_submit(NULL, %s, false, %s, %s, %s, %s, %s, %s, %s)",
            [
                annotator.pk,
                assignment_id,
                given["choice_shown"],
                given["strength"],
                given["rationale"].strip(),
                given["duration_ms"],
                timezone.now(),
                timezone.now(),
            ],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("code", "change", "order", "given", "field", "words"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
def test_each_refusal_has_its_code_and_its_message(
    project, annotator, lease, code, change, order, given, field, words
):
    project.__class__.objects.filter(pk=project.pk).update(**change)
    Assignment.objects.filter(pk=lease.pk).update(display_order=order or [0, 1])
    given = {**DEFAULT_INPUT, **given}

    assert function_code(lease.pk, annotator, given) == code
    with pytest.raises(ValidationFailed) as error:
        judgement_submit(assignment_id=lease.pk, annotator=annotator, **given)

    assert error.value.field == field
    assert words in error.value.message
    assert not Judgement.objects.exists()
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.LEASED


def test_every_code_the_function_can_answer_has_a_message_and_a_test(lease):
    text = sql.text("judgement_submit")
    scheme_case = text[text.index("outcome := CASE") : text.index("END;", text.index("outcome := CASE"))]
    codes = set(re.findall(r"THEN '([a-z-]+)'", scheme_case))
    codes |= set(re.findall(r"outcome := '([a-z-]+)'", text))
    kept = {"stored", "replay", "missing", "removed", "conflict"}  # answered as a judgement, a 404, a 409

    for code in codes - kept:
        message, field = refusal(code, assignment=lease, choice_shown="left", strength=1, rationale="")
        assert message and field
    assert {r[0] for r in REFUSALS} == codes - kept - {"no-left-response"}


def test_a_code_without_a_message_is_an_error_not_a_silent_refusal(lease):
    with pytest.raises(RuntimeError, match="no-such-rule"):
        refusal("no-such-rule", assignment=lease, choice_shown="left", strength=1, rationale="")


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"strength": True}, "strength"),
        ({"strength": 1.0}, "strength"),
        ({"rationale": 5}, "rationale"),
        ({"duration_ms": "10"}, "duration_ms"),
        ({"choice_shown": 1}, "choice"),
    ],
)
def test_input_of_a_type_the_function_does_not_take_is_refused_before_the_call(
    project, annotator, lease, given, field, django_assert_num_queries
):
    with django_assert_num_queries(0), pytest.raises(ValidationFailed) as error:
        judgement_submit(assignment_id=lease.pk, annotator=annotator, **{**DEFAULT_INPUT, **given})
    assert error.value.field == field


def test_what_the_scheme_allows_is_stored(project, annotator, lease):
    Assignment.objects.filter(pk=lease.pk).update(display_order=[1, 0])
    judgement, created = judgement_submit(assignment_id=lease.pk, annotator=annotator, **DEFAULT_INPUT)
    assert created
    assert Judgement.objects.get().pk == judgement.pk
    assert judgement.choice == "b"  # left was shown response 1
