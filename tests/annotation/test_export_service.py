import datetime as dt
import hashlib
import json

import pytest

from alignweb.jobs import JobState
from annotation.services.errors import ValidationFailed
from annotation.services.export_jobs import export_to_file
from annotation.services.exports import ExportOptions, export_write, pseudonym
from tests.factories import ComparisonFactory, MembershipFactory, judgement

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(project):
    return [
        MembershipFactory(project=project, user__username=name, role="annotator").user
        for name in ("ann", "bob", "cat")
    ]


@pytest.fixture
def votes(project, people):
    """Four comparisons: a 2-1 majority for A, a unanimous tie, a 1-1 split, an imported B."""
    ann, bob, cat = people
    majority = ComparisonFactory.create_pair(project=project, texts=("A1", "B1"))
    judgement(majority, ann, "a", left="b", strength=2, rationale="clearer", duration_ms=9000)
    judgement(majority, bob, "a", duration_ms=4000)
    judgement(majority, cat, "b")
    tie = ComparisonFactory.create_pair(project=project, texts=("A2", "B2"))
    judgement(tie, ann, "tie")
    judgement(tie, bob, "tie")
    split = ComparisonFactory.create_pair(project=project, texts=("A3", "B3"))
    judgement(split, ann, "a")
    judgement(split, cat, "b")
    imported = ComparisonFactory.create_pair(
        project=project, texts=("A4", "B4"), prior_choice="b", prior_source="hh.jsonl"
    )
    return {"majority": majority, "tie": tie, "split": split, "imported": imported}


def export_lines(project, **options) -> list[dict]:
    import io

    out = io.BytesIO()
    export_write(project=project, options=ExportOptions.from_dict(options), out=out)
    return [json.loads(line) for line in out.getvalue().decode().splitlines()]


def reply(side: list[dict]) -> str:
    """The text of a conversational trl row's one assistant turn."""
    [turn] = side
    return turn["content"]


def test_trl_keeps_majorities_and_imported_labels_and_drops_ties_and_splits(project, votes):
    rows = export_lines(project, format="trl")
    assert [(row["prompt"], reply(row["chosen"]), reply(row["rejected"])) for row in rows] == [
        (votes["majority"].prompt.messages, "A1", "B1"),
        (votes["imported"].prompt.messages, "B4", "A4"),
    ]


def test_trl_can_leave_imported_labels_out(project, votes):
    rows = export_lines(project, format="trl", include_imported=False)
    assert [reply(row["chosen"]) for row in rows] == ["A1"]


def test_trl_labels_ties_when_asked(project, votes):
    rows = export_lines(project, format="trl", ties="label")
    assert [(reply(row["chosen"]), row["label"]) for row in rows] == [
        ("A1", "preferred"),
        ("A2", "tie"),
        ("B4", "preferred"),
    ]


def test_unanimous_aggregation_keeps_only_agreed_pairs(project, votes):
    rows = export_lines(project, format="trl", aggregation="unanimous")
    assert [reply(row["chosen"]) for row in rows] == ["B4"]


def test_weighted_aggregation_follows_the_annotator_with_better_gold_accuracy(project, people, votes):
    ann, _bob, cat = people
    for _ in range(3):
        gold = ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a")
        judgement(gold, ann, "b")
        judgement(gold, cat, "a")
    rows = export_lines(project, format="trl", aggregation="weighted", include_imported=False)
    split = next(row for row in rows if reply(row["chosen"]) in ("A3", "B3"))
    assert (split["prompt"], reply(split["chosen"]), reply(split["rejected"])) == (
        votes["split"].prompt.messages,
        "B3",
        "A3",
    )


