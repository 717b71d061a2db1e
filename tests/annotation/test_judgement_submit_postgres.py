"""The one-call submit on PostgreSQL (migration 0005) against the Python checks that define the rules.

The function checks the label scheme itself so that a submit is one round trip; the Python checks
in annotation.services.judgements stay the definition. Over every combination of scheme, sides
and input, the function must store exactly what the Python checks accept and refuse the rest,
called for a user or, as the API calls it, with the caller's token (migration 0009).
"""

import itertools

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotation.models import Assignment, Judgement, RationalePolicy
from annotation.services.errors import ValidationFailed
from annotation.services.judgements import _checked_fields, _plain_input, _submit_in_one_call
from annotation.services.queue import assignment_for_update, comparison_next_for_annotator
from annotation.token_bearer import TokenBearer
from tests.factories import ComparisonFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the function is PostgreSQL's")

SCHEMES = [
    {"allow_tie": tie, "allow_both_bad": both_bad, "strength_scale": scale, "rationale": policy}
    for tie, both_bad, scale, policy in itertools.product(
        [True, False], [True, False], [[], ["weak"], ["slight", "clear", "strong"]], list(RationalePolicy)
    )
]
INPUTS = list(
    itertools.product(
        ["left", "right", "tie", "both_bad"], [None, -1, 0, 1, 2, 3], ["", "because"], [None, 0, 1500]
    )
)


def python_accepts(assignment, choice, strength, rationale, duration_ms) -> bool:
    try:
        _checked_fields(assignment, choice, strength, rationale, duration_ms)
    except ValidationFailed:
        return False
    return True


@pytest.mark.django_db
@pytest.mark.parametrize("by_token", [False, True], ids=["by-user", "by-token"])
@pytest.mark.parametrize("sides", [[0, 1], [1, 0], [0, 1, 2]])
def test_the_function_stores_exactly_what_the_python_checks_accept(sides, by_token):
    project = ProjectFactory()
    annotator = MembershipFactory(project=project).user
    caller = TokenBearer(Token.objects.create(user=annotator).key) if by_token else annotator
    ComparisonFactory.create_pair(project=project, texts=[f"response {i}" for i in range(len(sides))])
    lease = comparison_next_for_annotator(project=project, annotator=annotator)
    Assignment.objects.filter(pk=lease.pk).update(display_order=sides)
    disagreements = []
    for scheme in SCHEMES:
        project.__class__.objects.filter(pk=project.pk).update(**scheme)
        with transaction.atomic():
            assignment = assignment_for_update(assignment_id=lease.pk, annotator=annotator)
        for choice, strength, rationale, duration_ms in INPUTS:
            accepted = python_accepts(assignment, choice, strength, rationale, duration_ms)
            plain = _plain_input(choice, strength, rationale, duration_ms)
            assert plain is not None
            try:
                with transaction.atomic():
                    result, acted_for = _submit_in_one_call(
                        assignment_id=lease.pk, annotator=caller, now=timezone.now(), **plain
                    )
                    assert acted_for.pk == annotator.pk
                    stored = result is not None and result[1]
                    if stored:
                        assert Judgement.objects.get().choice == result[0].choice
                    raise _Undo
            except ValidationFailed:
                stored = False
            except _Undo:
                pass
            if stored != accepted:
                disagreements.append((scheme, choice, strength, rationale, duration_ms, stored, accepted))
    assert disagreements == []
    assert not Judgement.objects.exists()


class _Undo(Exception):
    """Rolls the savepoint back so every combination starts from the same lease."""


@pytest.mark.django_db
def test_a_scheme_the_function_does_not_read_falls_back_to_the_python_checks():
    project = ProjectFactory(strength_scale={"not": "a list"})
    annotator = MembershipFactory(project=project).user
    ComparisonFactory.create_pair(project=project)
    lease = comparison_next_for_annotator(project=project, annotator=annotator)

    assert (
        _submit_in_one_call(
            assignment_id=lease.pk,
            annotator=annotator,
            now=timezone.now(),
            choice_shown="tie",
            strength=None,
            rationale="",
            duration_ms=None,
        )[0]
        is None
    )
    assert not Judgement.objects.exists()
