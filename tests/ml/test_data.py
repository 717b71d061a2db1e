import json
from pathlib import Path

import pytest

from training.ml.data import (
    DataError,
    PreferenceExample,
    aggregate_votes,
    examples_from_hh_row,
    examples_from_trl_row,
    read_preference_jsonl,
    split_ties,
)

HH_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hh-harmless-dev.jsonl"


def hh(*turns):
    return "".join(f"\n\n{role}: {text}" for role, text in turns)


def test_it_splits_an_hh_row_into_the_shared_turns_and_the_two_final_replies():
    shared = [("Human", "How do I bake bread?"), ("Assistant", "With flour."), ("Human", "And then?")]
    row = {
        "chosen": hh(*shared, ("Assistant", "Knead it and bake it.")),
        "rejected": hh(*shared, ("Assistant", "No idea.")),
    }
    [ex] = examples_from_hh_row(row)
    assert ex.prompt == [
        {"role": "user", "content": "How do I bake bread?"},
        {"role": "assistant", "content": "With flour."},
        {"role": "user", "content": "And then?"},
    ]
    assert (ex.chosen, ex.rejected) == ("Knead it and bake it.", "No idea.")


def test_a_stray_marker_inside_a_reply_stays_in_the_reply():
    # One real HH reply contains "  Human: ...\n\nAssistant: ..." of its own.
    shared = hh(("Human", "q"))
    row = {
        "chosen": shared + "\n\nAssistant: No.  Human: why?\n\nAssistant: because",
        "rejected": shared + "\n\nAssistant: Yes.",
    }
    [ex] = examples_from_hh_row(row)
    assert ex.prompt == [{"role": "user", "content": "q"}]
    assert (ex.chosen, ex.rejected) == ("No.  Human: why?\n\nAssistant: because", "Yes.")


def test_it_refuses_an_hh_row_whose_transcripts_differ_before_the_last_reply():
    row = {
        "chosen": hh(("Human", "a"), ("Assistant", "b")),
        "rejected": hh(("Human", "x"), ("Assistant", "b")),
    }
    with pytest.raises(DataError, match="share"):
        examples_from_hh_row(row)


