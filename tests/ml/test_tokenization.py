import pytest

from tests.ml.conftest import build_tokenizer
from training.ml.data import PreferenceExample
from training.ml.tokenization import render_conversation, tokenize_pairs

LONG_PROMPT = "hello " * 10 + "what is it"  # 12 tokens; its END ("what is it") must survive


def decode(tok, ids):
    return tok.decode(ids)


def test_a_conversation_goes_through_the_chat_template_when_the_tokenizer_has_one():
    tok = build_tokenizer("llama", chat_template=True)
    ex = PreferenceExample([{"role": "user", "content": "hi"}], "good", "bad")
    pairs = tokenize_pairs(tok, [ex], max_length=64, is_encoder=False)
    assert decode(tok, pairs.chosen[0]) == "<|user|> hi </s> <|assistant|> good </s>"
    assert decode(tok, pairs.chosen[0][pairs.prompt_len[0] :]) == "good </s>"


def test_plain_text_ends_with_eos_even_when_the_tokenizer_has_a_chat_template():
    # The template is for conversations; plain text is used as it is, and still closed like TRL does.
    tok = build_tokenizer("llama", chat_template=True)
    ex = PreferenceExample("hi", " good", " bad")
    pairs = tokenize_pairs(tok, [ex], max_length=64, is_encoder=False)
    assert pairs.chosen[0][-1] == tok.eos_token_id
    assert decode(tok, pairs.chosen[0][pairs.prompt_len[0] :]) == "good </s>"


def test_without_a_template_a_conversation_is_written_in_the_hh_style():
    assert render_conversation([{"role": "user", "content": "hi"}]) == "\n\nHuman: hi\n\nAssistant:"
    tok = build_tokenizer("bert")
    ex = PreferenceExample([{"role": "user", "content": "hi"}], "good", "bad")
    pairs = tokenize_pairs(tok, [ex], max_length=64, is_encoder=True)
    assert decode(tok, pairs.chosen[0]) == "[CLS] human : hi assistant : [SEP] good [SEP]"


def test_truncation_keeps_the_end_of_the_prompt_and_the_whole_response():
    tok = build_tokenizer("bert")
    ex = PreferenceExample(LONG_PROMPT, "good nice", "bad")
    pairs = tokenize_pairs(tok, [ex], max_length=10, is_encoder=True)
    chosen = decode(tok, pairs.chosen[0])
    assert chosen == "[CLS] hello hello what is it [SEP] good nice [SEP]"
    assert len(pairs.chosen[0]) == 10
    # The same prompt cut for both replies, so they are compared on the same context.
    assert pairs.rejected[0][: pairs.prompt_len[0]] == pairs.chosen[0][: pairs.prompt_len[0]]
    assert pairs.stats() == {
        "pairs": 1,
        "truncated_examples": 1,
        "truncated_prompts": 1,
        "truncated_responses": 0,
    }


def test_a_response_too_long_to_fit_is_cut_from_its_end_and_counted_not_dropped():
    tok = build_tokenizer("llama")
    ex = PreferenceExample("what is it", "good " * 30, "bad")
    short = PreferenceExample("hi", "good", "bad")
    pairs = tokenize_pairs(tok, [ex, short], max_length=12, is_encoder=False)
    assert len(pairs) == 2
    assert max(len(s) for s in pairs.chosen + pairs.rejected) <= 12
    assert decode(tok, pairs.chosen[0][: pairs.prompt_len[0]]).endswith("is it")
    assert (pairs.truncated_examples, pairs.truncated_responses) == (1, 1)


def test_ties_get_label_smoothing_of_a_half_and_margins_can_be_ignored():
    tok = build_tokenizer("bert")
    examples = [PreferenceExample("hi", "a", "b", margin=2.0), PreferenceExample("hi", "a", "b", is_tie=True)]
    pairs = tokenize_pairs(tok, examples, max_length=16, is_encoder=True, label_smoothing=0.1)
    assert pairs.smoothing == [0.1, 0.5]
    assert pairs.margin == [2.0, 0.0]
    assert tokenize_pairs(tok, examples, max_length=16, is_encoder=True, use_margin=False).margin == [
        0.0,
        0.0,
    ]


def test_it_refuses_a_max_length_with_no_room_for_text():
    with pytest.raises(ValueError, match="max_length"):
        tokenize_pairs(
            build_tokenizer("bert"), [PreferenceExample("p", "a", "b")], max_length=3, is_encoder=True
        )
