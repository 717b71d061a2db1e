"""Turn preference examples into token ids once, before training, with a truncation rule that keeps
what matters: the whole response where possible and the END of the prompt (the latest turns).

Conversations (prompt = list of turns) go through the tokenizer's chat template when it has one;
otherwise they are written in the HH style ("\\n\\nHuman: ...\\n\\nAssistant: ..."). Plain-text prompts
are used as they are, with the response appended (the TRL convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .data import Message, PreferenceExample

_ROLE_LABEL = {"user": "Human", "assistant": "Assistant", "system": "System"}


def render_conversation(turns: list[Message]) -> str:
    """HH-style text of a conversation that ends where the assistant's reply begins."""
    parts = [f"\n\n{_ROLE_LABEL.get(t['role'], t['role'].capitalize())}: {t['content']}" for t in turns]
    return "".join(parts) + "\n\nAssistant:"


@dataclass
class Layout:
    """Where the special tokens go around prompt and response for one kind of model."""

    head: list[int]  # before the prompt: [CLS] or [BOS] or nothing
    middle: list[int]  # between prompt and response: [SEP] for encoders
    tail: list[int]  # after the response: [SEP] / [EOS]

    @property
    def n_special(self) -> int:
        return len(self.head) + len(self.middle) + len(self.tail)


def layout_for(tokenizer, *, is_encoder: bool, templated: bool | None = None) -> Layout:
    """``templated``: whether the text came from the chat template (default: whether there is one)."""
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    if is_encoder and cls_id is not None and sep_id is not None:
        return Layout([cls_id], [sep_id], [sep_id])
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    if templated is None:
        templated = bool(getattr(tokenizer, "chat_template", None))
    if templated:
        # Chat templates write their own start tokens into the text and end each turn themselves.
        return Layout([], [], [])
    return Layout(bos if is_encoder or bos != eos else [], [], eos)


@dataclass
class TokenizedPairs:
    """Token ids of every pair, computed once. Sequences are prompt + response with specials."""

    chosen: list[list[int]] = field(default_factory=list)
    rejected: list[list[int]] = field(default_factory=list)
    prompt_len: list[int] = field(default_factory=list)  # tokens before the response, both sides
    prompt_ids: list[list[int]] = field(default_factory=list)  # head + truncated prompt (+ middle)
    margin: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    smoothing: list[float] = field(default_factory=list)  # label smoothing; 0.5 for ties
    truncated_prompts: int = 0
    truncated_responses: int = 0
    truncated_examples: int = 0

    def __len__(self) -> int:
        return len(self.chosen)

    def lengths(self) -> list[int]:
        return [max(len(c), len(r)) for c, r in zip(self.chosen, self.rejected, strict=True)]

    def stats(self) -> dict[str, int]:
        return {
            "pairs": len(self),
            "truncated_examples": self.truncated_examples,
            "truncated_prompts": self.truncated_prompts,
            "truncated_responses": self.truncated_responses,
        }


def _prompt_and_responses(tokenizer, ex: PreferenceExample) -> tuple[str, str, str, bool]:
    """Texts of the prompt and of the two replies, such that prompt + reply is the full sequence,
    and whether the chat template wrote them (then it also wrote the end of each reply)."""
    if isinstance(ex.prompt, list):
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(ex.prompt, add_generation_prompt=True, tokenize=False)
            replies = []
            for reply in (ex.chosen, ex.rejected):
                full = tokenizer.apply_chat_template(
                    [*ex.prompt, {"role": "assistant", "content": reply}], tokenize=False
                )
                if not full.startswith(prompt):
                    # Some templates rewrite earlier turns; fall back to the plain rendering for all.
                    return render_conversation(ex.prompt), " " + ex.chosen, " " + ex.rejected, False
                replies.append(full[len(prompt) :])
            return prompt, replies[0], replies[1], True
        return render_conversation(ex.prompt), " " + ex.chosen, " " + ex.rejected, False
    # Plain text is used as it is (the TRL convention), and like TRL it still ends with EOS.
    return ex.prompt, ex.chosen, ex.rejected, False


def tokenize_pairs(
    tokenizer,
    examples: Sequence[PreferenceExample],
    *,
    max_length: int,
    is_encoder: bool,
    max_prompt_length: int = 0,
    label_smoothing: float = 0.0,
    use_margin: bool = True,
) -> TokenizedPairs:
    """Tokenise all pairs in three batched tokenizer calls and truncate each pair.

    Rule per pair (the same prompt cut for both replies, so they are compared on the same context):
    the prompt keeps its last `budget - longest reply` tokens; if that leaves under a quarter of the
    budget, the prompt keeps its last quarter and the replies keep their starts. Nothing is dropped.
    """
    layouts = {t: layout_for(tokenizer, is_encoder=is_encoder, templated=t) for t in (False, True)}
    texts = [_prompt_and_responses(tokenizer, ex) for ex in examples]
    if not texts:
        return TokenizedPairs()
    # verbose=False: we truncate below, so the tokenizer's "longer than the maximum" warning is noise.
    flat = [text for prompt, chosen, rejected, _ in texts for text in (prompt, chosen, rejected)]
    enc = tokenizer(flat, add_special_tokens=False, verbose=False)["input_ids"]
    out = TokenizedPairs()
    for i, ex in enumerate(examples):
        layout = layouts[texts[i][3]]
        budget = max_length - layout.n_special
        if budget < 2:
            raise ValueError(f"max_length={max_length} leaves no room for a prompt and a reply.")
        p, c, r = enc[3 * i], enc[3 * i + 1], enc[3 * i + 2]
        p_cap = budget - max(len(c), len(r))
        floor = min(len(p), budget // 4)
        if max_prompt_length:
            p_cap = min(p_cap, max_prompt_length)
            floor = min(floor, max_prompt_length)
        p_keep = max(p_cap, floor)
        r_keep = budget - p_keep if p_keep == floor and p_cap < floor else budget
        cut_prompt = len(p) > p_keep
        cut_reply = len(c) > r_keep or len(r) > r_keep
        p = p[len(p) - p_keep :] if cut_prompt else p
        c, r = c[:r_keep], r[:r_keep]
        prefix = layout.head + p + layout.middle
        out.chosen.append(prefix + c + layout.tail)
        out.rejected.append(prefix + r + layout.tail)
        out.prompt_len.append(len(prefix))
        out.prompt_ids.append(prefix)
        out.margin.append(float(ex.margin) if (use_margin and ex.margin is not None) else 0.0)
        out.weight.append(float(ex.weight))
        out.smoothing.append(0.5 if ex.is_tie else label_smoothing)
        out.truncated_prompts += cut_prompt
        out.truncated_responses += cut_reply
        out.truncated_examples += cut_prompt or cut_reply
    return out


def tokenize_scoring(
    tokenizer, prompt: str | list[Message], responses: Sequence[str], *, max_length: int, is_encoder: bool
) -> list[list[int]]:
    """Token ids for scoring several responses to one prompt, truncated by the training rule."""
    if not responses:
        return []
    examples = [PreferenceExample(prompt=prompt, chosen=resp, rejected=resp) for resp in responses]
    return tokenize_pairs(tokenizer, examples, max_length=max_length, is_encoder=is_encoder).chosen
