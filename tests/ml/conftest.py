"""Tiny models built from configs, and toy preference data they can learn in a few steps."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = [
    "hello",
    "hi",
    "thanks",
    "please",
    "sure",
    "help",
    "happy",
    "kind",
    "great",
    "good",
    "nice",
    "fine",
    "yes",
    "no",
    "bad",
    "awful",
    "rude",
    "hate",
    "go",
    "away",
    "stupid",
    "wrong",
    "never",
    "ugly",
    "sad",
    "the",
    "a",
    "is",
    "you",
    "i",
    "it",
    "what",
    "how",
]
GOOD = ["thanks", "please", "sure", "help", "happy", "kind", "great", "good", "nice"]
BAD = ["bad", "awful", "rude", "hate", "stupid", "wrong", "never", "ugly", "sad"]

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def build_tokenizer(kind: str, *, chat_template: bool = False):
    from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if kind == "bert":
        specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    else:
        specials = ["<pad>", "<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {
        tok: i for i, tok in enumerate(specials + WORDS + [":", ".", ",", "!", "?", "human", "assistant"])
    }
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token=specials[1]))
    tk.normalizer = normalizers.Lowercase()
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    if kind == "bert":
        tok = PreTrainedTokenizerFast(
            tokenizer_object=tk,
            pad_token="[PAD]",
            unk_token="[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
            mask_token="[MASK]",
        )
    else:
        tok = PreTrainedTokenizerFast(
            tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
        )
        if chat_template:
            tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny_bert(path: Path, *, dropout: float = 0.0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tok = build_tokenizer("bert")
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        pad_token_id=tok.pad_token_id,
    )
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def save_tiny_llama(path: Path, *, chat_template: bool = True) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    from tests.ml.tiny_models import tiny_llama_config

    torch.manual_seed(0)
    tok = build_tokenizer("llama", chat_template=chat_template)
    config = tiny_llama_config(tok, num_attention_heads=2)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def toy_pairs(n: int, *, seed: int = 0, conversational: bool = True, equal_lengths: bool = False):
    """Pairs whose chosen reply uses kind words and rejected reply rude ones: learnable in a few steps."""
    from training.ml.data import PreferenceExample

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        question = " ".join(rng.choices(WORDS[:12] + WORDS[-8:], k=rng.randint(2, 8)))
        good = " ".join(rng.choices(GOOD, k=rng.randint(1, 5)))
        bad = " ".join(rng.choices(BAD, k=len(good.split()) if equal_lengths else rng.randint(1, 5)))
        prompt = [{"role": "user", "content": question}] if conversational else question
        out.append(PreferenceExample(prompt=prompt, chosen=good, rejected=bad))
    return out


@pytest.fixture
def pairs():
    return toy_pairs(32)


def read_weights(checkpoint_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(checkpoint_dir / "model.safetensors"))


class Recorder:
    """An on_log callback that keeps every event and can ask the loop to stop at a given step."""

    def __init__(self, stop_at: int | None = None):
        self.events: list[dict] = []
        self.stop_at = stop_at

    def __call__(self, event: dict) -> bool:
        self.events.append(event)
        return self.stop_at is not None and event["event"] == "step" and event["step"] >= self.stop_at

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def losses(self) -> list[float]:
        return [e["loss"] for e in self.of("step")]
