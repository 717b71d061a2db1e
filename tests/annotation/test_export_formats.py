"""The format plugins on hand-built records: no database needed."""

import csv
import datetime as dt
import io
import json

import pyarrow.parquet as pq
import pytest

from annotation.exporters import Pair, Vote, WriteOptions, available_formats, get_exporter


def vote(choice="a", **kwargs) -> Vote:
    values = {
        "judgement_id": 7,
        "annotator": "anon-1",
        "choice": choice,
        "strength": 1,
        "rationale": "",
        "duration_ms": 1200,
        "left": "b",
        "created_at": dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    }
    values.update(kwargs)
    return Vote(**values)


def pair(label="a", *, messages=None, votes=None, **kwargs) -> Pair:
    values = {
        "comparison_id": 1,
        "prompt_id": 2,
        "messages": messages or [{"role": "user", "content": "Hi?"}],
        "response_a": "Hello!",
        "response_b": "Go away.",
        "model_a": "policy-v1",
        "model_b": "hh.jsonl",
        "is_gold": False,
        "gold_choice": "",
        "votes": votes if votes is not None else [vote(label or "a")],
        "label": label,
        "agreement": 1.0,
    }
    values.update(kwargs)
    return Pair(**values)


def write(name: str, pairs, **options) -> tuple[bytes, int]:
    out = io.BytesIO()
    rows = get_exporter(name).write(pairs, out, WriteOptions(**options))
    return out.getvalue(), rows


def test_every_format_is_registered():
    assert available_formats() == ["csv", "hh", "parquet", "trl", "votes"]


def test_an_unknown_format_names_the_ones_there_are():
    with pytest.raises(KeyError, match="choose one of csv, hh, parquet, trl, votes"):
        get_exporter("xlsx")


def test_trl_is_conversational_by_default_with_the_chosen_response_first():
    data, rows = write("trl", [pair("b")])
    assert rows == 1
    assert json.loads(data) == {
        "prompt": [{"role": "user", "content": "Hi?"}],
        "chosen": [{"role": "assistant", "content": "Go away."}],
        "rejected": [{"role": "assistant", "content": "Hello!"}],
    }


def test_trl_conversational_uses_chat_messages():
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi?"},
    ]
    data, _ = write("trl", [pair("a", messages=messages)], conversational=True)
    assert json.loads(data) == {
        "prompt": messages,
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }


def test_trl_plain_keeps_the_turn_markers_of_a_single_question():
    data, _ = write("trl", [pair("b")], conversational=False)
    assert json.loads(data) == {
        "prompt": "\n\nHuman: Hi?\n\nAssistant:",
        "chosen": " Go away.",
        "rejected": " Hello!",
    }


def test_trl_plain_ends_the_prompt_with_the_bare_cue_and_gives_the_space_to_the_reply():
    messages = [
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Joke?"},
    ]
    data, _ = write("trl", [pair("a", messages=messages)], conversational=False)
    row = json.loads(data)
    assert row["prompt"] == "\n\nHuman: Hi?\n\nAssistant: Hello.\n\nHuman: Joke?\n\nAssistant:"
    # prompt + chosen is the HH transcript of the chosen side.
    hh_data, _ = write("hh", [pair("a", messages=messages)])
    assert row["prompt"] + row["chosen"] == json.loads(hh_data)["chosen"]


def test_trl_leaves_out_ties_splits_and_both_bad_unless_asked_to_label_them():
    pairs = [pair("a"), pair("tie"), pair(None), pair("both_bad")]
    assert write("trl", pairs)[1] == 1
    data, rows = write("trl", pairs, ties="label")
    assert rows == 3
    assert [json.loads(line)["label"] for line in data.splitlines()] == ["preferred", "tie", "both_bad"]


def test_hh_writes_full_transcripts_and_never_ties():
    data, rows = write("hh", [pair("a"), pair("tie")], ties="label")
    assert rows == 1
    assert json.loads(data) == {
        "chosen": "\n\nHuman: Hi?\n\nAssistant: Hello!",
        "rejected": "\n\nHuman: Hi?\n\nAssistant: Go away.",
    }


