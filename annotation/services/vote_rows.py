"""Model instances built from the rows the vote path's SQL returns, with no further queries.

The functions in ``annotation/sql/`` hand back plain columns; callers want an ``Assignment`` whose
comparison, prompt, project and shown responses are loaded. ``from_db`` builds each with only
the fields the row carries: any other field loads on first use rather than being wrong.
"""

import json

from django.db import connection

from annotation.models import Assignment, AssignmentStatus, Comparison, Judgement, Project, Prompt, Response

# The label scheme's columns, in the order the SQL returns them (scheme_project_id .. overlap).
SCHEME_FIELDS = ["id", "slug", "allow_tie", "allow_both_bad", "strength_scale", "rationale", "overlap"]


def json_column(value):
    """A JSON column read with a raw cursor: Django has the driver hand it over as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def project_with_scheme(scheme) -> Project:
    """A project from the label scheme's columns (``SCHEME_FIELDS``)."""
    project_id, slug, allow_tie, allow_both_bad, scale, rationale, overlap = scheme
    return Project.from_db(
        connection.alias,
        SCHEME_FIELDS,
        [project_id, slug, allow_tie, allow_both_bad, json_column(scale), rationale, overlap],
    )


def assignment_with_scheme(
    *, assignment_id: int, annotator, comparison_id: int, status: str, display_order, scheme
) -> Assignment:
    """An assignment, its comparison and its project with the label scheme loaded."""
    alias = connection.alias
    project = project_with_scheme(scheme)
    comparison = Comparison.from_db(alias, ["id", "project_id"], [comparison_id, project.pk])
    comparison.project = project
    assignment = Assignment.from_db(
        alias,
        ["id", "comparison_id", "annotator_id", "status", "display_order"],
        [assignment_id, comparison_id, annotator.pk, status, json_column(display_order)],
    )
    assignment.comparison = comparison
    assignment.annotator = annotator
    return assignment


def judgement_for(
    assignment: Assignment,
    *,
    judgement_id,
    choice,
    strength,
    rationale,
    duration_ms,
    left_response_id,
    created_at,
) -> Judgement:
    """The judgement on ``assignment`` from the columns the submit returns."""
    judgement = Judgement.from_db(
        connection.alias,
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
            assignment.comparison_id,
            assignment.annotator_id,
            assignment.pk,
            choice,
            strength,
            rationale,
            duration_ms,
            assignment.display_order,
            left_response_id,
            created_at,
        ],
    )
    judgement.comparison = assignment.comparison
    judgement.annotator = assignment.annotator
    judgement.assignment = assignment
    return judgement


def leased_assignment(row, *, project: Project, annotator) -> tuple[Assignment, tuple[int, int]]:
    """The lease from a row of ``annotation_queue_next``, and its (done, open to them) counts.

    The assignment has ``comparison.prompt`` loaded and ``shown_responses`` set: the comparison's
    responses in the order shown (left first).
    """
    (
        assignment_id,
        display_order,
        leased_at,
        expires_at,
        comparison_id,
        prompt_id,
        open_slots,
        messages,
        slots,
        done,
        open_to_them,
    ) = row
    alias = connection.alias
    assignment = Assignment.from_db(
        alias,
        ["id", "comparison_id", "annotator_id", "status", "display_order", "leased_at", "expires_at"],
        [
            assignment_id,
            comparison_id,
            annotator.pk,
            AssignmentStatus.LEASED,
            json_column(display_order),
            leased_at,
            expires_at,
        ],
    )
    assignment.annotator = annotator
    comparison = Comparison.from_db(
        alias,
        ["id", "project_id", "prompt_id", "open_slots"],
        [comparison_id, project.pk, prompt_id, open_slots],
    )
    comparison.project = project
    comparison.prompt = Prompt.from_db(
        alias, ["id", "project_id", "messages"], [prompt_id, project.pk, json_column(messages)]
    )
    assignment.comparison = comparison
    by_position = {
        position: Response.from_db(alias, ["id", "text"], [response_id, text])
        for position, response_id, text in json_column(slots) or []
    }
    assignment.shown_responses = [by_position[position] for position in assignment.display_order]
    return assignment, (done, open_to_them)
