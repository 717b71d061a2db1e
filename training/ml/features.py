"""Frozen features of replies from a causal language model: what a linear reward head can read
without training the backbone.

For each (prompt, reply) the sequence is written and truncated exactly as a reward model or DPO
trainer would see it (`tokenize_pairs`: chat template, the END of the prompt kept), one forward pass
runs with hidden states on, and three things are kept per reply:

- ``last``: the hidden state of the sequence's last token at each requested layer (what a
  decoder reward model pools), (N, layers, H);
- ``mean``: the mean hidden state over the reply's tokens at each requested layer, (N, layers, H);
- ``logprob`` / ``reply_tokens``: the model's summed log-likelihood of the reply tokens given the
  prompt, and how many there are (the "implicit reward" of an instruction-tuned model), (N,).

>>> feats = reply_features(model, tokenizer, examples, layers=[15, 30])  # doctest: +SKIP
>>> feats.chosen.last.shape, feats.rejected.logprob.shape  # doctest: +SKIP
((1825, 2, 576), (1825,))

Sequences run shortest first in batches of about ``batch_tokens`` padded tokens (little padding,
bounded memory); results come back in the caller's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .data import PreferenceExample
from .tokenization import tokenize_pairs


@dataclass
class ReplyFeatures:
    last: np.ndarray  # (N, layers, H) float32
    mean: np.ndarray  # (N, layers, H) float32
    logprob: np.ndarray  # (N,) float32, summed over reply tokens
    reply_tokens: np.ndarray  # (N,) int64


@dataclass
class PairFeatures:
    chosen: ReplyFeatures
    rejected: ReplyFeatures
    layers: list[int]
    stats: dict[str, int]  # truncation counts from tokenize_pairs, and the tokens run


@torch.inference_mode()
def reply_features(
    model: torch.nn.Module,
    tokenizer,
    examples: Sequence[PreferenceExample],
    *,
    layers: Sequence[int],
    max_length: int = 256,
    batch_tokens: int = 4096,
    on_progress: Callable[[int, int], None] | None = None,
) -> PairFeatures:
    """Features of both replies of every pair from a causal LM (``AutoModelForCausalLM``).

    ``layers`` index ``output_hidden_states`` (0 = embeddings, ``num_hidden_layers`` = the last
    layer after the final norm). ``on_progress(done, total)`` is called after each batch.

    Each pair runs as ONE packed row, prompt + chosen + rejected, under a mask that hides the chosen
    reply from the rejected one and positions that restart the rejected reply where the prompt
    ends: every token sees exactly what it would in its own sequence, and the shared prompt (most of
    an HH sequence) is computed once instead of twice.
    """
    n_states = model.config.num_hidden_layers + 1
    if not layers or any(not 0 <= layer < n_states for layer in layers):
        raise ValueError(f"layers must be within 0..{n_states - 1}, got {list(layers)}.")
    pairs = tokenize_pairs(tokenizer, list(examples), max_length=max_length, is_encoder=False)
    n, hidden = len(pairs), model.config.hidden_size
    prompts = [c[:p] for c, p in zip(pairs.chosen, pairs.prompt_len, strict=True)]
    replies = [(c[p:], r[p:]) for c, r, p in zip(pairs.chosen, pairs.rejected, pairs.prompt_len, strict=True)]
    packed = [prompt + a + b for prompt, (a, b) in zip(prompts, replies, strict=True)]
    last = np.zeros((2, n, len(layers), hidden), dtype=np.float32)
    mean = np.zeros((2, n, len(layers), hidden), dtype=np.float32)
    logprob = np.zeros((2, n), dtype=np.float32)
    reply_tokens = np.array([[len(a) for a, _ in replies], [len(b) for _, b in replies]], dtype=np.int64)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    head = model.get_output_embeddings()
    order = sorted(range(n), key=lambda i: len(packed[i]))
    done = 0
    for chunk in _length_batches(order, [len(s) for s in packed], batch_tokens):
        reply_lens = [[len(x) for x in replies[i]] for i in chunk]
        ids, states, final = _forward(
            model, [packed[i] for i in chunk], [len(prompts[i]) for i in chunk], reply_lens, layers, pad_id
        )
        for row, i in enumerate(chunk):
            reads = _read_replies(states[row], final[row], ids[row], head, len(prompts[i]), reply_lens[row])
            for side, (side_last, side_mean, side_logprob) in enumerate(reads):
                last[side, i], mean[side, i], logprob[side, i] = side_last, side_mean, side_logprob
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, n)

    def side(k: int) -> ReplyFeatures:
        return ReplyFeatures(last[k], mean[k], logprob[k], reply_tokens[k])

    stats = {**pairs.stats(), "tokens": int(sum(len(s) for s in packed))}
    return PairFeatures(side(0), side(1), list(layers), stats)


def _forward(
    model: torch.nn.Module,
    rows: list[list[int]],
    prompt_lens: list[int],
    reply_lens: list[list[int]],
    layers: Sequence[int],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One forward pass over packed rows (prompt + reply A + reply B): the padded ids (B, T), the
    requested layers' hidden states (B, L, T, H) in fp32, and the final hidden states (B, T, H)."""
    device = next(model.parameters()).device
    ids, mask, positions = _pack(prompt_lens, reply_lens, pad_id)
    for row, seq in enumerate(rows):
        ids[row, : len(seq)] = torch.as_tensor(seq)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    out = model.base_model(
        input_ids=ids, attention_mask=mask, position_ids=positions, output_hidden_states=True
    )
    states = torch.stack([out.hidden_states[layer] for layer in layers], 1).float()  # (B, L, T, H)
    return ids, states, out.hidden_states[-1]  # the last after the final norm


