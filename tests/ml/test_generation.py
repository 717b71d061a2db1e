import pytest
import torch

from tests.ml.tiny_models import save_tiny_causal_lm
from training.ml.generation import GenerationError, Generator, render_prompt

HI = [{"role": "user", "content": "hi"}]
LONG = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "tell me a long story"}]


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return Generator.load(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm")), device="cpu")


def test_it_returns_n_samples_per_prompt_in_prompt_order(generator):
    out = generator.generate([HI, LONG], n=3, max_new_tokens=5, seed=0)
    assert len(out) == 2
    assert [len(samples) for samples in out] == [3, 3]
    assert all(isinstance(text, str) for samples in out for text in samples)


def test_the_same_seed_gives_the_same_texts_and_another_seed_different_ones(generator):
    first = generator.generate([HI, LONG], n=2, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=7)
    again = generator.generate([HI, LONG], n=2, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=7)
    other = generator.generate([HI, LONG], n=2, max_new_tokens=12, temperature=1.0, top_p=1.0, seed=8)
    assert first == again
    assert first != other


def test_it_leaves_the_callers_random_state_alone(generator):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    generator.generate([HI], n=1, max_new_tokens=4, seed=99)
    assert torch.equal(torch.rand(3), expected)


def test_left_padding_makes_a_batched_prompt_continue_exactly_as_it_does_alone(generator):
    # Greedy decoding is deterministic, so any difference comes from padding leaking into the prompt.
    alone = generator.generate([HI], n=1, max_new_tokens=10, temperature=0, seed=0)[0]
    batched = generator.generate([LONG, HI], n=1, max_new_tokens=10, temperature=0, seed=0)[1]
    assert batched == alone


def test_it_restores_the_tokenizers_padding_side(generator):
    generator.tokenizer.padding_side = "right"
    generator.generate([HI], n=1, max_new_tokens=2, seed=0)
    assert generator.tokenizer.padding_side == "right"


def test_it_renders_prompts_with_the_chat_template(generator):
    text = render_prompt(generator.tokenizer, HI)
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_a_model_without_a_chat_template_gets_a_plain_transcript(tmp_path):
    gen = Generator.load(save_tiny_causal_lm(tmp_path, chat=False), device="cpu")
    assert render_prompt(gen.tokenizer, LONG) == "system: Be brief.\nuser: tell me a long story\nassistant:"
    assert len(gen.generate([LONG], n=1, max_new_tokens=3)[0]) == 1


def test_it_records_how_the_texts_were_made(generator):
    params = generator.generation_params(n=2, max_new_tokens=16, temperature=0.7, top_p=0.9, seed=3)
    assert params["model"] == generator.source
    assert params | {"model": None} == {
        "model": None,
        "n": 2,
        "max_new_tokens": 16,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 3,
        "do_sample": True,
        "chat_template": True,
    }


@pytest.mark.parametrize(
    ("prompts", "kwargs", "message"),
    [
        ("hi", {}, "list of conversations"),
        ([[]], {}, "non-empty list"),
        ([[{"role": "user"}]], {}, "role: str, content: str"),
        ([HI], {"n": 0}, "at least 1"),
        ([HI], {"max_new_tokens": 0}, "at least 1"),
        ([HI], {"temperature": -1.0}, "temperature"),
        ([HI], {"temperature": float("nan")}, "temperature"),
        ([HI], {"top_p": 0.0}, "top_p"),
        ([HI], {"top_p": 1.5}, "top_p"),
    ],
)
def test_it_refuses_bad_prompts_and_parameters(generator, prompts, kwargs, message):
    with pytest.raises(GenerationError, match=message):
        generator.generate(prompts, **kwargs)


@pytest.mark.integration
@pytest.mark.slow
def test_smollm2_answers_a_question_in_words():
    gen = Generator.load("smollm2-135m", device="cpu")
    [[answer]] = gen.generate(
        [[{"role": "user", "content": "What is the capital of France?"}]],
        n=1,
        max_new_tokens=16,
        temperature=0,
        seed=0,
    )
    assert "Paris" in answer
