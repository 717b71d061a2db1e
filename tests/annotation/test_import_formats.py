"""Each import format turns one record into a prompt and responses, or says exactly what is wrong."""

import json

import pytest

from annotation.importers import FORMATS, get_format
from annotation.importers.base import ImportRow, RowError, Skip, read_records


def hh(*turns: tuple[str, str]) -> str:
    return "".join(f"\n\n{speaker}: {text}" for speaker, text in turns)


def parse(fmt: str, record: dict) -> ImportRow | Skip:
    return get_format(fmt).parse(record)


def error_of(fmt: str, record: dict) -> RowError:
    with pytest.raises(RowError) as caught:
        get_format(fmt).parse(record)
    return caught.value


def test_every_module_in_the_package_is_a_registered_format():
    assert set(FORMATS) == {"hh", "trl", "responses", "prompts"}


# --- hh -------------------------------------------------------------------------------------


def test_hh_splits_the_shared_conversation_from_the_two_final_replies():
    row = parse(
        "hh",
        {
            "chosen": hh(
                ("Human", "Hi"),
                ("Assistant", "Hello."),
                ("Human", "Tell a joke"),
                ("Assistant", "Knock knock."),
            ),
            "rejected": hh(
                ("Human", "Hi"), ("Assistant", "Hello."), ("Human", "Tell a joke"), ("Assistant", "No.")
            ),
        },
    )
    assert row.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Tell a joke"},
    ]
    assert [r.text for r in row.responses] == ["Knock knock.", "No."]
    assert row.preferred == 0


def test_hh_keeps_a_stray_marker_of_the_same_speaker_as_text_and_notes_it():
    row = parse(
        "hh",
        {
            "chosen": hh(("Human", "Q"), ("Assistant", "Part one."), ("Assistant", " Part two.")),
            "rejected": hh(("Human", "Q"), ("Assistant", "Other.")),
        },
    )
    assert row.messages == [{"role": "user", "content": "Q"}]
    assert row.responses[0].text == "Part one.\n\nAssistant:  Part two."
    assert row.notes == ["a turn holds its own speaker's marker, kept as text"]


def test_hh_keeps_turns_alternating_when_the_shared_part_repeats_a_marker():
    shared = (("Human", "Q"), ("Assistant", "Yes."), ("Assistant", "Well."), ("Human", "And?"))
    row = parse(
        "hh",
        {"chosen": hh(*shared, ("Assistant", "Good.")), "rejected": hh(*shared, ("Assistant", "Bad."))},
    )
    assert row.messages == [
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "Yes.\n\nAssistant: Well."},
        {"role": "user", "content": "And?"},
    ]


def test_hh_keeps_a_reply_whole_when_it_holds_turns_of_its_own():
    row = parse(
        "hh",
        {
            "chosen": hh(("Human", "Q"), ("Assistant", "No."), ("Human", "Why?"), ("Assistant", "Because.")),
            "rejected": hh(("Human", "Q"), ("Assistant", "Yes.")),
        },
    )
    assert row.messages == [{"role": "user", "content": "Q"}]
    assert [r.text for r in row.responses] == ["No.\n\nHuman: Why?\n\nAssistant: Because.", "Yes."]


def test_hh_keeps_whitespace_as_written_but_for_the_space_after_a_marker():
    row = parse(
        "hh",
        {
            "chosen": hh(("Human", " Q \n"), ("Assistant", "  A.")),
            "rejected": hh(("Human", " Q \n"), ("Assistant", "B. ")),
        },
    )
    assert row.messages == [{"role": "user", "content": " Q \n"}]
    assert [r.text for r in row.responses] == ["  A.", "B. "]


def test_hh_keeps_an_empty_reply_and_notes_it():
    row = parse(
        "hh",
        {"chosen": hh(("Human", "Q"), ("Assistant", "")), "rejected": hh(("Human", "Q"), ("Assistant", "A"))},
    )
    assert [r.text for r in row.responses] == ["", "A"]
    assert "an empty reply kept" in row.notes


def test_hh_skips_identical_replies():
    same = hh(("Human", "Q"), ("Assistant", "A"))
    assert parse("hh", {"chosen": same, "rejected": same}) == Skip(
        "chosen and rejected end with the same reply"
    )


