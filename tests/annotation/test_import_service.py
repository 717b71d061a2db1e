"""preferences_import writes a whole file or nothing, deduplicates, and reports what it did."""

import io
import json

import pytest

from annotation.models import Comparison, ComparisonResponse, ImportBatch, Prompt, Response
from annotation.services.imports import ImportRejected, preferences_import
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def jsonl(*records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def run_import(project, fmt: str, data: bytes, *, user=None, filename="data.jsonl") -> ImportBatch:
    return preferences_import(project=project, fmt=fmt, file=io.BytesIO(data), filename=filename, user=user)


def rejection(project, fmt: str, data: bytes) -> ImportRejected:
    with pytest.raises(ImportRejected) as caught:
        run_import(project, fmt, data)
    return caught.value


def nothing_written(project) -> bool:
    return not (
        Prompt.objects.filter(project=project).exists()
        or Comparison.objects.filter(project=project).exists()
        or ImportBatch.objects.filter(project=project).exists()
    )


TRL_ROWS = jsonl(
    {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},
    {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
)


def test_it_creates_prompts_responses_and_one_comparison_per_pair(project, researcher):
    batch = run_import(project, "trl", TRL_ROWS, user=researcher)
    assert batch.created == {"prompts": 2, "responses": 4, "comparisons": 2, "skipped": 0}
    assert batch.rows == 2
    assert batch.created_by == researcher
    comparison = Comparison.objects.get(prompt__messages=[{"role": "user", "content": "2+2?"}])
    assert sorted(comparison.responses.values_list("text", flat=True)) == ["4", "5"]
    assert Response.objects.filter(prompt__project=project, source_name="trl:data.jsonl").count() == 4


def test_it_opens_each_new_comparison_for_the_projects_overlap():
    project = ProjectFactory(overlap=3)
    run_import(project, "trl", TRL_ROWS)
    assert set(Comparison.objects.filter(project=project).values_list("open_slots", flat=True)) == {3}


def test_it_keeps_the_imported_preference_as_a_prior_in_canonical_positions(project):
    run_import(project, "trl", TRL_ROWS)
    for comparison in Comparison.objects.filter(project=project):
        chosen = {"Capital of France?": "Paris.", "2+2?": "4"}[comparison.prompt.messages[0]["content"]]
        position_of_chosen = comparison.slots.get(response__text=chosen).position
        assert comparison.prior_choice == "ab"[position_of_chosen]
        assert comparison.prior_source == "import:trl"


def test_position_a_does_not_leak_which_response_was_chosen(project):
    # The same pair with the label flipped lands in the same positions: order comes from content.
    run_import(project, "trl", jsonl({"prompt": "Q", "chosen": "yes", "rejected": "no"}))
    first = Comparison.objects.get(project=project)
    other = ProjectFactory()
    run_import(other, "trl", jsonl({"prompt": "Q", "chosen": "no", "rejected": "yes"}))
    second = Comparison.objects.get(project=other)
    texts = lambda c: [s.response.text for s in c.slots.order_by("position")]  # noqa: E731
    assert texts(first) == texts(second)
    assert {first.prior_choice, second.prior_choice} == {"a", "b"}


def test_importing_the_same_file_again_creates_nothing_new(project):
    run_import(project, "trl", TRL_ROWS)
    again = run_import(project, "trl", TRL_ROWS)
    assert again.created == {"prompts": 0, "responses": 0, "comparisons": 0, "skipped": 0}
    assert Prompt.objects.filter(project=project).count() == 2
    assert Response.objects.filter(prompt__project=project).count() == 4
    assert Comparison.objects.filter(project=project).count() == 2
    assert ComparisonResponse.objects.filter(comparison__project=project).count() == 4
    assert ImportBatch.objects.filter(project=project).count() == 2


def test_a_prompt_already_in_the_project_is_reused_by_another_format(project):
    run_import(project, "prompts", jsonl({"prompt": "2+2?"}))
    batch = run_import(project, "trl", TRL_ROWS)
    assert batch.created["prompts"] == 1
    assert Prompt.objects.filter(project=project).count() == 2


def test_the_same_content_in_another_project_is_imported_separately(project):
    run_import(project, "trl", TRL_ROWS)
    other = ProjectFactory()
    assert run_import(other, "trl", TRL_ROWS).created["comparisons"] == 2


def test_three_responses_become_every_pair_of_them(project):
    batch = run_import(
        project, "responses", jsonl({"prompt": "Hi", "responses": ["a", "b", {"text": "c", "model": "m"}]})
    )
    assert batch.created == {"prompts": 1, "responses": 3, "comparisons": 3, "skipped": 0}
    pairs = {
        tuple(sorted(c.responses.values_list("text", flat=True)))
        for c in Comparison.objects.filter(project=project)
    }
    assert pairs == {("a", "b"), ("a", "c"), ("b", "c")}
    assert Response.objects.get(text="c").source_name == "m"
    assert not Comparison.objects.exclude(prior_choice="").exists()


def test_prompts_only_creates_prompts_and_no_comparisons(project):
    batch = run_import(
        project, "prompts", jsonl({"prompt": "One"}, {"prompt": [{"role": "user", "content": "Two"}]})
    )
    assert batch.created == {"prompts": 2, "responses": 0, "comparisons": 0, "skipped": 0}
    assert not Comparison.objects.filter(project=project).exists()


def test_a_json_array_file_is_accepted(project):
    data = json.dumps([{"prompt": "One"}, {"prompt": "Two"}]).encode()
    assert run_import(project, "prompts", data, filename="p.json").created["prompts"] == 2


def test_skipped_rows_are_counted_and_reported_with_their_lines(project):
    batch = run_import(
        project,
        "trl",
        jsonl(
            {"prompt": "Q", "chosen": "A", "rejected": "B"},
            {"prompt": "Q", "chosen": "same", "rejected": "same"},
        ),
    )
    assert batch.created["comparisons"] == 1
    assert batch.created["skipped"] == 1
    assert batch.created["skipped_reasons"] == {
        "chosen and rejected are the same": {"count": 1, "lines": [2]}
    }


def test_a_comparison_repeated_in_the_file_is_imported_once_and_noted(project):
    batch = run_import(project, "trl", jsonl({"prompt": "Q", "chosen": "A", "rejected": "B"}) * 2)
    assert batch.created["comparisons"] == 1
    assert batch.created["notes"]["a comparison repeated in the file imported once"] == {
        "count": 1,
        "lines": [2],
    }


# --- refusals: the whole file, with line numbers and fields --------------------------------


def test_it_refuses_a_file_with_bad_json_and_writes_nothing(project):
    data = jsonl({"prompt": "fine"}) + b'{"prompt": oops}\n' + jsonl({"prompt": "also fine"})
    error = rejection(project, "prompts", data)
    assert [str(p) for p in error.problems] == ["line 2: bad JSON: Expecting value at column 12"]
    assert nothing_written(project)


def test_it_refuses_a_file_where_one_late_row_is_bad_and_writes_nothing(project):
    rows = [{"prompt": "Q", "chosen": f"A{i}", "rejected": f"B{i}"} for i in range(50)]
    rows[41] = {"prompt": "Q", "chosen": "A"}
    error = rejection(project, "trl", jsonl(*rows))
    assert [(p.line, p.field, p.message) for p in error.problems] == [(42, "rejected", "missing")]
    assert nothing_written(project)


def test_it_names_the_line_and_field_of_wrong_types(project):
    error = rejection(
        project, "responses", jsonl({"prompt": "Hi", "responses": ["a", {"text": 3}]}, ["not", "an object"])
    )
    assert [str(p) for p in error.problems] == [
        "line 1, responses[1].text: expected a string, got a number",
        "line 2: expected a JSON object",
    ]


def test_it_reports_the_first_twenty_problems_and_how_many_there_were(project):
    error = rejection(project, "prompts", jsonl(*[{"nope": i} for i in range(30)]))
    assert len(error.problems) == 20
    assert error.total == 30
    assert error.problems[0].line == 1
    assert error.as_dict()["problem_count"] == 30


def test_it_refuses_a_file_that_is_not_utf8(project):
    error = rejection(project, "prompts", '{"prompt": "café"}\n'.encode("latin-1"))
    assert str(error.problems[0]).startswith("line 1: not valid UTF-8")
    assert nothing_written(project)


def test_it_refuses_an_empty_file(project):
    assert [str(p) for p in rejection(project, "prompts", b"\n \n").problems] == ["file: the file is empty"]


def test_it_refuses_a_file_over_the_size_limit(project, settings):
    settings.ALIGNWEB_IMPORT_MAX_BYTES = 100
    error = rejection(project, "prompts", jsonl(*[{"prompt": f"prompt {i}"} for i in range(10)]))
    assert "larger than the 100-byte limit" in str(error.problems[0])
    assert nothing_written(project)


def test_it_refuses_an_unknown_format(project):
    error = rejection(project, "csv", jsonl({"prompt": "x"}))
    assert error.problems[0].field == "format"
    assert "known: hh, prompts, responses, trl" in error.problems[0].message


def test_bad_json_and_bad_fields_are_reported_together_in_line_order(project):
    data = b'{"prompt": 5}\nnot json\n{"prompt": "fine"}\n{"nope": 1}\n'
    error = rejection(project, "prompts", data)
    assert [(p.line, p.field) for p in error.problems] == [(1, "prompt"), (2, ""), (4, "prompt")]
    assert error.total == 3
