"""Vote aggregation and agreement: the one definition of what a comparison's votes say, used by
exports and training snapshots. Plain functions over choices, no Django.

- ``majority``: the label with the most votes; a shared top is a split (no label).
- ``unanimous``: a label only when every vote agrees.
- ``weighted``: like majority, each vote weighted (exports weight by gold reliability).
*Agreement* is the share of votes (unweighted) on the most common label, whatever the method.
Which votes count (an imported label counts as one vote when the caller includes imported
labels) is decided by the selection, ``annotation.votes``, before the votes get here.

>>> aggregate(["a", "a", "b"], "majority")
('a', 0.6666666666666666)
>>> aggregate(["a", "b"], "majority")
(None, 0.5)
"""

from collections.abc import Sequence

from annotation.quality.stats import LABELS, plurality

AGGREGATIONS = ("majority", "unanimous", "weighted")


def aggregate(
    choices: Sequence[str], method: str, weights: Sequence[float] | None = None
) -> tuple[str | None, float]:
    """(label or None for a split, agreement) of one comparison's votes (at least one).
    ``weights`` (one per choice) is read by the ``weighted`` method only."""
    counts = dict.fromkeys(LABELS, 0)
    for choice in choices:
        counts[choice] += 1
    share = max(counts.values()) / len(choices)
    if method == "unanimous":
        return (choices[0] if share == 1.0 else None), share
    if method == "weighted":
        if weights is None:
            raise ValueError("The weighted aggregation needs one weight per vote.")
        totals = dict.fromkeys(LABELS, 0.0)
        for choice, weight in zip(choices, weights, strict=True):
            totals[choice] += weight
        return plurality(totals), share
    if method != "majority":
        raise ValueError(f"Unknown aggregation {method!r}; choose one of {', '.join(AGGREGATIONS)}.")
    return plurality(counts), share


def enough_votes(votes: int, share: float, min_votes: int = 1, min_agreement: float | None = None) -> bool:
    """Whether a comparison with ``votes`` votes and agreement ``share`` passes the thresholds."""
    return votes >= max(min_votes, 1) and (min_agreement is None or share >= min_agreement)
