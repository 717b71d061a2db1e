"""``manage.py import_preferences`` imports a file, or exits non-zero printing the problems."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.models import Comparison, ImportBatch

pytestmark = pytest.mark.django_db


def test_it_imports_a_file_and_prints_the_counts(project, tmp_path, capsys):
    path = tmp_path / "prefs.jsonl"
    path.write_text(
        '{"prompt": "Hi", "responses": ["Hello", "Hey", "Yo"]}\n{"prompt": "Q", "responses": ["a", "a"]}\n'
    )
    call_command("import_preferences", "--project", project.slug, "--format", "responses", str(path))
    out = capsys.readouterr().out
    assert f"Imported prefs.jsonl into {project.slug}: 2 rows, 1 new prompts, 3 new responses" in out
    assert "3 new comparisons, 1 skipped." in out
    assert "Skipped: 1 x fewer than two different responses (lines 2)" in out
    assert Comparison.objects.filter(project=project).count() == 3


def test_it_records_the_named_user_as_the_importer(project, researcher, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "Hi"}\n')
    call_command(
        "import_preferences", "--project", project.slug, "--format", "prompts", "--user", "rita", str(path)
    )
    assert ImportBatch.objects.get(project=project).created_by == researcher


def test_a_bad_file_exits_non_zero_and_prints_each_problem(project, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"prompt": "Hi"}\n{"prompt": 5}\nnot json\n')
    with pytest.raises(CommandError, match=r"refused: 2 problem"):
        call_command("import_preferences", "--project", project.slug, "--format", "prompts", str(path))
    err = capsys.readouterr().err
    assert "bad.jsonl: line 2, prompt: expected a string or a list of messages, got a number" in err
    assert "bad.jsonl: line 3: bad JSON" in err
    assert not ImportBatch.objects.exists()


def test_an_unknown_project_is_an_error(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "Hi"}\n')
    with pytest.raises(CommandError, match="No project with slug 'nope'"):
        call_command("import_preferences", "--project", "nope", "--format", "prompts", str(path))


def test_a_missing_file_is_an_error(project, tmp_path):
    with pytest.raises(CommandError, match="is not a file"):
        call_command(
            "import_preferences", "--project", project.slug, "--format", "prompts", str(tmp_path / "x")
        )