def test_hh_skips_transcripts_that_are_different_conversations():
    result = parse(
        "hh",
        {
            "chosen": hh(("Human", "Q1"), ("Assistant", "A")),
            "rejected": hh(("Human", "Q2"), ("Assistant", "B")),
        },
    )
    assert isinstance(result, Skip)
    assert "different conversations" in result.reason


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"rejected": hh(("Human", "Q"), ("Assistant", "A"))}, "chosen", "missing"),
        ({"chosen": 3, "rejected": "x"}, "chosen", "expected a string, got a number"),
        ({"chosen": "no turns here", "rejected": "x"}, "chosen", "text before the first"),
        (
            {"chosen": hh(("Human", "Q")), "rejected": hh(("Human", "Q"))},
            "chosen",
            "must end with an Assistant",
        ),
        (
            {"chosen": hh(("Assistant", "A")), "rejected": hh(("Assistant", "B"))},
            "chosen",
            "must start with a Human",
        ),
    ],
)
def test_hh_refuses_a_malformed_transcript_naming_the_field(record, field, message):
    error = error_of("hh", record)
    assert error.field == field
    assert message in error.message


# --- trl ------------------------------------------------------------------------------------


def test_trl_reads_an_explicit_plain_prompt():
    row = parse("trl", {"prompt": "2+2?", "chosen": " 4", "rejected": " 5", "score_chosen": 9})
    assert row.messages == [{"role": "user", "content": "2+2?"}]
    assert [r.text for r in row.responses] == ["4", "5"]
    assert row.preferred == 0


def test_trl_takes_the_common_prefix_as_an_implicit_plain_prompt():
    row = parse("trl", {"chosen": "The sky is blue.", "rejected": "The sky is green."})
    assert row.messages == [{"role": "user", "content": "The sky is"}]
    assert [r.text for r in row.responses] == ["blue.", "green."]


def test_trl_reads_an_explicit_conversational_prompt():
    row = parse(
        "trl",
        {
            "prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}],
            "chosen": [{"role": "assistant", "content": "Hello!"}],
            "rejected": [{"role": "assistant", "content": "What."}],
        },
    )
    assert [m["role"] for m in row.messages] == ["system", "user"]
    assert [r.text for r in row.responses] == ["Hello!", "What."]


def test_trl_takes_the_shared_messages_as_an_implicit_conversational_prompt():
    user = {"role": "user", "content": "What color is the sky?"}
    row = parse(
        "trl",
        {
            "chosen": [user, {"role": "assistant", "content": "It is blue."}],
            "rejected": [user, {"role": "assistant", "content": "It is green."}],
        },
    )
    assert row.messages == [user]
    assert [r.text for r in row.responses] == ["It is blue.", "It is green."]


def test_trl_strips_a_prompt_repeated_inside_the_conversations():
    user = {"role": "user", "content": "Hi"}
    row = parse(
        "trl",
        {
            "prompt": "Hi",
            "chosen": [user, {"role": "assistant", "content": "Hello"}],
            "rejected": [user, {"role": "assistant", "content": "Bye"}],
        },
    )
    assert row.messages == [user]
    assert [r.text for r in row.responses] == ["Hello", "Bye"]


def test_trl_skips_identical_completions():
    assert isinstance(parse("trl", {"prompt": "Q", "chosen": "A", "rejected": "A"}), Skip)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"prompt": "Q", "chosen": "A"}, "rejected", "missing"),
        (
            {"prompt": "Q", "chosen": "A", "rejected": 7},
            "rejected",
            "expected a string or a list of messages",
        ),
        (
            {"prompt": "Q", "chosen": "A", "rejected": [{"role": "assistant", "content": "B"}]},
            "rejected",
            "both",
        ),
        ({"chosen": "abc", "rejected": "xyz"}, "prompt", "share no leading prompt text"),
        (
            {"chosen": "same", "rejected": "same and more"},
            "prompt",
            "one completion is the start of the other",
        ),
        (
            {
                "prompt": "Q",
                "chosen": [{"role": "robot", "content": "A"}],
                "rejected": [{"role": "assistant", "content": "B"}],
            },
            "chosen[0].role",
            "expected one of system, user, assistant",
        ),
        (
            {
                "prompt": "Q",
                "chosen": [{"role": "assistant", "content": None}],
                "rejected": [{"role": "assistant", "content": "B"}],
            },
            "chosen[0].content",
            "expected a string, got null",
        ),
        (
            {
                "chosen": [
                    {"role": "user", "content": "Q"},
                    {"role": "assistant", "content": "A"},
                    {"role": "user", "content": "?"},
                ],
                "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}],
            },
            "chosen",
            "expected one assistant reply after the prompt, found 2 messages",
        ),
        (
            {
                "prompt": "Other",
                "chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}],
            },
            "prompt",
            "does not match",
        ),
    ],
)
def test_trl_refuses_a_malformed_record_naming_the_field(record, field, message):
    error = error_of("trl", record)
    assert error.field == field
    assert message in error.message


