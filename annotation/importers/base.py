"""The interface every import format implements, and the pieces they share.

A format turns one JSON record into an ``ImportRow`` (a prompt, its responses, and which one was
preferred if the file says so), or a ``Skip`` when the record is well formed but cannot become a
comparison (e.g. both replies identical). A record that is malformed raises ``RowError``; the
service then refuses the whole file. Formats know nothing about the database.

>>> from annotation.importers import get_format
>>> get_format("trl").parse({"prompt": "2+2?", "chosen": "4", "rejected": "5"})
ImportRow(messages=[{'role': 'user', 'content': '2+2?'}], responses=[ResponseIn(text='4', \
source='', generation_params={}), ResponseIn(text='5', source='', generation_params={})], preferred=0, \
notes=[])
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import ClassVar

from alignweb import conversations

# check_prompt is the shared rule for where a prompt must end; the formats take it from here.
from alignweb.conversations import ConversationError, check_prompt, type_name  # noqa: F401

MAX_SOURCE_LENGTH = 200


# --- What a format produces -------------------------------------------------------------------


@dataclass
class ResponseIn:
    text: str
    source: str = ""
    generation_params: dict = field(default_factory=dict)


@dataclass
class ImportRow:
    """One record, normalised: ``messages`` are ``{"role", "content"}`` turns ending with a user turn."""

    messages: list[dict[str, str]]
    responses: list[ResponseIn] = field(default_factory=list)
    preferred: int | None = None  # index into ``responses`` of the one the file labels better
    notes: list[str] = field(default_factory=list)  # things worth reporting that were not errors


@dataclass
class Skip:
    """A well-formed record that carries no comparison; counted and reported, never silent."""

    reason: str


# A malformed record: ``field`` is a path into the record, e.g. ``chosen[1].role``. The same error
# the shared conversation parser raises, so formats let it through as it is.
RowError = ConversationError


@dataclass(frozen=True)
class Problem:
    """One reason a file was refused. ``line`` is None for problems with the file as a whole."""

    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


# --- The interface and the registry ----------------------------------------------------------

FORMATS: dict[str, type[Format]] = {}


class Format:
    """Subclass, set ``name``/``label``/``help``, implement ``parse``, decorate with ``@register``."""

    name: ClassVar[str]
    label: ClassVar[str]
    help: ClassVar[str]  # one line for the upload page and ``--help``
    # Whether rows carry a preference, stored on the comparison as a prior label.
    labelled: ClassVar[bool] = False

    def parse(self, record: dict) -> ImportRow | Skip:
        raise NotImplementedError


def register(cls: type[Format]) -> type[Format]:
    if cls.name in FORMATS:
        raise ValueError(f"Import format {cls.name!r} is registered twice.")
    FORMATS[cls.name] = cls
    return cls


# --- Helpers formats share -------------------------------------------------------------------


def require(record: dict, key: str, kinds: tuple[type, ...], expected: str) -> object:
    if key not in record:
        raise RowError(key, "missing")
    value = record[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise RowError(key, f"expected {expected}, got {type_name(value)}")
    return value


def messages_from(value: object, field_name: str) -> list[dict[str, str]]:
    """A string (one user turn, stripped: text typed for a prompt) or a list of messages, checked."""
    if isinstance(value, str):
        return [{"role": "user", "content": value.strip()}]
    if not isinstance(value, list):
        raise RowError(field_name, f"expected a string or a list of messages, got {type_name(value)}")
    return conversations.messages_from(value, field_name)


def source_from(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise RowError(field_name, f"expected a string, got {type_name(value)}")
    if len(value) > MAX_SOURCE_LENGTH:
        raise RowError(field_name, f"longer than {MAX_SOURCE_LENGTH} characters")
    return value.strip()


# --- Content hashes (the dedupe keys; the same recipe as tests/factories.py) ---------------------


def _sha256_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def prompt_hash(messages: list[dict[str, str]]) -> str:
    """``Prompt.content_hash``: sha256 of the messages as canonical JSON."""
    return _sha256_json([{"role": m["role"], "content": m["content"]} for m in messages])


def response_hash(text: str) -> str:
    """``Response.content_hash``: sha256 of the text as a JSON string."""
    return _sha256_json(text)


def comparison_key(prompt_content_hash: str, response_hashes: list[str]) -> str:
    """``Comparison.key``: sha256 of the prompt hash and the response hashes in canonical order."""
    return _sha256_json([prompt_content_hash, list(response_hashes)])


# --- Reading a file into records ------------------------------------------------------------


@dataclass
class Records:
    """The records of a file with their line numbers, or the problems that stopped the reading."""

    items: list[tuple[int, object]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the first ones, in line order
    problem_count: int = 0

    def __post_init__(self) -> None:
        self.problem_count = max(self.problem_count, len(self.problems))


def read_records(data: bytes, *, max_problems: int) -> Records:
    """Parse JSON Lines (one value per line, blank lines ignored) or one JSON array.

    Every record keeps the line it starts on, so errors can name it. In JSON Lines a bad line does
    not stop the reading: the other lines are still checked, so one pass reports every problem.
    """
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as some editors write
        data = data[3:]
    if not data.strip():
        return Records(problems=[Problem(None, "", "the file is empty")])
    if data.lstrip()[:1] == b"[":
        return _read_array(data)
    records = Records()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        problem = None
        try:
            text = raw.decode("utf-8")
            records.items.append((number, json.loads(text)))
        except UnicodeDecodeError as error:
            problem = Problem(number, "", f"not valid UTF-8 (byte {raw[error.start]:#04x} at column "
                                          f"{error.start + 1})")  # fmt: skip
        except json.JSONDecodeError as error:
            problem = Problem(number, "", f"bad JSON: {error.msg} at column {error.colno}")
        if problem is not None:
            records.problem_count += 1
            if len(records.problems) < max_problems:
                records.problems.append(problem)
    return records


def _read_array(data: bytes) -> Records:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return Records(problems=[Problem(line, "", f"not valid UTF-8 (byte {data[error.start]:#04x})")])

    counted = {"offset": 0, "line": 1}

    def line_at(offset: int) -> int:
        # Offsets only grow, so counting newlines incrementally keeps a big array linear.
        counted["line"] += text.count("\n", counted["offset"], offset)
        counted["offset"] = offset
        return counted["line"]

    def skip_space(at: int) -> int:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        return at

    decoder = json.JSONDecoder()
    records = Records()
    position = skip_space(text.index("[") + 1)
    if text[position : position + 1] == "]":
        position += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as error:
                return Records(problems=[Problem(line_at(error.pos), "", f"bad JSON: {error.msg}")])
            records.items.append((line_at(position), value))
            position = skip_space(end)
            separator = text[position : position + 1]
            position = skip_space(position + 1)
            if separator == "]":
                break
            if separator != ",":
                return Records(problems=[Problem(line_at(position), "", "bad JSON: expected ',' or ']'")])
    if text[position:].strip():
        return Records(problems=[Problem(line_at(position), "", "bad JSON: extra data after the array")])
    return records
