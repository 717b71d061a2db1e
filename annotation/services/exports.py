"""Exports: choose votes with filters, aggregate them per comparison, stream them through a
format plugin into a file, atomically, with a row count and a content hash. Queueing, running and
recovering an export as a job is ``annotation.services.export_jobs``.

Memory stays constant: comparisons and judgements are read in comparison id order and grouped
one comparison at a time. On PostgreSQL one ``COPY (... UNION ALL ...) TO STDOUT`` streams both
(the fast path); elsewhere two server-side cursors are merged (the portable path). Both feed the
same pair builder and give the same bytes (``tests/annotation/test_export_fast_path.py``).
Output is deterministic: rows follow comparison id then judgement id, keys are in a fixed order,
nothing about the export itself (time, id) goes into the content, so exporting the same data
again gives the same bytes.

Aggregation (``aggregation``) turns the votes of one comparison into one label:
- ``majority``: the label with the most votes; a shared top is a split (no label).
- ``unanimous``: a label only when every vote agrees.
- ``weighted``: like majority, each vote weighted by its annotator's reliability, the gold
  accuracy with a uniform prior ``(correct + 1) / (seen + 2)``; 0.5 for annotators never tested
  and for imported labels.
An imported label (``Comparison.prior_choice``) counts as one vote, marked ``imported``. It is on
by default (``include_imported``): it is the label the data came with, and a researcher who
wants human votes only turns it off. An annotator filter leaves imported labels out.
``agreement`` is the share of votes (unweighted) on the most common label.

Gold comparisons are exported like any other, labelled by their votes (the known answer is in
the ``votes`` rows as ``gold_choice``, next to ``is_gold``), so a dataset never mixes human
labels with answer keys silently. Filters: judgement dates (UTC days, inclusive; an imported
label is dated by its comparison), annotators (usernames), a minimum gold accuracy or the
project's flag (annotators below it are left out), a minimum agreement and number of votes per
comparison, and model versions (comparisons with a response from any of them).
"""

import datetime as dt
import hashlib
import hmac
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import CharField, FilteredRelation, Func, Q

from annotation.exporters import Pair, Vote, WriteOptions, available_formats, get_exporter
from annotation.models import Comparison, Judgement, Project
from annotation.quality.gold import annotators_below_gold_accuracy, annotators_flagged, gold_records
from annotation.quality.stats import LABELS, plurality
from annotation.services.errors import ValidationFailed
from training.models import ModelVersion

AGGREGATIONS = ("majority", "unanimous", "weighted")
TIE_POLICIES = ("exclude", "label")
CHUNK = 10_000  # rows per round trip of the server-side cursors
UNKNOWN_RELIABILITY = 0.5
SORT_MEMORY = "128MB"  # PostgreSQL work_mem for the export's sorts (per sort, server side)