def test_votes_keep_every_vote_with_ties_and_the_imported_label(project, people, votes):
    rows = export_lines(project, format="votes", pseudonymise=False)
    assert [(row["annotator"], row["choice"], row["imported"]) for row in rows] == [
        ("ann", "a", False),
        ("bob", "a", False),
        ("cat", "b", False),
        ("ann", "tie", False),
        ("bob", "tie", False),
        ("ann", "a", False),
        ("cat", "b", False),
        (None, "b", True),
    ]
    first = rows[0]
    assert first["comparison_id"] == votes["majority"].pk
    assert (first["left"], first["choice_shown"], first["strength"], first["rationale"]) == (
        "b",
        "right",
        2,
        "clearer",
    )
    assert first["duration_ms"] == 9000
    assert (first["response_a"], first["response_b"], first["label"]) == ("A1", "B1", "a")
    assert first["agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert first["prompt"] == votes["majority"].prompt.messages
    assert dt.datetime.fromisoformat(first["created_at"]).tzinfo is not None
    assert rows[-1]["source"] == "hh.jsonl"


def test_votes_pseudonymise_annotators_by_default(project, people, votes):
    rows = export_lines(project, format="votes")
    names = {row["annotator"] for row in rows if not row["imported"]}
    assert names == {pseudonym(project=project, annotator_id=user.pk) for user in people}
    assert not names & {"ann", "bob", "cat"}


def test_an_annotator_filter_keeps_only_their_votes(project, people, votes):
    rows = export_lines(project, format="votes", annotators=["bob"], pseudonymise=False)
    assert {row["annotator"] for row in rows} == {"bob"}


def test_an_agreement_threshold_drops_contested_comparisons(project, votes):
    rows = export_lines(project, format="votes", min_agreement=0.9)
    assert {row["comparison_id"] for row in rows} == {votes["tie"].pk, votes["imported"].pk}


def test_min_votes_drops_thinly_judged_comparisons(project, votes):
    rows = export_lines(project, format="votes", min_votes=3)
    assert {row["comparison_id"] for row in rows} == {votes["majority"].pk}


def test_date_filters_apply_to_judgement_times(project, people, votes):
    from annotation.models import Judgement

    Judgement.objects.filter(comparison=votes["tie"]).update(
        created_at=dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
    )
    rows = export_lines(project, format="votes", date_from="2024-01-01", date_to="2024-01-05")
    assert {row["comparison_id"] for row in rows} == {votes["tie"].pk}


def test_model_version_filter_keeps_comparisons_with_that_model(project, votes):
    response = votes["split"].slots.get(position=1).response
    response.model_version_name = "policy-v2"
    response.save()
    rows = export_lines(project, format="votes", model_versions=["policy-v2"])
    assert {row["comparison_id"] for row in rows} == {votes["split"].pk}
    assert rows[0]["model_b"] == "policy-v2"
    with pytest.raises(ValidationFailed, match="policy-v9"):
        export_lines(project, format="votes", model_versions=["policy-v9"])


def test_flagged_annotators_can_be_left_out(project, people, votes):
    _ann, _bob, cat = people
    for _ in range(3):
        gold = ComparisonFactory.create_pair(project=project, is_gold=True, gold_choice="a")
        judgement(gold, cat, "b")
    rows = export_lines(project, format="votes", exclude_flagged=True, pseudonymise=False)
    assert "cat" not in {row["annotator"] for row in rows}
    rows = export_lines(project, format="votes", min_gold_accuracy=0.5, pseudonymise=False)
    assert "cat" not in {row["annotator"] for row in rows}
    assert "cat" in {row["annotator"] for row in export_lines(project, format="votes", pseudonymise=False)}


def test_the_same_snapshot_gives_the_same_bytes_and_hash(project, votes, tmp_path):
    options = ExportOptions.from_dict({"format": "votes"})
    first = export_to_file(project=project, options=options, path=tmp_path / "one.jsonl")
    second = export_to_file(project=project, options=options, path=tmp_path / "two.jsonl")
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "one.jsonl").read_bytes()).hexdigest()
    assert first.state == JobState.SUCCEEDED
    assert first.rows == 8
    assert first.options["format"] == "votes" and first.options["aggregation"] == "majority"


def test_a_failed_export_leaves_no_partial_file(project, votes, tmp_path, monkeypatch):
    from annotation.exporters.votes import VotesExporter

    def broken(self, pairs, out, options):
        out.write(b"half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(VotesExporter, "write", broken)
    with pytest.raises(RuntimeError):
        export_to_file(
            project=project, options=ExportOptions.from_dict({"format": "votes"}), path=tmp_path / "x"
        )
    assert list(tmp_path.iterdir()) == []
    from annotation.models import Export

    assert Export.objects.get().state == JobState.FAILED


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({}, "format"),
        ({"format": "xlsx"}, "format"),
        ({"format": "trl", "aggregation": "vibes"}, "aggregation"),
        ({"format": "trl", "ties": "keep"}, "ties"),
        ({"format": "trl", "min_agreement": "1.5"}, "min_agreement"),
        ({"format": "trl", "min_gold_accuracy": "high"}, "min_gold_accuracy"),
        ({"format": "trl", "date_from": "yesterday"}, "date_from"),
        ({"format": "trl", "date_from": "2025-02-01", "date_to": "2025-01-01"}, "date_from"),
        ({"format": "trl", "min_votes": "0"}, "min_votes"),
        ({"format": "trl", "conversational": "maybe"}, "conversational"),
        ({"format": "trl", "annotators": [1, 2]}, "annotators"),
        ({"format": "trl", "colour": "blue"}, "colour"),
    ],
)
def test_it_refuses_bad_options_naming_the_field(options, field):
    with pytest.raises(ValidationFailed) as error:
        ExportOptions.from_dict(options)
    assert error.value.field == field
