"""Vote selection: which votes of a project a dataset is made of, the one path exports and
training snapshots both read through.

``VoteFilters`` says what to keep (time window, annotators, gold trust, model versions, imported
labels, pairs only, held-back prompts, minimum votes and agreement, aggregation);
``select_votes`` streams the comparisons that pass, each with its selected judgements, whether
its imported label counts as a vote, and its label and agreement
(``annotation.quality.aggregation``). Exports turn them into format rows; snapshots keep their
ids.
"""

from annotation.votes.filters import VoteFilters
from annotation.votes.rows import COMPARISON_FIELDS, JUDGEMENT_FIELDS
from annotation.votes.select import SelectedComparison, select_votes

__all__ = [
    "COMPARISON_FIELDS",
    "JUDGEMENT_FIELDS",
    "SelectedComparison",
    "VoteFilters",
    "select_votes",
]
