"""What a selection of votes keeps: one dataclass both exports and training snapshots fill."""

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class VoteFilters:
    since: dt.datetime | None = None
    """Judgements at or after this time (an imported label is dated by its comparison)."""
    until: dt.datetime | None = None
    """Judgements before this time."""
    annotators: tuple[str, ...] = ()
    """Usernames; when given, imported labels are not votes (they have no annotator)."""
    gold_threshold: float | None = None
    """Leave out annotators flagged below this gold accuracy (``annotation.quality.gold``)."""
    exclude_flagged: bool = False
    """Leave out annotators flagged below the project's gold accuracy threshold."""
    trusted_only: bool = False
    """Keep only annotators gold items vouch for (untested ones are left out too)."""
    model_versions: tuple[str, ...] = ()
    """Comparisons with a response from any of these model versions (by name)."""
    include_imported: bool = True
    """Count an imported label (``Comparison.prior_choice``) as one vote."""
    pairs_only: bool = False
    """Only comparisons of exactly two responses."""
    include_held_back: bool = True
    """Comparisons of prompts held back for evaluation too."""
    min_votes: int = 1
    min_agreement: float | None = None
    """Comparisons whose most common label has at least this share of the counted votes."""
    aggregation: str = "majority"

    @property
    def counts_imported(self) -> bool:
        return self.include_imported and not self.annotators

    def dated(self, created: str) -> bool:
        """Whether an ISO 8601 UTC time (as the row sources give it) lies in the window."""
        if self.since is None and self.until is None:
            return True
        when = dt.datetime.fromisoformat(created)
        return (self.since is None or when >= self.since) and (self.until is None or when < self.until)
