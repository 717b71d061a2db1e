"""Exports read through COPY; the two-cursor row source must give the very same bytes, for every
format and for the filters that change what is read."""

import io

import pytest
from django.db import transaction

from annotation.exporters import get_exporter
from annotation.services.exports import ExportOptions, export_pairs
from tests.factories import ComparisonFactory, MembershipFactory, judgement

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(project):

    ann, bob, cat = (
        MembershipFactory(project=project, user__username=name, role="annotator").user
        for name in ("ann", "bob", "cat")
    )
    tricky = 'She said "no"\\\n\ttab, ünïcode ✓ \u2028 =SUM(A1)'
    first = ComparisonFactory.create_pair(project=project, texts=(tricky, "B1"))
    judgement(first, ann, "a", left="b", strength=2, rationale=tricky, duration_ms=9000)
    judgement(first, bob, "b")
    judgement(first, cat, "a")
    unjudged = ComparisonFactory.create_pair(project=project, texts=("A2", "B2"))
    imported = ComparisonFactory.create_pair(
        project=project, texts=("A3", "B3"), prior_choice="b", prior_source="hh.jsonl"
    )
    judgement(imported, bob, "tie")
    gold = ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a")
    judgement(gold, cat, "b")
    judgement(gold, ann, "both_bad")
    versioned = ComparisonFactory.create_pair(project=project, texts=("A5", "B5"))
    response = versioned.slots.get(position=1).response
    response.model_version_name = "policy-v2"
    response.save()
    judgement(versioned, ann, "b")
    # Another project's votes must never leak into either path.
    other = ComparisonFactory.create_pair(project=ComparisonFactory().project)
    judgement(other, ann, "a")
    return [first, unjudged, imported, gold, versioned]


def export_bytes(project, *, fast: bool, **options) -> bytes:
    options = ExportOptions.from_dict(options)
    out = io.BytesIO()
    with transaction.atomic():
        pairs = export_pairs(project=project, options=options, fast=fast)
        get_exporter(options.format).write(pairs, out, options.write_options)
    return out.getvalue()


@pytest.mark.parametrize("name", ["trl", "votes", "hh", "csv", "parquet"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pseudonymise": False, "ties": "label", "conversational": True},
        {"aggregation": "weighted", "min_votes": 2},
        {"aggregation": "unanimous", "include_imported": False},
        {"annotators": ["bob", "cat"], "pseudonymise": False},
        {"model_versions": ["policy-v2"], "min_agreement": 0.5},
        {"date_from": "2000-01-01", "date_to": "2999-12-31", "exclude_flagged": True},
    ],
)
def test_the_copy_path_writes_the_bytes_the_portable_path_writes(project, data, name, options):
    fast = export_bytes(project, fast=True, format=name, **options)
    portable = export_bytes(project, fast=False, format=name, **options)
    assert fast == portable
    if name in ("votes", "csv"):
        assert fast.count(b"\n") >= 1


def test_the_fast_path_reads_every_vote_of_the_project_and_no_other(project, data):
    pairs = list(export_pairs(project=project, options=ExportOptions(format="votes"), fast=True))
    assert [pair.comparison_id for pair in pairs] == [c.pk for c in data if c is not data[1]]
    assert sum(len(pair.votes) for pair in pairs) == 8  # seven judgements and one imported label


def test_a_failing_exporter_leaves_the_connection_usable(project, data, tmp_path, monkeypatch):
    from annotation.exporters.votes import VotesExporter
    from annotation.models import Comparison
    from annotation.services.exports import export_to_path

    def broken(self, pairs, out, options):
        next(iter(pairs))  # the COPY is open now
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(VotesExporter, "write", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_to_path(project=project, options=ExportOptions(format="votes"), path=tmp_path / "x")
    assert Comparison.objects.filter(project=project).count() == 5
