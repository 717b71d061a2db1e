import json

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Export
from tests.factories import ComparisonFactory, judgement

pytestmark = pytest.mark.django_db


@pytest.fixture
def judged(project, annotator):
    comparison = ComparisonFactory.create_pair(project=project, texts=("Yes.", "No."))
    judgement(comparison, annotator, "b")
    return comparison


def test_it_writes_the_file_and_records_the_export(project, judged, tmp_path, capsys):
    out = tmp_path / "prefs.jsonl"
    call_command(
        "export", "--project", project.slug, "--format", "trl", "--out", str(out), "--conversational"
    )
    row = json.loads(out.read_text())
    assert row["chosen"] == [{"role": "assistant", "content": "No."}]
    export = Export.objects.get()
    assert (export.state, export.rows, export.path) == ("succeeded", 1, str(out.resolve()))
    assert export.options["conversational"] is True
    assert export.sha256 in capsys.readouterr().out


@pytest.mark.parametrize(
    ("flags", "conversational"), [([], True), (["--conversational"], True), (["--plain"], False)]
)
def test_trl_is_conversational_unless_plain_is_asked_for(project, judged, tmp_path, flags, conversational):
    out = tmp_path / "prefs.jsonl"
    call_command("export", "--project", project.slug, "--format", "trl", "--out", str(out), *flags)
    row = json.loads(out.read_text())
    if conversational:
        assert row["chosen"] == [{"role": "assistant", "content": "No."}]
    else:
        assert (row["prompt"][-len("\n\nAssistant:") :], row["chosen"]) == ("\n\nAssistant:", " No.")
    assert Export.objects.get().options["conversational"] is conversational


def test_filters_reach_the_export(project, judged, tmp_path):
    out = tmp_path / "votes.csv"
    call_command(
        "export",
        "--project",
        project.slug,
        "--format",
        "csv",
        "--out",
        str(out),
        "--annotator",
        "annie",
        "--real-annotators",
        "--min-votes",
        "1",
        "--from",
        "2000-01-01",
    )
    assert "annie" in out.read_text()
    assert Export.objects.get().options["annotators"] == ["annie"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--min-agreement", "2"], "--min-agreement"),
        (["--from", "soon"], "--date-from"),
    ],
)
def test_it_refuses_bad_filters_clearly(project, tmp_path, extra, message):
    with pytest.raises(CommandError, match=message):
        call_command(
            "export", "--project", project.slug, "--format", "trl", "--out", str(tmp_path / "x"), *extra
        )


def test_it_refuses_an_unknown_project_or_a_missing_directory(project, tmp_path):
    with pytest.raises(CommandError, match="No project"):
        call_command("export", "--project", "nope", "--format", "trl", "--out", str(tmp_path / "x"))
    with pytest.raises(CommandError, match="does not exist"):
        call_command(
            "export", "--project", project.slug, "--format", "trl", "--out", str(tmp_path / "no" / "x")
        )
