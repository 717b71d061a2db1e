"""Importing prompts, responses and comparisons from a file, all or nothing.

The whole file is read and every record parsed before anything is written; one problem refuses
the file. The writes then run in one transaction with a handful of bulk queries, deduplicated
against what the project already holds (Prompt and Response by content hash, Comparison by key),
so importing a file twice creates nothing the second time.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import BinaryIO

from django.conf import settings
from django.db import transaction

from annotation.importers import get_format
from annotation.importers.base import (
    ImportRow,
    Problem,
    ResponseIn,
    RowError,
    Skip,
    comparison_key,
    prompt_hash,
    read_records,
    response_hash,
)
from annotation.models import Comparison, ComparisonResponse, ImportBatch, Project, Prompt, Response
from annotation.services.errors import ServiceError
from annotation.sides import choice_for_position

MAX_PROBLEMS = 20  # the first problems are what a person fixes first; the rest is noise
MAX_LINES_REPORTED = 20
BATCH_SIZE = 500


class ImportRejected(ServiceError):
    """The file was refused whole. ``problems`` lists the first ones, each naming line and field."""

    def __init__(self, problems: list[Problem], *, total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        more = f" (showing the first {len(problems)})" if self.total > len(problems) else ""
        super().__init__(f"The file was refused: {self.total} problem(s){more}.", field="file")

    def as_dict(self) -> dict:
        return {
            "errors": {"file": [str(p) for p in self.problems]},
            "problems": [p.as_dict() for p in self.problems],
            "problem_count": self.total,
        }


@dataclass
class _Tally:
    """Non-fatal outcomes by reason, with the first line numbers of each, for the report."""

    by_reason: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] += 1
        if len(self.by_reason[reason]) < MAX_LINES_REPORTED:
            self.by_reason[reason].append(line)

    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {reason: {"count": n, "lines": self.by_reason[reason]} for reason, n in self.counts.items()}


@transaction.atomic
def preferences_import(*, project: Project, fmt: str, file: BinaryIO, filename: str, user) -> ImportBatch:
    """Import ``file`` in format ``fmt`` into ``project``; raise ImportRejected if any record is bad.

    Returns the ImportBatch, whose ``created`` holds counts of new prompts, responses and
    comparisons, plus skipped rows and notes (each with the first line numbers).
    """
    try:
        parser = get_format(fmt)
    except KeyError as error:
        raise ImportRejected([Problem(None, "format", str(error.args[0]))]) from None

    limit = settings.ALIGNWEB_IMPORT_MAX_BYTES
    data = file.read(limit + 1)
    if len(data) > limit:
        raise ImportRejected(
            [Problem(None, "", f"larger than the {limit:,}-byte limit (ALIGNWEB_IMPORT_MAX_BYTES)")]
        )
    records = read_records(data, max_problems=MAX_PROBLEMS)
    if records.problems and records.problems[0].line is None:
        raise ImportRejected(records.problems)

    rows: list[tuple[int, ImportRow]] = []
    problems: list[Problem] = []
    problem_count = 0
    skipped, notes = _Tally(), _Tally()
    for line, record in records.items:
        try:
            if not isinstance(record, dict):
                raise RowError("", "expected a JSON object")
            parsed = parser.parse(record)
        except RowError as error:
            problem_count += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(Problem(line, error.field, error.message))
            continue
        if isinstance(parsed, Skip):
            skipped.add(parsed.reason, line)
            continue
        for note in parsed.notes:
            notes.add(note, line)
        rows.append((line, parsed))
    if problems or records.problems:
        # Each list holds its first problems in line order, so merging them keeps the first overall.
        first = sorted(problems + records.problems, key=lambda p: p.line or 0)[:MAX_PROBLEMS]
        raise ImportRejected(first, total=problem_count + records.problem_count)

    created = _write(
        project=project, rows=rows, fmt=fmt, labelled=parser.labelled, filename=filename, notes=notes
    )
    created["skipped"] = skipped.total()
    if skipped.counts:
        created["skipped_reasons"] = skipped.as_dict()
    if notes.counts:
        created["notes"] = notes.as_dict()
    return ImportBatch.objects.create(
        project=project,
        format=fmt,
        filename=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        rows=len(records.items),
        created=created,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


# Every bulk insert ignores conflicts and then reads the ids back: two imports of the same rows at
# once (PostgreSQL) then wait on each other's unique keys and skip, rather than fail; the later
# one's counts may include rows the earlier one created.
def _write(
    *,
    project: Project,
    rows: list[tuple[int, ImportRow]],
    fmt: str,
    labelled: bool,
    filename: str,
    notes: _Tally,
) -> dict:
    source = f"{fmt}:{filename}"[:200]

    # Prompts, by content hash.
    prompts: dict[str, list[dict]] = {}
    for _, row in rows:
        prompts.setdefault(prompt_hash(row.messages), row.messages)
    prompt_ids = _existing(Prompt.objects.filter(project=project), "content_hash", list(prompts))
    new_prompts = [
        Prompt(project=project, messages=messages, content_hash=h, source=source)
        for h, messages in prompts.items()
        if h not in prompt_ids
    ]
    Prompt.objects.bulk_create(new_prompts, batch_size=BATCH_SIZE, ignore_conflicts=True)
    prompt_ids |= _existing(
        Prompt.objects.filter(project=project), "content_hash", [p.content_hash for p in new_prompts]
    )

    # Responses, by (prompt, content hash); imported ones have no model version.
    responses: dict[tuple[int, str], ResponseIn] = {}
    for _, row in rows:
        prompt_id = prompt_ids[prompt_hash(row.messages)]
        for response in row.responses:
            responses.setdefault((prompt_id, response_hash(response.text)), response)
    response_ids = _existing_responses({prompt_id for prompt_id, _ in responses})
    new_responses = [
        Response(
            prompt_id=prompt_id,
            text=response.text,
            content_hash=h,
            source_name=response.source or source,
            generation_params=response.generation_params,
        )
        for (prompt_id, h), response in responses.items()
        if (prompt_id, h) not in response_ids
    ]
    Response.objects.bulk_create(new_responses, batch_size=BATCH_SIZE, ignore_conflicts=True)
    response_ids |= _existing_responses({r.prompt_id for r in new_responses})

    # Comparisons, by key. Responses take canonical positions in the order of their hashes, so
    # "A" says nothing about which one the file preferred, and the key is independent of file order.
    comparisons: dict[str, tuple[int, list[int], str]] = {}
    for line, row in rows:
        p_hash = prompt_hash(row.messages)
        hashes = [response_hash(r.text) for r in row.responses]
        pairs = combinations(range(len(hashes)), 2) if len(hashes) >= 2 else []
        for i, j in pairs:
            ordered = sorted((i, j), key=lambda k: hashes[k])
            key = comparison_key(p_hash, [hashes[k] for k in ordered])
            prior = ""
            if labelled and row.preferred in ordered:
                prior = choice_for_position(ordered.index(row.preferred))
            if key in comparisons:
                notes.add("a comparison repeated in the file imported once", line)
                continue
            ids = [response_ids[(prompt_ids[p_hash], hashes[k])] for k in ordered]
            comparisons[key] = (prompt_ids[p_hash], ids, prior)
    comparison_ids = _existing(Comparison.objects.filter(project=project), "key", list(comparisons))
    new_comparisons = [
        Comparison(
            project=project,
            prompt_id=prompt_id,
            key=key,
            open_slots=project.overlap,
            prior_choice=prior,
            prior_source=f"import:{fmt}" if prior else "",
        )
        for key, (prompt_id, _, prior) in comparisons.items()
        if key not in comparison_ids
    ]
    Comparison.objects.bulk_create(new_comparisons, batch_size=BATCH_SIZE, ignore_conflicts=True)
    created_ids = _existing(
        Comparison.objects.filter(project=project), "key", [c.key for c in new_comparisons]
    )
    ComparisonResponse.objects.bulk_create(
        [
            ComparisonResponse(comparison_id=created_ids[key], response_id=response_id, position=position)
            for key in created_ids
            for position, response_id in enumerate(comparisons[key][1])
        ],
        batch_size=BATCH_SIZE,
        ignore_conflicts=True,
    )
    return {"prompts": len(new_prompts), "responses": len(new_responses), "comparisons": len(new_comparisons)}


def _existing(queryset, field_name: str, values: list[str]) -> dict[str, int]:
    """``{value: id}`` for rows of ``queryset`` whose ``field_name`` is in ``values``, in chunks."""
    found: dict[str, int] = {}
    for start in range(0, len(values), BATCH_SIZE):
        chunk = values[start : start + BATCH_SIZE]
        found.update(queryset.filter(**{f"{field_name}__in": chunk}).values_list(field_name, "id"))
    return found


def _existing_responses(prompt_ids: set[int]) -> dict[tuple[int, str], int]:
    found: dict[tuple[int, str], int] = {}
    ids = sorted(prompt_ids)
    for start in range(0, len(ids), BATCH_SIZE):
        rows = Response.objects.filter(
            prompt_id__in=ids[start : start + BATCH_SIZE], model_version_name=""
        ).values_list("prompt_id", "content_hash", "id")
        for prompt_id, h, pk in rows:
            found.setdefault((prompt_id, h), pk)
    return found
