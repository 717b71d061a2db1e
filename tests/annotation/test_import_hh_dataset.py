"""The real HH-RLHF dev file (1,825 pairs) imports completely, with its labels as priors.

The file lives outside the repository (``../shared/data/``); without it these tests skip.
"""

import json
import time
from pathlib import Path

import pytest
from django.conf import settings

from annotation.models import Comparison, Response
from annotation.services.imports import preferences_import

HH_DEV = Path(settings.BASE_DIR).parent / "shared" / "data" / "hh-harmless-dev.jsonl"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not HH_DEV.is_file(), reason=f"{HH_DEV} is not here"),
]


def import_hh(project, user=None):
    with HH_DEV.open("rb") as handle:
        return preferences_import(project=project, fmt="hh", file=handle, filename=HH_DEV.name, user=user)


def test_the_hh_dev_file_imports_completely_in_a_few_seconds(project, researcher):
    started = time.perf_counter()
    batch = import_hh(project, researcher)
    elapsed = time.perf_counter() - started

    assert batch.rows == 1825
    assert batch.created["comparisons"] == 1825
    assert batch.created["skipped"] == 0
    assert batch.created["prompts"] == 1823  # two prompts are asked twice, with different replies
    assert batch.created["responses"] == 3650
    assert Comparison.objects.filter(project=project).count() == 1825
    # Every comparison holds two responses and a prior label from the file, marked as imported.
    assert not Comparison.objects.filter(project=project, prior_source="").exists()
    assert set(Comparison.objects.filter(project=project).values_list("prior_choice", flat=True)) == {
        "a",
        "b",
    }
    assert elapsed < 10, f"importing 1,825 rows took {elapsed:.1f}s"


def test_the_hh_dev_file_reports_its_quirks_with_line_numbers(project):
    notes = import_hh(project).created["notes"]
    assert notes["an empty reply kept"] == {"count": 3, "lines": [68, 415, 731]}
    assert notes["a turn holds its own speaker's marker, kept as text"] == {
        "count": 9,
        "lines": [535, 606, 994, 1047, 1335, 1455, 1531, 1533, 1603],
    }


def test_the_importer_and_the_ml_core_read_every_row_as_the_same_conversation():
    from annotation.importers import get_format
    from training.ml.data import examples_from_hh_row

    importer = get_format("hh")
    for line, raw in enumerate(HH_DEV.read_text(encoding="utf-8").splitlines(), start=1):
        record = json.loads(raw)
        row = importer.parse(record)
        [example] = examples_from_hh_row(record)
        assert (row.messages, [r.text for r in row.responses]) == (
            example.prompt,
            [example.chosen, example.rejected],
        ), f"line {line}"


def test_the_prior_label_points_at_the_chosen_reply(project):
    import_hh(project)
    # Line 68: the chosen reply is the empty one (a refusal by silence), the rejected one leaks.
    last_question = {"role": "user", "content": "Sorry, can you tell me address again?"}
    (comparison,) = [
        c for c in Comparison.objects.filter(project=project) if c.prompt.messages[-1] == last_question
    ]
    texts = [slot.response.text for slot in comparison.slots.order_by("position")]
    assert sorted(texts) == ["", "Sure, the address is ..."]
    assert comparison.prior_choice == "ab"[texts.index("")]


def test_the_labels_are_not_leaked_into_position_a(project):
    import_hh(project)
    share_a = Comparison.objects.filter(project=project, prior_choice="a").count() / 1825
    assert 0.4 < share_a < 0.6


def test_importing_the_hh_dev_file_twice_adds_nothing(project):
    import_hh(project)
    again = import_hh(project)
    assert again.created == {
        "prompts": 0,
        "responses": 0,
        "comparisons": 0,
        "skipped": 0,
        "notes": again.created["notes"],
    }
    assert Comparison.objects.filter(project=project).count() == 1825
    assert Response.objects.filter(prompt__project=project).count() == 3650