def test_it_reads_a_plain_trl_row_with_an_explicit_prompt():
    [ex] = examples_from_trl_row({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert (ex.prompt, ex.chosen, ex.rejected) == ("The sky is", " blue.", " green.")


def test_it_finds_the_implicit_prompt_of_a_plain_trl_row():
    [ex] = examples_from_trl_row({"chosen": "The sky is blue.", "rejected": "The sky is green."})
    assert (ex.prompt, ex.chosen, ex.rejected) == ("The sky is", " blue.", " green.")


def test_it_reads_conversational_trl_rows_with_and_without_a_prompt():
    user = {"role": "user", "content": "What colour is the sky?"}
    explicit = {
        "prompt": [user],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Green."}],
    }
    implicit = {
        "chosen": [user, {"role": "assistant", "content": "Blue."}],
        "rejected": [user, {"role": "assistant", "content": "Green."}],
    }
    for row in (explicit, implicit):
        [ex] = examples_from_trl_row(row)
        assert (ex.prompt, ex.chosen, ex.rejected) == ([user], "Blue.", "Green.")


def test_a_plain_prompt_in_the_hh_layout_is_read_as_that_conversation():
    # As the plain trl export writes it: no trailing space on the prompt, the space on each reply.
    prompt = hh(("Human", "Hi"), ("Assistant", "Hello."), ("Human", "Joke?")) + "\n\nAssistant:"
    [ex] = examples_from_trl_row({"prompt": prompt, "chosen": " Knock knock.", "rejected": " No."})
    assert ex.prompt == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Joke?"},
    ]
    assert (ex.chosen, ex.rejected) == ("Knock knock.", "No.")
    # The older layout, with the space on the prompt, reads the same.
    [old] = examples_from_trl_row({"prompt": prompt + " ", "chosen": "Knock knock.", "rejected": "No."})
    assert (old.prompt, old.chosen, old.rejected) == (ex.prompt, ex.chosen, ex.rejected)


def test_a_plain_prompt_without_turns_stays_text():
    [ex] = examples_from_trl_row({"prompt": "Q: 2+2?\nA:", "chosen": " 4", "rejected": " 5"})
    assert (ex.prompt, ex.chosen, ex.rejected) == ("Q: 2+2?\nA:", " 4", " 5")


def test_it_keeps_margin_weight_annotator_and_tie_fields():
    row = {
        "prompt": "p",
        "chosen": "a",
        "rejected": "b",
        "margin": 2,
        "weight": 0.5,
        "annotator_id": 7,
        "tie": True,
    }
    [ex] = examples_from_trl_row(row)
    assert (ex.margin, ex.weight, ex.annotator_id, ex.is_tie) == (2.0, 0.5, "7", True)


def test_it_refuses_a_reply_turn_that_is_not_the_assistants():
    row = {
        "prompt": [{"role": "user", "content": "q"}],
        "chosen": [{"role": "user", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}],
    }
    with pytest.raises(DataError, match="assistant"):
        examples_from_trl_row(row)


def test_it_reads_a_jsonl_file_with_both_formats_and_names_the_bad_line(tmp_path):
    good = tmp_path / "mixed.jsonl"
    rows = [
        {
            "chosen": hh(("Human", "hi"), ("Assistant", "hello")),
            "rejected": hh(("Human", "hi"), ("Assistant", "go")),
        },
        {"prompt": "p", "chosen": "a", "rejected": "b"},
    ]
    good.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    examples = read_preference_jsonl(good)
    assert [ex.chosen for ex in examples] == ["hello", "a"]

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[1]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        read_preference_jsonl(bad)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(DataError, match="rejected"):
        read_preference_jsonl(missing)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no preference pairs"):
        read_preference_jsonl(empty)


def test_ties_are_excluded_by_default_and_counted_or_kept_for_smoothing():
    examples = [PreferenceExample("p", "a", "b"), PreferenceExample("p", "c", "d", is_tie=True)]
    kept, ties = split_ties(examples, tie_handling="exclude")
    assert (len(kept), ties) == (1, 1)
    kept, ties = split_ties(examples, tie_handling="smooth")
    assert (len(kept), ties) == (2, 1)


def test_majority_vote_picks_the_side_most_annotators_chose():
    votes = [
        PreferenceExample("p", "x", "y", annotator_id="1", margin=1.0),
        PreferenceExample("p", "y", "x", annotator_id="2"),
        PreferenceExample("p", "x", "y", annotator_id="3", margin=3.0),
        PreferenceExample("q", "x", "y", annotator_id="1"),
    ]
    merged = {ex.prompt: ex for ex in aggregate_votes(votes)}
    assert (merged["p"].chosen, merged["p"].margin) == ("x", 2.0)
    assert merged["p"].weight == pytest.approx(2 / 3)
    assert merged["q"].chosen == "x"


def test_an_even_split_becomes_a_tie():
    votes = [PreferenceExample("p", "x", "y"), PreferenceExample("p", "y", "x")]
    [merged] = aggregate_votes(votes)
    assert merged.is_tie


def test_weighted_votes_let_a_trusted_annotator_outvote_two_others():
    votes = [
        PreferenceExample("p", "x", "y", annotator_id="expert"),
        PreferenceExample("p", "y", "x", annotator_id="a"),
        PreferenceExample("p", "y", "x", annotator_id="b"),
    ]
    assert aggregate_votes(votes)[0].chosen == "y"
    [merged] = aggregate_votes(votes, method="weighted", annotator_weights={"expert": 3.0})
    assert merged.chosen == "x"
    with pytest.raises(DataError):
        aggregate_votes(votes, method="plurality")


def test_it_refuses_an_example_with_a_malformed_prompt():
    with pytest.raises(DataError):
        PreferenceExample([{"content": "no role"}], "a", "b")
    with pytest.raises(DataError):
        PreferenceExample("p", "a", "b", weight=-1)


@pytest.mark.skipif(not HH_DATA.is_file(), reason="shared HH data is not on this machine")
def test_every_row_of_the_real_hh_file_parses_into_a_prompt_and_two_replies():
    examples = read_preference_jsonl(HH_DATA)
    assert len(examples) == 1825
    assert all(isinstance(ex.prompt, list) and ex.prompt[-1]["role"] == "user" for ex in examples)