# --- responses ------------------------------------------------------------------------------


def test_responses_reads_strings_and_objects_with_their_source():
    row = parse(
        "responses",
        {
            "prompt": "Hi",
            "responses": ["Hello", {"text": "Hey", "source": "gpt-x"}, {"text": "Yo", "model": "m2"}],
        },
    )
    assert [(r.text, r.source) for r in row.responses] == [("Hello", ""), ("Hey", "gpt-x"), ("Yo", "m2")]
    assert row.preferred is None


def test_responses_compares_a_duplicate_text_once_and_notes_it():
    row = parse("responses", {"prompt": "Hi", "responses": ["Hello", "Hello", "Hey"]})
    assert [r.text for r in row.responses] == ["Hello", "Hey"]
    assert row.notes == ["a duplicate response in a row compared once"]


def test_responses_skips_a_row_whose_responses_are_all_the_same():
    assert isinstance(parse("responses", {"prompt": "Hi", "responses": ["Hello", " Hello "]}), Skip)


@pytest.mark.parametrize(
    ("record", "field", "message"),
    [
        ({"responses": ["a", "b"]}, "prompt", "missing"),
        ({"prompt": "Hi"}, "responses", "missing"),
        ({"prompt": "Hi", "responses": "ab"}, "responses", "expected a list, got a string"),
        ({"prompt": "Hi", "responses": ["only one"]}, "responses", "expected 2 to 10 responses, got 1"),
        ({"prompt": "Hi", "responses": ["a", {"source": "x"}]}, "responses[1].text", "missing"),
        ({"prompt": "Hi", "responses": ["a", 5]}, "responses[1]", "expected a string or an object"),
        (
            {"prompt": "Hi", "responses": ["a", {"text": "b", "source": 1}]},
            "responses[1].source",
            "expected a string",
        ),
        (
            {"prompt": [{"role": "assistant", "content": "x"}], "responses": ["a", "b"]},
            "prompt",
            "must end with a user",
        ),
        ({"prompt": "   ", "responses": ["a", "b"]}, "prompt", "the last user turn is empty"),
    ],
)
def test_responses_refuses_a_malformed_record_naming_the_field(record, field, message):
    error = error_of("responses", record)
    assert error.field == field
    assert message in error.message


# --- prompts --------------------------------------------------------------------------------


def test_prompts_reads_plain_text_as_one_user_turn():
    assert parse("prompts", {"prompt": " Write a haiku. "}).messages == [
        {"role": "user", "content": "Write a haiku."}
    ]


def test_prompts_refuses_a_prompt_that_is_not_text_or_messages():
    error = error_of("prompts", {"prompt": {"text": "hi"}})
    assert (error.field, error.message) == (
        "prompt",
        "expected a string or a list of messages, got an object",
    )


# --- reading files --------------------------------------------------------------------------


def test_a_file_is_read_as_json_lines_with_line_numbers_and_blank_lines_ignored():
    data = b'{"a": 1}\n\n{"a": 2}\n'
    assert read_records(data, max_problems=20).items == [(1, {"a": 1}), (3, {"a": 2})]


def test_a_json_array_file_keeps_the_line_each_record_starts_on():
    data = json.dumps([{"a": 1}, {"a": 2}], indent=2).encode()
    assert read_records(data, max_problems=20).items == [(2, {"a": 1}), (5, {"a": 2})]


def test_a_broken_json_array_names_the_line():
    records = read_records(b'[\n{"a": 1},\n{"a": 2\n]', max_problems=20)
    assert records.problems[0].line == 4
    assert "bad JSON" in records.problems[0].message


def test_bad_utf8_and_bad_json_are_reported_by_line_and_column():
    records = read_records(b'{"a": 1}\n{"a": "\xff"}\n{"a": \n', max_problems=20)
    assert [str(p) for p in records.problems] == [
        "line 2: not valid UTF-8 (byte 0xff at column 8)",
        "line 3: bad JSON: Expecting value at column 7",
    ]


def test_reading_keeps_the_first_problems_and_counts_them_all():
    records = read_records(b"{\n" * 50, max_problems=20)
    assert [p.line for p in records.problems] == list(range(1, 21))
    assert records.problem_count == 50


def test_a_byte_order_mark_is_tolerated():
    assert read_records(b'\xef\xbb\xbf{"a": 1}\n', max_problems=20).items == [(1, {"a": 1})]
