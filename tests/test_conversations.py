"""alignweb.conversations: one reading of HH transcripts and TRL rows, and its inverse."""

import pytest

from alignweb.conversations import (
    ConversationError,
    DifferentConversations,
    Preference,
    hh_preference,
    hh_transcript,
    parse_transcript,
    render_transcript,
    trl_conversational_row,
    trl_plain_row,
    trl_preference,
)

# Each pair is the quirk of a real HH row: a repeated marker in the shared turns, one inside a
# reply, a reply holding a whole exchange, an empty reply, extra spaces kept as written.
ROWS = [
    ("\n\nHuman: Hi\n\nAssistant: Hello!", "\n\nHuman: Hi\n\nAssistant: Go away."),
    (
        "\n\nHuman: Q\n\nAssistant: Yes.\n\nAssistant:  Well.\n\nHuman: And?\n\nAssistant: Good.",
        "\n\nHuman: Q\n\nAssistant: Yes.\n\nAssistant:  Well.\n\nHuman: And?\n\nAssistant: Bad.",
    ),
    (
        "\n\nHuman: Q\n\nAssistant: Human: a.  Human: b?\n\nAssistant:  Human: c",
        "\n\nHuman: Q\n\nAssistant: No.",
    ),
    (
        "\n\nHuman: Q\n\nAssistant: No.\n\nHuman: Why?\n\nAssistant: Because.",
        "\n\nHuman: Q\n\nAssistant: Yes.",
    ),
    ("\n\nHuman: Where?\n\nAssistant: ", "\n\nHuman: Where?\n\nAssistant: Here."),
    ("\n\nHuman:  spaced \n\nAssistant: a ", "\n\nHuman:  spaced \n\nAssistant:  b"),
]


@pytest.mark.parametrize(("chosen", "rejected"), ROWS)
def test_writing_what_was_read_gives_the_same_text(chosen, rejected):
    pair = hh_preference(chosen, rejected)
    assert (hh_transcript(pair.prompt, pair.chosen), hh_transcript(pair.prompt, pair.rejected)) == (
        chosen,
        rejected,
    )
    assert render_transcript(parse_transcript(chosen)) == chosen


@pytest.mark.parametrize(("chosen", "rejected"), ROWS)
def test_both_trl_layouts_read_back_as_the_hh_row(chosen, rejected):
    pair = hh_preference(chosen, rejected)
    for layout in (trl_conversational_row, trl_plain_row):
        assert trl_preference(layout(pair.prompt, pair.chosen, pair.rejected)) == (
            Preference(pair.prompt, pair.chosen, pair.rejected)
        )
    # Implicit HH transcripts in a TRL row are an HH row.
    assert trl_preference({"chosen": chosen, "rejected": rejected}) == pair


def test_turns_alternate_and_a_repeated_marker_is_noted():
    pair = hh_preference(*ROWS[1])
    assert [m["role"] for m in pair.prompt] == ["user", "assistant", "user"]
    assert pair.prompt[1]["content"] == "Yes.\n\nAssistant:  Well."
    assert pair.repeated_markers
    assert not hh_preference(*ROWS[0]).repeated_markers


def test_a_system_turn_goes_through_the_hh_layout():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    pair = hh_preference(hh_transcript(messages, "Hello."), hh_transcript(messages, "Bye."))
    assert (pair.prompt, pair.chosen, pair.rejected) == (messages, "Hello.", "Bye.")


def test_a_plain_prompt_that_prefills_the_reply_stays_text():
    prompt = "\n\nHuman: Q\n\nAssistant: Sure,\n\nAssistant:"
    assert trl_preference({"prompt": prompt, "chosen": " a", "rejected": " b"}).prompt == prompt


def test_transcripts_that_share_no_turn_are_different_conversations():
    with pytest.raises(DifferentConversations):
        hh_preference("\n\nHuman: A\n\nAssistant: x", "\n\nHuman: B\n\nAssistant: x")


@pytest.mark.parametrize(
    ("chosen", "field", "message"),
    [
        ("no turns", "chosen", "text before the first"),
        ("\n\nAssistant: A", "chosen", "must start with a Human turn"),
        ("\n\nHuman: Q", "chosen", "must end with an Assistant turn"),
    ],
)
def test_a_malformed_transcript_is_refused_naming_the_side(chosen, field, message):
    with pytest.raises(ConversationError) as caught:
        hh_preference(chosen, "\n\nHuman: Q\n\nAssistant: B")
    assert (caught.value.field, message in caught.value.message) == (field, True)


def test_the_examples_in_the_docstrings_hold():
    import doctest

    from alignweb import conversations

    assert doctest.testmod(conversations).failed == 0