def _read_replies(
    states: torch.Tensor, final: torch.Tensor, ids: torch.Tensor, head, prompt_len: int, reply_lens: list[int]
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(last, mean, summed log-likelihood) of reply A, then of reply B, from one packed row's
    states (L, T, H), final states (T, H) and ids (T,)."""
    p, out = prompt_len, []
    for start, length in ((p, reply_lens[0]), (p + reply_lens[0], reply_lens[1])):
        last = states[:, start + length - 1].cpu().numpy()
        mean = states[:, start : start + length].mean(1).cpu().numpy()
        # A reply's first token is predicted from the prompt's last one (if there is a prompt); the
        # rest from the reply's own previous tokens. The LM head runs on those positions only: it is
        # the widest matmul in the model.
        before = [p - 1] if p else []
        predictors = before + list(range(start, start + length - 1))
        targets = ids[start + (0 if p else 1) : start + length]
        logits = head(final[predictors]).float()  # (reply, vocab)
        out.append((last, mean, torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum().item()))
    return out


def _pack(prompt_lens: list[int], reply_lens: list[list[int]], pad_id: int):
    """Ids (to fill), a (B, 1, T, T) boolean mask and (B, T) positions for packed rows
    prompt + reply A + reply B, right-padded; padding attends to itself only (no empty rows)."""
    width = max(p + a + b for p, (a, b) in zip(prompt_lens, reply_lens, strict=True))
    batch = len(prompt_lens)
    ids = torch.full((batch, width), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, 1, width, width), dtype=torch.bool)
    positions = torch.zeros((batch, width), dtype=torch.long)
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    for row, (p, (a, b)) in enumerate(zip(prompt_lens, reply_lens, strict=True)):
        end = p + a + b
        m = mask[row, 0]
        m[:end, :end] = causal[:end, :end]
        m[p + a : end, p : p + a] = False  # reply B never sees reply A
        m[end:, end:] = torch.eye(width - end, dtype=torch.bool)
        positions[row, : p + a] = torch.arange(p + a)
        positions[row, p + a : end] = torch.arange(p, p + b)
    return ids, mask, positions


def _length_batches(order: list[int], lengths: list[int], batch_tokens: int):
    """Consecutive runs of ``order`` (sorted by length) whose padded size stays within budget."""
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > batch_tokens:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch
