"""Score a tuned policy against an opponent (its base, or the version that served before it) on
held-back prompts, with a reward model as the judge.

>>> result = evaluate_policy(  # doctest: +SKIP
...     policy="runs/7/final", opponent="smollm2-135m", judge="runs/6/final",
...     prompts=[[{"role": "user", "content": "Hi!"}]], settings=EvalSettings(seed=0),
... )
>>> result.win_rate, (result.ci_low, result.ci_high), result.mean_kl  # doctest: +SKIP
(0.62, (0.48, 0.75), 0.031)

Both policies answer every prompt once with the same seed (common random numbers: two identical
models write identical texts, which the judge calls a tie). The judge's P(tuned better) per prompt
gives the outcome (1 win, 0 loss, 0.5 tie; identical texts are always a tie), and the win rate and
its bootstrap interval follow from ``training.ml.evaluation``. The KL is KL(policy || reference)
per token, estimated on the policy's own responses: the mean of log p_policy - log p_reference over
every generated token (the reference is the opponent unless given; both must share a tokenizer).
It is an unbiased estimate when the policy samples at temperature 1 with top_p 1 (the defaults);
under greedy decoding it is the log-ratio along the greedy path. Lengths are generated tokens, the
end-of-sequence token included, each in its own model's tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import rollouts as ro
from .evaluation import bootstrap_interval, mean_kl, outcomes
from .generation import Generator, pick_device
from .rl import tokenize_prompts

Prompt = str | list[dict[str, str]]


@dataclass(frozen=True)
class EvalSettings:
    max_new_tokens: int = 128  # the length limit of every response
    temperature: float = 1.0  # 0 decodes greedily; 1 keeps the KL estimate unbiased
    top_p: float = 1.0
    seed: int = 0  # sampling seed, shared by both policies, and the bootstrap's seed
    batch_size: int = 8  # prompts generated and scored together
    max_prompt_tokens: int = 512  # a longer prompt loses its start, so the latest turns stay
    bootstrap_rounds: int = 1000

    def __post_init__(self) -> None:
        checks = {
            "max_new_tokens": isinstance(self.max_new_tokens, int) and 1 <= self.max_new_tokens <= 4096,
            "temperature": isinstance(self.temperature, int | float) and 0 <= self.temperature <= 5,
            "top_p": isinstance(self.top_p, int | float) and 0 < self.top_p <= 1,
            "seed": isinstance(self.seed, int) and self.seed >= 0,
            "batch_size": isinstance(self.batch_size, int) and self.batch_size >= 1,
            "max_prompt_tokens": isinstance(self.max_prompt_tokens, int) and self.max_prompt_tokens >= 1,
            "bootstrap_rounds": isinstance(self.bootstrap_rounds, int) and self.bootstrap_rounds >= 1,
        }
        for name, ok in checks.items():
            if isinstance(getattr(self, name), bool) or not ok:
                raise ValueError(f"Evaluation setting {name}={getattr(self, name)!r} is out of range.")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalSettings:
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown evaluation settings: {', '.join(sorted(unknown))}.")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionEvalResult:
    win_rate: float  # share of prompts the policy wins, ties counting half
    ci_low: float  # bootstrap 95% interval of the win rate, resampling prompts
    ci_high: float
    n_prompts: int
    wins: int
    ties: int
    losses: int
    mean_kl: float  # KL(policy || reference) per generated token
    mean_length_policy: float  # generated tokens per response
    mean_length_opponent: float
    outcomes: list[float]  # per prompt: 1, 0.5 or 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Answers:
    texts: list[str]
    batches: list[ro.Samples]  # the policy's token ids, for the log-probs
    lengths: list[int]


def _answer(gen: Generator, prompts: Sequence[Prompt], settings: EvalSettings) -> _Answers:
    """One response per prompt, seeded (each policy draws the same numbers), in batches of
    ``settings.batch_size``."""
    lm, tokenizer = gen.model, gen.tokenizer
    device = next(lm.parameters()).device
    ids = tokenize_prompts(tokenizer, prompts, max_prompt_tokens=settings.max_prompt_tokens)
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    texts, batches, lengths = [], [], []
    torch.manual_seed(settings.seed)
    for start in range(0, len(ids), settings.batch_size):
        samples = ro.sample(
            lm,
            ids[start : start + settings.batch_size],
            k=1,
            max_new_tokens=settings.max_new_tokens,
            temperature=float(settings.temperature),
            top_p=float(settings.top_p),
            eos_id=eos_id,
            pad_id=pad_id,
            device=device,
        )
        batches.append(samples)
        for row in range(samples.responses.shape[0]):
            tokens = samples.responses[row][samples.response_mask[row].bool()]
            texts.append(tokenizer.decode(tokens, skip_special_tokens=True).strip())
        lengths.extend(int(n) for n in samples.lengths.tolist())
    return _Answers(texts, batches, lengths)


@torch.inference_mode()
def _response_logps(lm: torch.nn.Module, batches: Sequence[ro.Samples]) -> list[list[float]]:
    """log p(token) of every generated token under ``lm``, one list per response."""
    device = next(lm.parameters()).device
    out: list[list[float]] = []
    for samples in batches:
        moved = ro.Samples(
            samples.input_ids.to(device),
            samples.attention_mask.to(device),
            samples.prompt_width,
            samples.response_mask.to(device),
            samples.truncated.to(device),
        )
        logits, _ = ro.response_logits(lm, moved)
        logps = ro.token_logps(logits, moved.responses)  # (N, T)
        for row in range(logps.shape[0]):
            out.append(logps[row][moved.response_mask[row].bool()].double().cpu().tolist())
    return out


def _same_vocabulary(a: Any, b: Any) -> bool:
    return a.get_vocab() == b.get_vocab()


def evaluate_policy(
    *,
    policy: str | Path,
    opponent: str | Path,
    judge: str | Path,
    prompts: Sequence[Prompt],
    settings: EvalSettings | dict[str, Any] | None = None,
    reference: str | Path | None = None,
    device: str = "auto",
) -> VersionEvalResult:
    """Win rate of ``policy`` against ``opponent`` on ``prompts`` as ``judge`` (a reward-model
    checkpoint) sees it, with its bootstrap 95% interval, the policy's KL to ``reference`` (default:
    the opponent) and both mean response lengths. ``settings`` may be a dict of ``EvalSettings``
    fields (as stored with the evaluation). Models are a checkpoint directory, a model
    directory or a short name; each is loaded once, and let go before the next. The caller's random
    state is left as it was (loading a model draws from it too)."""
    if isinstance(settings, dict):
        settings = EvalSettings.from_dict(settings)
    settings = settings or EvalSettings()
    prompts = list(prompts)
    if not prompts:
        raise ValueError("There are no prompts to evaluate on.")
    target = pick_device(device)
    with torch.random.fork_rng(devices=[target] if target.type == "cuda" else []):
        return _evaluate(
            policy=policy,
            opponent=opponent,
            judge=judge,
            prompts=prompts,
            settings=settings,
            reference=opponent if reference is None else reference,
            target=target,
        )


def _evaluate(*, policy, opponent, judge, prompts, settings, reference, target) -> VersionEvalResult:
    from .serving import RewardScorer

    gen = Generator.load(policy, device=str(target))
    ours = _answer(gen, prompts, settings)
    policy_logps = _response_logps(gen.model, ours.batches)
    policy_tokenizer = gen.tokenizer
    del gen

    theirs: _Answers | None = None
    ref_gen = Generator.load(reference, device=str(target))
    if not _same_vocabulary(policy_tokenizer, ref_gen.tokenizer):
        raise ValueError(
            "The policy and its reference use different tokenizers, so their log-probs cannot be compared."
        )
    reference_logps = _response_logps(ref_gen.model, ours.batches)
    if str(reference) == str(opponent):
        theirs = _answer(ref_gen, prompts, settings)
    del ref_gen
    if theirs is None:
        opp_gen = Generator.load(opponent, device=str(target))
        theirs = _answer(opp_gen, prompts, settings)
        del opp_gen

    kl = mean_kl(policy_logps, reference_logps)
    scorer = RewardScorer.load(judge, device=str(target), batch_size=max(2, settings.batch_size * 2))
    probs = scorer.probs_first_better(
        [(prompt, a, b) for prompt, a, b in zip(prompts, ours.texts, theirs.texts, strict=True)]
    )
    del scorer
    # Identical texts tie whatever the judge's rounding says (the two may be batched apart).
    probs = [0.5 if a == b else p for p, a, b in zip(probs, ours.texts, theirs.texts, strict=True)]
    wins = outcomes(probs, [0.5] * len(probs))
    low, high = bootstrap_interval(wins, rounds=settings.bootstrap_rounds, seed=settings.seed)
    return VersionEvalResult(
        win_rate=float(wins.mean()),
        ci_low=low,
        ci_high=high,
        n_prompts=len(prompts),
        wins=int((wins == 1).sum()),
        ties=int((wins == 0.5).sum()),
        losses=int((wins == 0).sum()),
        mean_kl=kl,
        mean_length_policy=float(np.mean(ours.lengths)),
        mean_length_opponent=float(np.mean(theirs.lengths)),
        outcomes=wins.tolist(),
    )