def test_votes_write_one_line_per_vote_with_a_fixed_key_order():
    data, rows = write("votes", [pair("a", votes=[vote("a"), vote("tie", judgement_id=8)])])
    assert rows == 2
    first, second = (json.loads(line) for line in data.splitlines())
    assert list(first)[:3] == ["judgement_id", "imported", "source"]
    assert (first["choice"], first["choice_shown"], first["left"]) == ("a", "right", "b")
    assert second["choice"] == "tie" and second["choice_shown"] == "tie"
    assert first["created_at"] == "2025-01-02T03:04:05+00:00"


@pytest.mark.parametrize(
    "tricky",
    [
        {"rationale": 'She said "no"\\\n\ttab', "annotator": "ünïcode ✓"},
        {"judgement_id": None, "annotator": None, "strength": None, "duration_ms": None, "left": None},
        {"created_at": None, "imported": True, "source": "hh.jsonl", "rationale": "\u2028\x00"},
    ],
)
def test_the_hand_written_vote_json_equals_the_json_encoder(tricky):
    from annotation.exporters.base import VOTE_COLUMNS, vote_values
    from annotation.exporters.votes import vote_json_head

    one = vote(**tricky)
    expected = json.dumps(dict(zip(VOTE_COLUMNS, vote_values(one), strict=True)), ensure_ascii=False)
    assert vote_json_head(one) + "}" == expected


@pytest.mark.parametrize(
    "tricky",
    [
        {"response_a": 'She said "no"\\\n\ttab', "model_a": "ünïcode ✓", "agreement": 2 / 3},
        {"label": None, "agreement": None, "gold_choice": "a", "is_gold": True, "response_b": "\u2028\x00"},
        {
            "messages": [{"role": "user", "content": 'Hi "you"', "extra": [1, 2.5, None, True]}],
            "agreement": 0.5,
        },
    ],
)
def test_the_hand_written_pair_json_equals_the_json_encoder(tricky):
    from annotation.exporters.base import PAIR_COLUMNS, pair_values
    from annotation.exporters.votes import pair_json_tail

    one = pair(**tricky)
    expected = json.dumps(dict(zip(PAIR_COLUMNS, pair_values(one), strict=True)), ensure_ascii=False)
    assert "{" + pair_json_tail(one)[2:] == expected + "\n"


@pytest.mark.parametrize("dangerous", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_csv_escapes_cells_a_spreadsheet_would_run_as_formulas(dangerous):
    data, rows = write("csv", [pair("a", votes=[vote(rationale=dangerous)], response_a=dangerous)])
    assert rows == 1
    header, row = list(csv.reader(io.StringIO(data.decode(), newline="")))
    cells = dict(zip(header, row, strict=True))
    assert cells["rationale"] == "'" + dangerous
    assert cells["response_a"] == "'" + dangerous
    assert cells["response_b"] == "Go away."


def test_csv_writes_numbers_and_empty_cells_plainly():
    data, _ = write("csv", [pair("a", votes=[vote(strength=None, duration_ms=-1)])])
    header, row = list(csv.reader(io.StringIO(data.decode(), newline="")))
    cells = dict(zip(header, row, strict=True))
    assert (cells["strength"], cells["duration_ms"], cells["imported"]) == ("", "-1", "false")
    assert json.loads(cells["prompt"]) == [{"content": "Hi?", "role": "user"}]


def test_parquet_writes_typed_columns_in_row_groups(monkeypatch):
    from annotation.exporters import parquet

    monkeypatch.setattr(parquet, "ROW_GROUP", 2)
    pairs = [pair("a", comparison_id=i, votes=[vote(), vote("b")]) for i in range(3)]
    data, rows = write("parquet", pairs)
    assert rows == 6
    file = pq.ParquetFile(io.BytesIO(data))
    assert file.metadata.num_row_groups == 3
    table = file.read()
    assert table.column("comparison_id").to_pylist() == [0, 0, 1, 1, 2, 2]
    assert table.column("prompt").to_pylist()[0] == [{"role": "user", "content": "Hi?"}]
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"


def test_parquet_of_nothing_is_still_a_readable_file():
    data, rows = write("parquet", [])
    assert rows == 0
    assert pq.read_table(io.BytesIO(data)).num_rows == 0


@pytest.mark.parametrize("name", ["trl", "votes", "hh", "csv", "parquet"])
def test_the_same_records_give_the_same_bytes(name):
    pairs = [pair("a"), pair("b", comparison_id=2)]
    assert write(name, pairs)[0] == write(name, pairs)[0]
