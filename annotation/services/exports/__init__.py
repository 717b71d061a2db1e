"""Exports: choose votes with filters, aggregate them per comparison, stream them through a
format plugin into a file, atomically, with a row count and a content hash. Queueing, running and
recovering an export as a job is ``annotation.services.export_jobs``.

- ``options``: what a request may ask for (``ExportOptions``), parsed by ``annotation.parsing``.
- ``pairs``: the selected comparisons (``annotation.votes``, the path training snapshots read
  through too) as format-neutral ``Pair`` records.
- ``writing``: one database snapshot streamed into a file, atomically, hashed on the way.
- ``pseudonyms``: stable annotator ids that do not reveal the user.

Memory stays constant: comparisons and judgements are read in comparison id order and grouped
one comparison at a time. Output is deterministic: rows follow comparison id then judgement id,
keys are in a fixed order, nothing about the export itself (time, id) goes into the content, so
exporting the same data again gives the same bytes.

Aggregation (``annotation.quality.aggregation``) turns the votes of one comparison into one label
(majority, unanimous, or weighted by each annotator's gold reliability ``(correct + 1) / (seen +
2)``, 0.5 for annotators never tested and for imported labels). An imported label
(``Comparison.prior_choice``) counts as one vote, marked ``imported``. It is on by default
(``include_imported``): it is the label the data came with, and a researcher who wants human
votes only turns it off. An annotator filter leaves imported labels out.

Gold comparisons are exported like any other, labelled by their votes (the known answer is in
the ``votes`` rows as ``gold_choice``, next to ``is_gold``), so a dataset never mixes human
labels with answer keys silently. Filters: judgement dates (UTC days, inclusive; an imported
label is dated by its comparison), annotators (usernames), a minimum gold accuracy or the
project's flag (flagged annotators are left out, ``annotation.quality.gold``), a minimum agreement
and number of votes per comparison, and model versions (comparisons with a response from any of
them).
"""

from annotation.quality.aggregation import AGGREGATIONS
from annotation.services.exports.options import TIE_POLICIES, ExportOptions
from annotation.services.exports.pairs import export_pairs
from annotation.services.exports.pseudonyms import pseudonym
from annotation.services.exports.writing import export_to_path, export_write

__all__ = [
    "AGGREGATIONS",
    "TIE_POLICIES",
    "ExportOptions",
    "export_pairs",
    "export_to_path",
    "export_write",
    "pseudonym",
]
