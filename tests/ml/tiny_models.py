"""Tiny models built from configs, saved like real ones, so ML tests run in seconds without downloads.

The tokenizer is character-level (printable ASCII plus the chat markers), which keeps the vocabulary
small and tokenisation obvious when a test counts tokens.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "[CLS]", "[SEP]"]


def tiny_tokenizer(*, chat: bool = True, encoder: bool = False):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*SPECIALS, *string.printable])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    # One token per character; special markers are matched first as added tokens.
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    if encoder:
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        cls_token="[CLS]" if encoder else None,
        sep_token="[SEP]" if encoder else None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama_config(tokenizer, **overrides):
    """A 2-layer, 32-wide Llama config sized to ``tokenizer``; tests override what they need."""
    from transformers import LlamaConfig

    settings = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "tie_word_embeddings": True,
    }
    return LlamaConfig(**{**settings, **overrides})


def save_tiny_causal_lm(directory: Path, *, seed: int = 0, chat: bool = True) -> Path:
    """A 2-layer Llama with the char tokenizer, saved with save_pretrained."""
    from transformers import LlamaForCausalLM

    tokenizer = tiny_tokenizer(chat=chat)
    config = tiny_llama_config(tokenizer)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_encoder(directory: Path, *, seed: int = 0) -> Path:
    """A 2-layer BERT with the char tokenizer (CLS ... SEP), saved with save_pretrained."""
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer(chat=False, encoder=True)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
