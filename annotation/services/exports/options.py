"""``ExportOptions``: what an export may ask for, validated once for the API, forms and the CLI."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from annotation.exporters import WriteOptions, available_formats
from annotation.parsing import (
    blank,
    parse_bool,
    parse_choice,
    parse_date,
    parse_fraction,
    parse_names,
    parse_positive_int,
    reject_unknown,
)
from annotation.quality.aggregation import AGGREGATIONS
from annotation.services.errors import ValidationFailed
from annotation.votes import VoteFilters

TIE_POLICIES = ("exclude", "label")
_BOOLS = ("conversational", "include_imported", "pseudonymise", "exclude_flagged")


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
        reject_unknown(data, (f.name for f in fields(cls)))
        if not data.get("format"):
            raise ValidationFailed("Choose a format.", field="format")
        values = {"format": parse_choice(data["format"], name="format", allowed=available_formats())}
        for name, allowed in (("aggregation", AGGREGATIONS), ("ties", TIE_POLICIES)):
            if name in data:
                values[name] = parse_choice(data[name], name=name, allowed=allowed)
        values |= {name: parse_bool(data[name], name=name) for name in _BOOLS if name in data}
        present = {name: value for name, value in data.items() if not blank(value)}
        for name, parse in (
            ("date_from", parse_date),
            ("date_to", parse_date),
            ("annotators", parse_names),
            ("model_versions", parse_names),
            ("min_gold_accuracy", parse_fraction),
            ("min_agreement", parse_fraction),
            ("min_votes", parse_positive_int),
        ):
            if name in present:
                values[name] = parse(present[name], name=name)
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

    @property
    def vote_filters(self) -> VoteFilters:
        """The selection these options ask for: dates are whole UTC days, both ends inclusive."""
        return VoteFilters(
            since=_day_start(self.date_from) if self.date_from else None,
            until=_day_start(self.date_to + dt.timedelta(days=1)) if self.date_to else None,
            annotators=self.annotators,
            gold_threshold=self.min_gold_accuracy,
            exclude_flagged=self.exclude_flagged,
            model_versions=self.model_versions,
            include_imported=self.include_imported,
            min_votes=self.min_votes,
            min_agreement=self.min_agreement,
            aggregation=self.aggregation,
        )


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
