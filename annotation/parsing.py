"""Parsing of settings and filters: the one definition of how a request's option becomes a value.

Exports (``ExportOptions.from_dict``), training snapshots (``SnapshotFilters.from_dict``) and
project settings read the same kinds of values (booleans, fractions, dates, name lists, counts):
each kind is read here, so the same text means the same thing everywhere. Every function raises
``ValidationFailed`` naming ``field`` (the option's name unless the caller reports errors under
one field, as snapshot filters do).

>>> parse_bool("on", name="exclude_flagged")
True
>>> parse_fraction("0.25", name="min_agreement")
0.25
"""

import datetime as dt
from collections.abc import Iterable, Mapping

from alignweb.booleans import text_bool
from annotation.services.errors import ValidationFailed


def reject_unknown(data: Mapping, known: Iterable[str], *, what: str = "option", field: str | None = None):
    """Refuse keys of ``data`` outside ``known``: a misspelt filter must not silently do nothing."""
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValidationFailed(f"Unknown {what}: {', '.join(unknown)}.", field=field or unknown[0])


def parse_bool(value, *, name: str, field: str | None = None, text: bool = True) -> bool:
    """A boolean; with ``text`` also the words a form or a command line sends (true/false, 1/0,
    yes/no, on/off, any case). JSON-only inputs pass ``text=False`` and accept true/false only."""
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and text_bool(value) is not None:
        return text_bool(value)
    raise ValidationFailed(f"{name} must be true or false.", field=field or name)


def form_checkbox(data: Mapping, name: str) -> bool:
    """An HTML form's checkbox: a ticked one is sent (as "on" unless it has a value), an unticked
    one is not sent at all."""
    return name in data


def parse_fraction(
    value, *, name: str, field: str | None = None, low: float = 0.0, high: float = 1.0, text: bool = True
) -> float:
    """A number from ``low`` to ``high`` inclusive; with ``text`` also as a string ("0.5")."""
    not_a_number = ValidationFailed(
        f"{name} must be a number between {low:g} and {high:g}.", field=field or name
    )
    if isinstance(value, bool) or (not text and not isinstance(value, int | float)):
        raise not_a_number
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise not_a_number from None
    if not low <= number <= high:
        raise ValidationFailed(f"{name} must be between {low:g} and {high:g}.", field=field or name)
    return number


def is_plain_int(value) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def parse_positive_int(value, *, name: str, field: str | None = None, text: bool = True) -> int:
    """A whole number of at least 1; with ``text`` also as digits in a string."""
    if is_plain_int(value) and value >= 1:
        return value
    if text and isinstance(value, str) and value.isdigit() and int(value) >= 1:
        return int(value)
    raise ValidationFailed(f"{name} must be a whole number of at least 1.", field=field or name)


def parse_choice(value, *, name: str, allowed: Iterable[str], field: str | None = None) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValidationFailed(
            f"{name} must be one of {', '.join(allowed)}; got {value!r}.", field=field or name
        )
    return value


def parse_date(value, *, name: str, field: str | None = None) -> dt.date:
    """A calendar day, ``2025-01-31``."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be a date like 2025-01-31.", field=field or name) from None


def parse_datetime(value, *, name: str, field: str | None = None) -> dt.datetime:
    """An ISO 8601 date-time; one without a zone is in the project's time zone (settings.TIME_ZONE)."""
    from django.utils import timezone
    from django.utils.dateparse import parse_datetime as django_parse

    parsed = None
    if isinstance(value, str):
        try:
            parsed = django_parse(value)
        except ValueError:
            parsed = None
    if parsed is None:
        raise ValidationFailed(f"{name} must be an ISO 8601 date-time.", field=field or name)
    return parsed if parsed.tzinfo is not None else timezone.make_aware(parsed)


def parse_names(value, *, name: str, field: str | None = None) -> tuple[str, ...]:
    """A list of names (or one comma-separated string), stripped, deduplicated and sorted."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValidationFailed(f"{name} must be a list of names.", field=field or name)
    return tuple(sorted({item.strip() for item in value if item.strip()}))


def blank(value) -> bool:
    """Whether an option was left empty (absent, null or an empty form field)."""
    return value in (None, "")
