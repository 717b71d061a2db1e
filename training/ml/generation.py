"""Sample responses from a causal LM (a base model or a trained DPO checkpoint) for the annotation queue.

>>> gen = Generator.load("smollm2-135m")  # doctest: +SKIP
>>> gen.generate([[{"role": "user", "content": "Hi!"}]], n=2, max_new_tokens=32, seed=1)  # doctest: +SKIP
[['Hello! How can I help you today?', 'Hi there! What can I do for you?']]

Prompts are rendered with the model's chat template (a plain "role: content" transcript when it has
none), left-padded so that every sequence in a batch ends where generation begins, and sampled in
batches. The same prompts, parameters and seed give the same texts; `generation_params(...)` is the
record to store next to each response so that anyone can tell how it was made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

Messages = list[dict[str, str]]


class GenerationError(ValueError):
    """Bad prompts or sampling parameters."""


def pick_device(device: str = "auto") -> torch.device:
    if device != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """The text the model continues: chat template with the assistant turn opened."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    # A model without a template (a base LM) gets a readable transcript that ends where it should speak.
    lines = [f"{turn['role']}: {turn['content']}" for turn in messages]
    return "\n".join([*lines, "assistant:"])


def validate_messages(prompts: Sequence[Messages]) -> None:
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise GenerationError("prompts must be a list of conversations (each a list of {role, content}).")
    for index, messages in enumerate(prompts):
        if not isinstance(messages, list) or not messages:
            raise GenerationError(f"prompt {index} must be a non-empty list of {{role, content}} turns.")
        for turn in messages:
            if (
                not isinstance(turn, dict)
                or not isinstance(turn.get("role"), str)
                or not isinstance(turn.get("content"), str)
            ):
                raise GenerationError(f"prompt {index} has a turn that is not {{role: str, content: str}}.")


@dataclass
class Generator:
    model: Any  # a transformers causal LM
    tokenizer: Any
    source: str  # what it was loaded from, recorded with every response
    batch_size: int = 8  # sequences sampled together; bounded to keep memory flat

    @classmethod
    def load(cls, checkpoint_dir_or_model_name: str | Path, *, device: str = "auto") -> Generator:
        """Load a trained checkpoint written by `run_training`, a model directory or a short name."""
        from training.ml import backbone

        source = str(checkpoint_dir_or_model_name)
        path = backbone.resolve(source)  # our checkpoints pass through; names go through hub.py
        model = backbone.load_causal_lm(path)
        tokenizer = backbone.load_tokenizer(path)
        model.to(pick_device(device)).eval()
        return cls(model=model, tokenizer=tokenizer, source=source)

    def generation_params(
        self, *, n: int, max_new_tokens: int, temperature: float, top_p: float, seed: int
    ) -> dict[str, Any]:
        """What to store in `Response.generation_params` for texts made by `generate(...)`."""
        return {
            "model": self.source,
            "n": n,
            "max_new_tokens": max_new_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "seed": seed,
            "do_sample": temperature > 0,
            "chat_template": bool(getattr(self.tokenizer, "chat_template", None)),
        }

    def generate(
        self,
        prompts: Sequence[Messages],
        *,
        n: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
    ) -> list[list[str]]:
        """`n` sampled continuations for each prompt, in prompt order; temperature 0 means greedy."""
        validate_messages(prompts)
        if n < 1 or max_new_tokens < 1:
            raise GenerationError(f"n and max_new_tokens must be at least 1, got n={n}, {max_new_tokens=}.")
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise GenerationError(f"temperature must be a finite number >= 0, got {temperature!r}.")
        if not 0 < top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], got {top_p!r}.")
        texts = [render_prompt(self.tokenizer, messages) for messages in prompts]
        # Each prompt repeated n times, so one batch can hold several samples of the same prompt.
        flat = [text for text in texts for _ in range(n)]
        outputs: list[str] = []
        device = next(self.model.parameters()).device
        tokenizer = self.tokenizer
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # every row must end where generation starts
        try:
            # fork_rng: seeding here must not disturb the caller's random state (e.g. a training loop).
            rng_devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
                torch.manual_seed(seed)
                for start in range(0, len(flat), self.batch_size):
                    batch = tokenizer(
                        flat[start : start + self.batch_size],
                        return_tensors="pt",
                        padding=True,
                        add_special_tokens=False,  # the chat template already placed them
                    ).to(device)
                    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
                    generated = self.model.generate(
                        **batch,
                        max_new_tokens=max_new_tokens,
                        pad_token_id=pad_id,
                        **(sampling if temperature > 0 else {"do_sample": False}),
                    )
                    new_tokens = generated[:, batch["input_ids"].shape[1] :]
                    outputs.extend(
                        text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
                    )
        finally:
            tokenizer.padding_side = side
        return [outputs[i * n : (i + 1) * n] for i in range(len(prompts))]