@dataclass(frozen=True)
class ExportOptions:
    format: str
    aggregation: str = "majority"
    ties: str = "exclude"
    conversational: bool = True  # trl: chat messages; False writes text in the HH layout
    include_imported: bool = True
    pseudonymise: bool = True
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    annotators: tuple[str, ...] = ()
    min_gold_accuracy: float | None = None
    exclude_flagged: bool = False
    min_agreement: float | None = None
    min_votes: int = 1
    model_versions: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping) -> "ExportOptions":
        """Validate request data (API body, form, command line); ValidationFailed names the field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationFailed(f"Unknown option {unknown[0]!r}.", field=unknown[0])
        if not data.get("format"):
            raise ValidationFailed("Choose a format.", field="format")
        values = {"format": _choice(data, "format", tuple(available_formats()))}
        if "aggregation" in data:
            values["aggregation"] = _choice(data, "aggregation", AGGREGATIONS)
        if "ties" in data:
            values["ties"] = _choice(data, "ties", TIE_POLICIES)
        for name in ("conversational", "include_imported", "pseudonymise", "exclude_flagged"):
            if name in data:
                values[name] = _bool(data, name)
        for name in ("date_from", "date_to"):
            if data.get(name) not in (None, ""):
                values[name] = _date(data, name)
        for name in ("annotators", "model_versions"):
            if data.get(name) not in (None, ""):
                values[name] = _names(data, name)
        for name in ("min_gold_accuracy", "min_agreement"):
            if data.get(name) not in (None, ""):
                values[name] = _fraction(data, name)
        if data.get("min_votes") not in (None, ""):
            values["min_votes"] = _positive_int(data, "min_votes")
        options = cls(**values)
        if options.date_from and options.date_to and options.date_from > options.date_to:
            raise ValidationFailed("date_from is after date_to.", field="date_from")
        return options

    def as_dict(self) -> dict:
        """JSON-ready, every field present: what the Export row records."""
        out = asdict(self)
        for name in ("date_from", "date_to"):
            out[name] = out[name].isoformat() if out[name] else None
        for name in ("annotators", "model_versions"):
            out[name] = list(out[name])
        return out

    @property
    def write_options(self) -> WriteOptions:
        return WriteOptions(conversational=self.conversational, ties=self.ties)


def _choice(data: Mapping, name: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise ValidationFailed(f"{name} must be one of {', '.join(allowed)}; got {value!r}.", field=name)
    return value


def _bool(data: Mapping, name: str) -> bool:
    value = data[name]
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "on", "false", "0", "no", "off"}:
        return value.lower() in {"true", "1", "yes", "on"}
    raise ValidationFailed(f"{name} must be true or false.", field=name)


def _date(data: Mapping, name: str) -> dt.date:
    value = data[name]
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be a date like 2025-01-31.", field=name) from None


def _names(data: Mapping, name: str) -> tuple[str, ...]:
    value = data[name]
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed(f"{name} must be a list of names.", field=name)
    return tuple(sorted({item.strip() for item in value if item.strip()}))


def _fraction(data: Mapping, name: str) -> float:
    try:
        value = float(data[name])
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} must be a number between 0 and 1.", field=name) from None
    if not 0.0 <= value <= 1.0:
        raise ValidationFailed(f"{name} must be between 0 and 1.", field=name)
    return value


def _positive_int(data: Mapping, name: str) -> int:
    value = data[name]
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise ValidationFailed(f"{name} must be a whole number of at least 1.", field=name)
    return int(value)


def pseudonym(*, project: Project, annotator_id: int) -> str:
    """A stable id that does not reveal the user: HMAC-SHA256 of the project and user ids under
    SECRET_KEY, so the same annotator has different pseudonyms in different projects."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"{project.pk}:{annotator_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"anon-{digest[:16]}"


class IsoUtc(Func):
    """A timestamp as ISO 8601 text in UTC, formatted by the database: turning millions of
    timestamps into datetime objects in Python costs more than all the rest of a vote row."""

    output_field = CharField()
    template = "CAST(%(expressions)s AS TEXT)"

    def as_postgresql(self, compiler, connection, **extra):
        template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC: the same text isoformat() gives.
        return self.as_sql(
            compiler, connection, template="(replace(%(expressions)s, ' ', 'T') || '+00:00')", **extra
        )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


# The columns the pair builder reads, in this order, from either row source.
COMPARISON_FIELDS = (
    "id",
    "prompt_id",
    "prompt__messages",
    "slot_a__response_id",
    "slot_a__response__text",
    "slot_b__response__text",
    "slot_a__response__model_version_id",
    "slot_a__response__source_name",
    "slot_b__response__model_version_id",
    "slot_b__response__source_name",
    "prior_choice",
    "prior_source",
    "is_gold",
    "gold_choice",
    "created",
)
JUDGEMENT_FIELDS = (
    "comparison_id",
    "id",
    "annotator_id",
    "choice",
    "strength",
    "rationale",
    "duration_ms",
    "left_response_id",
    "created",
)
# PostgreSQL types of those columns as the COPY fast path casts and loads them.
_COMPARISON_TYPES = (
    "int8",
    "int8",
    "text",  # the messages as JSON text, decoded here: Django's jsonb loader leaves them as text
    "int8",
    "text",
    "text",
    "int8",
    "text",
    "int8",
    "text",
    "text",
    "text",
    "bool",
    "text",
    "text",
)
_JUDGEMENT_TYPES = ("int8", "int8", "int8", "text", "int4", "text", "int4", "int8", "text")

_STREAMING_PLAN = (
    ("enable_hashjoin", "off"),
    ("enable_mergejoin", "off"),
    ("max_parallel_workers_per_gather", 0),
)
Group = tuple[tuple, list[tuple]]  # (comparison row, its judgement rows in id order)


def _selection(*, project: Project, options: ExportOptions, version_names: dict[int, str]):
    """The comparisons and the judgements an export reads, as unordered querysets of
    ``COMPARISON_FIELDS`` / ``JUDGEMENT_FIELDS`` tuples: the one definition of the filters both
    row sources share."""
    comparisons = Comparison.objects.filter(project=project).annotate(
        slot_a=FilteredRelation("slots", condition=Q(slots__position=0)),
        slot_b=FilteredRelation("slots", condition=Q(slots__position=1)),
    )
    comparisons = comparisons.filter(slot_a__response__isnull=False, slot_b__response__isnull=False)
    if options.model_versions:
        wanted = [pk for pk, name in version_names.items() if name in options.model_versions]
        unknown = sorted(set(options.model_versions) - set(version_names.values()))
        if unknown:
            raise ValidationFailed(
                f"No model version named {unknown[0]!r} in this project.", field="model_versions"
            )
        comparisons = comparisons.filter(
            Q(slot_a__response__model_version_id__in=wanted)
            | Q(slot_b__response__model_version_id__in=wanted)
        )
    comparisons = (
        comparisons.annotate(created=IsoUtc("created_at")).order_by().values_list(*COMPARISON_FIELDS)
    )

    judgements = Judgement.objects.filter(comparison__project=project)
    if options.date_from:
        judgements = judgements.filter(created_at__gte=_day_start(options.date_from))
    if options.date_to:
        judgements = judgements.filter(created_at__lt=_day_start(options.date_to + dt.timedelta(days=1)))
    if options.annotators:
        judgements = judgements.filter(
            **{f"annotator__{get_user_model().USERNAME_FIELD}__in": options.annotators}
        )
    excluded: set[int] = set()
    if options.exclude_flagged:
        excluded |= annotators_flagged(project=project)
    if options.min_gold_accuracy is not None:
        excluded |= annotators_below_gold_accuracy(project=project, threshold=options.min_gold_accuracy)
    if excluded:
        judgements = judgements.exclude(annotator_id__in=sorted(excluded))
    judgements = judgements.annotate(created=IsoUtc("created_at")).order_by().values_list(*JUDGEMENT_FIELDS)
    return comparisons, judgements


def _groups_by_cursors(comparisons, judgements) -> Iterator[Group]:
    """The portable row source (any database): two server-side cursors, both ordered by
    comparison id, merged one comparison at a time."""
    comparison_rows = comparisons.order_by("id").iterator(chunk_size=CHUNK)
    judgement_rows = judgements.order_by("comparison_id", "id").iterator(chunk_size=CHUNK)
    pending = next(judgement_rows, None)
    for row in comparison_rows:
        comparison_id = row[0]
        # Judgements of comparisons filtered out above come first in the merge: skip them.
        while pending is not None and pending[0] < comparison_id:
            pending = next(judgement_rows, None)
        votes = []
        while pending is not None and pending[0] == comparison_id:
            votes.append(pending)
            pending = next(judgement_rows, None)
        yield row, votes


def _groups_by_copy(comparisons, judgements) -> Iterator[Group]:
    """The PostgreSQL row source: both selections in ONE ``COPY (... UNION ALL ...) TO STDOUT``,
    each comparison row followed by its judgements. The server streams while Python works (a
    cursor makes each side wait for the other at every fetch), and rows skip Django's
    per-value converters. It yields exactly what ``_groups_by_cursors`` yields."""
    # Each half in comparison id order, so the server merges two ordered streams and sends the
    # first rows at once instead of sorting everything first: Python then works while PostgreSQL
    # reads, which on a busy machine matters more than the server's CPU.
    c_sql, c_params = comparisons.order_by("id").query.sql_with_params()
    j_sql, j_params = judgements.order_by("comparison_id", "id").query.sql_with_params()
    c_cols = [f"c{i}" for i in range(len(COMPARISON_FIELDS))]
    j_cols = [f"j{i}" for i in range(len(JUDGEMENT_FIELDS))]
    c_values = [f"{col}::{kind}" for col, kind in zip(c_cols, _COMPARISON_TYPES, strict=True)]
    j_values = [f"{col}::{kind}" for col, kind in zip(j_cols, _JUDGEMENT_TYPES, strict=True)]
    c_nulls = [f"NULL::{kind}" for kind in _COMPARISON_TYPES]
    j_nulls = [f"NULL::{kind}" for kind in _JUDGEMENT_TYPES]
    # Rows sort by comparison id, the comparison (judgement id NULL) first, then its judgements.
    sql = (
        f"COPY (SELECT c0::int8, NULL::int8, {', '.join(c_values + j_nulls)}"
        f" FROM ({c_sql}) AS c({', '.join(c_cols)})"
        f" UNION ALL SELECT j0::int8, j1::int8, {', '.join(c_nulls + j_values)}"
        f" FROM ({j_sql}) AS j({', '.join(j_cols)})"
        " ORDER BY 1, 2 NULLS FIRST) TO STDOUT (FORMAT BINARY)"
    )
    split = 2 + len(COMPARISON_FIELDS)
    loads = json.loads
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # the psycopg cursor under Django's wrapper
        # Index-ordered nested loops stream; hash joins (the planner's pick for a whole table)
        # must finish and be sorted before the first row leaves the server.
        for name, value in _STREAMING_PLAN:
            cursor.execute(f"SET LOCAL {name} = {value}")
        with cursor.copy(sql, (*c_params, *j_params)) as copy:
            copy.set_types(["int8", "int8", *_COMPARISON_TYPES, *_JUDGEMENT_TYPES])
            comparison = None
            votes: list[tuple] = []
            for row in copy.rows():
                if row[1] is not None:
                    if comparison is not None and row[0] == comparison[0]:
                        votes.append(row[split:])
                    # else: a judgement of a comparison the filters left out
                    continue
                if comparison is not None:
                    yield comparison, votes
                comparison = row[2:split]
                comparison = (comparison[0], comparison[1], loads(comparison[2]), *comparison[3:])
                votes = []
            if comparison is not None:
                yield comparison, votes
        for name, _ in _STREAMING_PLAN:
            cursor.execute(f"RESET {name}")


def use_copy() -> bool:
    """Whether exports read through PostgreSQL's COPY (the fast path) on this connection."""
    return connection.vendor == "postgresql"


def export_pairs(*, project: Project, options: ExportOptions, fast: bool | None = None) -> Iterator[Pair]:
    """The filtered, aggregated comparisons of ``project`` in comparison id order, streamed.

    ``fast`` picks the row source: COPY on PostgreSQL (the default there) or the portable
    cursors (``fast=False``, and always on other databases); both give the same pairs.
    Run it inside a transaction (``export_write`` does) so every read sees one snapshot.
    """
    # Model version names come from a dict, not a join: a project has few versions, and two
    # more joins per comparison cost more than the rest of the query on a large export.
    version_names = dict(ModelVersion.objects.filter(project=project).values_list("id", "name"))
    comparisons, judgements = _selection(project=project, options=options, version_names=version_names)
    if fast is None:
        fast = use_copy()
    elif fast and not use_copy():
        raise ValueError("The COPY row source needs PostgreSQL.")
    groups = _groups_by_copy(comparisons, judgements) if fast else _groups_by_cursors(comparisons, judgements)

    weights: dict[int, float] = {}
    if options.aggregation == "weighted":
        weights = {pk: record.reliability for pk, record in gold_records(project=project).items()}
    names: dict[int, str] = {}
    if not options.pseudonymise:
        # Looked up before the rows stream: no other query can run on the connection during COPY.
        users = get_user_model().objects.filter(
            pk__in=Judgement.objects.filter(comparison__project=project).values("annotator_id")
        )
        names = {user.pk: user.get_username() for user in users}

    def annotator_name(annotator_id: int) -> str:
        name = names[annotator_id] = pseudonym(project=project, annotator_id=annotator_id)
        return name

    include_prior = options.include_imported and not options.annotators
    min_votes, min_agreement, method = options.min_votes, options.min_agreement, options.aggregation
    for (
        (
            comparison_id,
            prompt_id,
            messages,
            a_id,
            text_a,
            text_b,
            version_a,
            source_a,
            version_b,
            source_b,
            prior_choice,
            prior_source,
            is_gold,
            gold_choice,
            created_at,
        ),
        judgement_rows,
    ) in groups:
        votes: list[Vote] = []
        for (
            _,
            judgement_id,
            annotator_id,
            choice,
            strength,
            rationale,
            duration_ms,
            left_id,
            at,
        ) in judgement_rows:
            name = names.get(annotator_id)
            votes.append(
                Vote(
                    judgement_id,
                    annotator_name(annotator_id) if name is None else name,
                    choice,
                    strength,
                    rationale,
                    duration_ms,
                    "a" if left_id == a_id else "b",
                    at,
                    False,
                    "",
                    weights.get(annotator_id, UNKNOWN_RELIABILITY),
                )
            )
        if include_prior and prior_choice and _in_dates(created_at, options):
            votes.append(
                Vote(
                    judgement_id=None,
                    annotator=None,
                    choice=prior_choice,
                    strength=None,
                    rationale="",
                    duration_ms=None,
                    left=None,
                    created_at=None,
                    imported=True,
                    source=prior_source,
                    weight=UNKNOWN_RELIABILITY,
                )
            )
        if not votes or len(votes) < min_votes:
            continue
        label, agreement = aggregate(votes, method)
        if min_agreement is not None and agreement < min_agreement:
            continue
        yield Pair(
            comparison_id=comparison_id,
            prompt_id=prompt_id,
            messages=messages,
            response_a=text_a,
            response_b=text_b,
            model_a=version_names[version_a] if version_a else source_a,
            model_b=version_names[version_b] if version_b else source_b,
            is_gold=is_gold,
            gold_choice=gold_choice,
            votes=votes,
            label=label,
            agreement=agreement,
        )


def _in_dates(created: str, options: ExportOptions) -> bool:
    if not (options.date_from or options.date_to):
        return True
    when = dt.datetime.fromisoformat(created)
    if options.date_from and when < _day_start(options.date_from):
        return False
    return not (options.date_to and when >= _day_start(options.date_to + dt.timedelta(days=1)))


def aggregate(votes: list[Vote], method: str) -> tuple[str | None, float]:
    """(label or None for a split, share of votes on the most common label)."""
    counts = dict.fromkeys(LABELS, 0)
    for vote in votes:
        counts[vote.choice] += 1
    agreement = max(counts.values()) / len(votes)
    if method == "unanimous":
        return (votes[0].choice if agreement == 1.0 else None), agreement
    if method == "weighted":
        weights = dict.fromkeys(LABELS, 0.0)
        for vote in votes:
            weights[vote.choice] += vote.weight
        return plurality(weights), agreement
    return plurality(counts), agreement


def export_write(*, project: Project, options: ExportOptions, out: BinaryIO) -> int:
    """Stream the export into ``out``; return the rows written. Reads one database snapshot."""
    exporter = get_exporter(options.format)
    outer = connection.in_atomic_block  # a caller's (or a test's) transaction has run queries already
    with transaction.atomic():
        if connection.vendor == "postgresql" and not outer:
            # Both cursors (comparisons, judgements) then see the same committed data.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if connection.vendor == "postgresql":
            # Cursors are planned for their first rows by default (nested loops); an export reads
            # every row, so plan for the whole result (hash joins, sequential scans).
            # JIT compiling a plan this size costs seconds and saves less than it costs here, and
            # the one sort of the COPY path fits in memory with a larger work_mem.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
                cursor.execute("SET LOCAL jit = off")
                cursor.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
        # Closed before the transaction ends, even when the exporter fails half way: an open COPY
        # holds the connection, and the rollback would wait for it forever.
        with closing(export_pairs(project=project, options=options)) as pairs:
            return exporter.write(pairs, out, options.write_options)


class _HashingFile(io.RawIOBase):
    """Writes through to a file and hashes the bytes on the way, so the content hash costs no
    second read of a file that may be gigabytes."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        written = self.raw.write(data)
        self.position += written
        return written

    def tell(self) -> int:
        return self.position


def export_to_path(*, project: Project, options: ExportOptions, path: Path) -> tuple[int, str]:
    """Write the export to ``path`` atomically (a temporary file renamed over it) and return
    (rows, sha256 of the bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb", buffering=0) as raw:
            hashing = _HashingFile(raw)
            out = io.BufferedWriter(hashing, buffer_size=1024 * 1024)
            rows = export_write(project=project, options=options, out=out)
            out.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return rows, hashing.digest.hexdigest()
