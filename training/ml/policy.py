"""DPO and IPO on a causal LM against a frozen reference.

The reference is the starting model (or `reference_model`): its log-probabilities of every chosen and
rejected reply are computed ONCE, before the first step, so no second model sits in memory and no
reference forward pass is repeated per epoch. Sequence log-probs run the LM head only on response
positions, never on the prompt (the vocabulary projection is the largest matmul of a small LM).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from . import backbone as bb
from .objectives import dpo_loss, ipo_loss
from .reward import pad_batch, pairwise_metrics
from .task_parts import AdapterWeights, PairSetData, eval_batches
from .tokenization import TokenizedPairs, tokenize_pairs


def response_mask(attention_mask: Tensor, prompt_len: Tensor) -> Tensor:
    """attention_mask: (N, T), prompt_len: (N,) -> (N, T) True on response tokens."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)  # (T,)
    return (positions.unsqueeze(0) >= prompt_len.unsqueeze(1)) & attention_mask.bool()


class SequenceLogProbs(nn.Module):
    """Sum of log p(token | prefix) over each sequence's response tokens, and their count."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: Tensor, attention_mask: Tensor, resp_mask: Tensor) -> tuple[Tensor, Tensor]:
        """input_ids, attention_mask, resp_mask: (N, T) -> sums (N,), counts (N,)."""
        decoder = self.lm.get_decoder()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]  # (N, T, H)
        targets_mask = resp_mask[:, 1:]  # (N, T-1): token t+1 is predicted from position t
        rows = torch.arange(input_ids.shape[0], device=input_ids.device).unsqueeze(1).expand_as(targets_mask)
        picked = hidden[:, :-1][targets_mask]  # (M, H), M = response tokens in the batch
        targets = input_ids[:, 1:][targets_mask]  # (M,)
        logits = self.lm.get_output_embeddings()(picked).float()  # (M, V)
        token_logps = -nn.functional.cross_entropy(logits, targets, reduction="none")  # (M,)
        n = input_ids.shape[0]
        sums = torch.zeros(n, device=input_ids.device, dtype=token_logps.dtype)
        sums = sums.index_add(0, rows[targets_mask], token_logps)  # (N,)
        counts = targets_mask.sum(1)  # (N,)
        return sums, counts


class PackedPairLogProbs(nn.Module):
    """Log-probs of both replies of each pair from ONE pass over [prompt, chosen, rejected].

    The prompt's states are computed once and shared: a 4D mask lets chosen tokens see the prompt
    and earlier chosen tokens, rejected tokens the prompt and earlier rejected tokens, and position
    ids restart the rejected reply right after the prompt, so each reply is scored exactly as if it
    followed the prompt alone. About 70% of HH tokens are prompt, so this saves a third of the work.
    """

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(
        self,
        input_ids: Tensor,
        position_ids: Tensor,
        segments: Tensor,
        src: Tensor,
        tgt: Tensor,
        slot: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """input_ids, position_ids, segments: (B, T) with segments 0 prompt / 1 chosen / 2 rejected / -1 pad.
        src, tgt: (M,) flat indices into B*T: the state at `src` predicts the token at `tgt`;
        slot: (M,) which output the prediction belongs to (row for chosen, B + row for rejected).
        Returns sums (2B,) and counts (2B,), chosen rows first.
        """
        b, t = input_ids.shape
        mask = pair_attention_mask(position_ids, segments)  # (B, 1, T, T) True = may attend
        if self.lm.config._attn_implementation != "sdpa":
            mask = torch.zeros(mask.shape, dtype=self.lm.dtype, device=mask.device).masked_fill(
                ~mask, torch.finfo(self.lm.dtype).min
            )
        decoder = self.lm.get_decoder()
        hidden = decoder(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=False
        )[0]  # (B, T, H)
        picked = hidden.reshape(b * t, -1)[src]  # (M, H)
        logits = self.lm.get_output_embeddings()(picked).float()  # (M, V)
        token_logps = -nn.functional.cross_entropy(logits, input_ids.reshape(-1)[tgt], reduction="none")
        sums = torch.zeros(2 * b, device=input_ids.device, dtype=token_logps.dtype).index_add(
            0, slot, token_logps
        )
        counts = torch.zeros(2 * b, device=input_ids.device, dtype=torch.long).index_add(
            0, slot, torch.ones_like(slot)
        )
        return sums, counts


def pair_attention_mask(position_ids: Tensor, segments: Tensor) -> Tensor:
    """(B, T) positions and segments -> (B, 1, T, T) boolean mask for packed pairs."""
    q_pos, k_pos = position_ids.unsqueeze(2), position_ids.unsqueeze(1)  # (B, T, 1), (B, 1, T)
    q_seg, k_seg = segments.unsqueeze(2), segments.unsqueeze(1)
    allowed = (k_pos <= q_pos) & ((k_seg == 0) | (k_seg == q_seg)) & (k_seg >= 0)  # (B, T, T)
    # Pad rows attend to themselves only, so no row is fully masked (that would give NaN states).
    eye = torch.eye(segments.shape[1], dtype=torch.bool, device=segments.device)
    return (allowed | eye).unsqueeze(1)


def pack_pair(
    chosen: list[int], rejected: list[int], prompt_len: int
) -> tuple[list[int], list[int], list[int]]:
    """[prompt, chosen reply, rejected reply] token ids, positions and segment ids for one pair."""
    prompt, rc, rr = chosen[:prompt_len], chosen[prompt_len:], rejected[prompt_len:]
    ids = prompt + rc + rr
    pos = list(range(prompt_len + len(rc))) + list(range(prompt_len, prompt_len + len(rr)))
    seg = [0] * prompt_len + [1] * len(rc) + [2] * len(rr)
    return ids, pos, seg


def packed_batch(data: TokenizedPairs, indices: list[int], pad_id: int) -> dict[str, Tensor]:
    """Right-padded packed pairs plus the flat (src -> tgt) prediction indices of every reply token."""
    packs = [pack_pair(data.chosen[i], data.rejected[i], data.prompt_len[i]) for i in indices]
    b, t = len(packs), max(len(p[0]) for p in packs)
    ids = torch.full((b, t), pad_id, dtype=torch.long)
    pos = torch.zeros((b, t), dtype=torch.long)
    seg = torch.full((b, t), -1, dtype=torch.long)
    src, tgt, slot = [], [], []
    for row, (i, (p_ids, p_pos, p_seg)) in enumerate(zip(indices, packs, strict=True)):
        n = len(p_ids)
        ids[row, :n] = torch.as_tensor(p_ids)
        pos[row, :n] = torch.as_tensor(p_pos)
        seg[row, :n] = torch.as_tensor(p_seg)
        plen = data.prompt_len[i]
        rc = len(data.chosen[i]) - plen
        for which, start, length in ((0, plen, rc), (1, plen + rc, len(data.rejected[i]) - plen)):
            if length == 0:
                continue
            sources = torch.arange(start - 1, start + length - 1)
            sources[0] = plen - 1  # a reply's first token follows the prompt, not the other reply
            targets = torch.arange(start, start + length)
            if plen == 0:  # nothing precedes the first token (no prompt, no BOS): as in the unpacked path
                sources, targets = sources[1:], targets[1:]
            src.append(sources + row * t)
            tgt.append(targets + row * t)
            slot.append(torch.full_like(targets, which * b + row))
    empty = torch.zeros(0, dtype=torch.long)
    return {
        "input_ids": ids,
        "position_ids": pos,
        "segments": seg,
        "src": torch.cat(src) if src else empty,
        "tgt": torch.cat(tgt) if tgt else empty,
        "slot": torch.cat(slot) if slot else empty,
    }


def load_policy(checkpoint_or_model: str | Path):
    """(causal LM, tokenizer) from a DPO checkpoint, a model directory or a short name."""
    path = bb.resolve(checkpoint_or_model)
    return bb.load_causal_lm(path), bb.load_tokenizer(path)


class DPOTask(PairSetData, AdapterWeights):
    """DPO / IPO training (see trainer.Task)."""

    kind = "dpo"
    default_metric = "accuracy"
    greater_is_better = True

    def __init__(
        self, cfg, lm: nn.Module, tokenizer, train: TokenizedPairs, eval_pairs: TokenizedPairs | None
    ):
        self.cfg = cfg
        self.model = lm
        self.tokenizer = tokenizer
        self.peft = bb.apply_lora(lm, cfg.lora, causal=True) if cfg.lora else None
        self.share = bool(getattr(cfg, "share_prompt", False)) and lm.config._attn_implementation in (
            "sdpa",
            "eager",
        )
        self.module = PackedPairLogProbs(lm) if self.share else SequenceLogProbs(lm)
        self.train, self.eval = train, eval_pairs
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.ref: dict[str, tuple[Tensor, Tensor]] = {}

    @classmethod
    def build(cls, cfg, examples, eval_examples) -> DPOTask:
        path = bb.resolve(cfg.model)
        lm = bb.load_causal_lm(path)
        tokenizer = bb.load_tokenizer(path)
        kw = {
            "max_length": cfg.max_length,
            "is_encoder": False,
            "max_prompt_length": getattr(cfg, "max_prompt_length", 0),
        }
        train = tokenize_pairs(tokenizer, examples, label_smoothing=cfg.label_smoothing, **kw)
        ev = tokenize_pairs(tokenizer, eval_examples, **kw) if eval_examples else None
        return cls(cfg, lm, tokenizer, train, ev)

    def train_lengths(self) -> list[int]:
        if self.share:
            return [
                len(c) + len(r) - p
                for c, r, p in zip(self.train.chosen, self.train.rejected, self.train.prompt_len, strict=True)
            ]
        return self.train.lengths()

    def _check_packing(self, device) -> None:
        """Packed scoring must equal plain scoring on this architecture; if not, fall back to plain."""
        idx = list(range(min(4, len(self.train))))
        plain, packed = SequenceLogProbs(self.model), PackedPairLogProbs(self.model)
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            a = self._sums(plain, self._batch(self.train, idx, device, with_ref=False, packed=False))[0]
            b = self._sums(packed, self._batch(self.train, idx, device, with_ref=False, packed=True))[0]
        self.model.train(was_training)
        if not torch.allclose(a.float(), b.float(), rtol=1e-3, atol=1e-2):
            warnings.warn(
                f"Packed prompt sharing disagrees with plain scoring on {type(self.model).__name__} "
                f"(max diff {(a - b).abs().max().item():.3g}); scoring each reply separately instead.",
                stacklevel=2,
            )
            self.share = False
            self.module = plain

    # ---- reference log-probs, once
    def prepare(self, device) -> None:
        if self.share:
            self._check_packing(device)
        if self.cfg.reference_model:
            ref_lm = bb.load_causal_lm(bb.resolve(self.cfg.reference_model)).to(device)
            scorer = PackedPairLogProbs(ref_lm) if self.share else SequenceLogProbs(ref_lm)
        else:
            scorer = self.module  # the starting weights are the reference
        self.ref["train"] = self._logps(scorer, self.train, device)
        if self.has_eval():
            self.ref["eval"] = self._logps(scorer, self.eval, device)

    @torch.inference_mode()
    def _logps(self, scorer: nn.Module, data: TokenizedPairs, device) -> tuple[Tensor, Tensor]:
        """(N, 2) sums and (N, 2) counts of log-probs of [chosen, rejected] for every pair."""
        was_training = scorer.training
        scorer.eval()
        sums = torch.zeros(len(data), 2)
        counts = torch.zeros(len(data), 2)
        autocast = _autocast(device, self.cfg)
        for idx in eval_batches(self.cfg, len(data), lengths=data.lengths()):
            b = self._batch(data, idx, device, with_ref=False)
            with autocast():
                s, c = self._sums(scorer, b)
            sums[idx] = torch.stack(s.float().cpu().chunk(2), dim=1)
            counts[idx] = torch.stack(c.float().cpu().chunk(2), dim=1)
        scorer.train(was_training)
        return sums, counts

    # ---- batches and loss
    def _batch(
        self,
        data: TokenizedPairs,
        indices: list[int],
        device,
        *,
        with_ref: bool,
        split: str = "train",
        packed: bool | None = None,
    ):
        if self.share if packed is None else packed:
            batch = {k: v.to(device) for k, v in packed_batch(data, indices, self.pad).items()}
        else:
            seqs = [data.chosen[i] for i in indices] + [data.rejected[i] for i in indices]
            ids, mask = pad_batch(seqs, self.pad)
            plen = torch.tensor([data.prompt_len[i] for i in indices] * 2)
            batch = {
                "input_ids": ids.to(device),  # (2B, T): chosen rows, then rejected rows
                "attention_mask": mask.to(device),
                "resp_mask": response_mask(mask, plen).to(device),
            }
        batch["weight"] = torch.tensor([data.weight[i] for i in indices], device=device)  # (B,)
        batch["smoothing"] = torch.tensor([data.smoothing[i] for i in indices], device=device)
        if with_ref:
            sums, counts = self.ref[split]
            batch["ref"] = sums[indices].to(device)  # (B, 2)
            batch["ref_counts"] = counts[indices].to(device)
        return batch

    def batch(self, indices: list[int], device) -> dict[str, Tensor]:
        return self._batch(self.train, indices, device, with_ref=True)

    @staticmethod
    def _sums(module, batch) -> tuple[Tensor, Tensor]:
        """Summed reply log-probs and reply token counts, (2B,) each, chosen rows first."""
        if "segments" in batch:
            keys = ("input_ids", "position_ids", "segments", "src", "tgt", "slot")
        else:
            keys = ("input_ids", "attention_mask", "resp_mask")
        return module(*(batch[k] for k in keys))

    def _pair_logps(self, module, batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sums, counts = self._sums(module, batch)
        pc, pr = sums.chunk(2)  # (B,), (B,)
        rc, rr = batch["ref"][:, 0], batch["ref"][:, 1]
        if self.cfg.loss_type == "ipo":
            # IPO works on per-token averages (as in the IPO paper and TRL), so length does not dominate.
            cc, cr = counts.chunk(2)
            pc, pr = pc / cc.clamp_min(1), pr / cr.clamp_min(1)
            rc = rc / batch["ref_counts"][:, 0].clamp_min(1)
            rr = rr / batch["ref_counts"][:, 1].clamp_min(1)
        return pc, pr, rc, rr

    def loss(self, module, batch) -> tuple[Tensor, dict[str, float]]:
        pc, pr, rc, rr = self._pair_logps(module, batch)
        beta = self.cfg.beta
        if self.cfg.loss_type == "ipo":
            loss = ipo_loss(
                pc, pr, rc, rr, beta=beta, label_smoothing=batch["smoothing"], weights=batch["weight"]
            )
        else:
            loss = dpo_loss(
                pc, pr, rc, rr, beta=beta, label_smoothing=batch["smoothing"], weights=batch["weight"]
            )
        with torch.no_grad():
            margin = beta * ((pc - rc) - (pr - rr))
        return loss, {"accuracy": (margin > 0).float().mean().item(), "margin": margin.mean().item()}

    def evaluate(self, device, autocast) -> dict[str, float]:
        chosen, rejected, losses = [], [], []
        with torch.inference_mode(), autocast():
            for idx in eval_batches(self.cfg, len(self.eval), lengths=self.eval.lengths()):
                batch = self._batch(self.eval, idx, device, with_ref=True, split="eval")
                pc, pr, rc, rr = self._pair_logps(self.module, batch)
                chosen.append((self.cfg.beta * (pc - rc)).float().cpu())
                rejected.append((self.cfg.beta * (pr - rr)).float().cpu())
                losses.append(self.loss_value(pc, pr, rc, rr) * len(idx))
        c, r = torch.cat(chosen), torch.cat(rejected)
        metrics = pairwise_metrics(c, r)  # on the implicit rewards beta * log(pi / ref)
        metrics["loss"] = sum(losses) / len(self.eval)
        metrics["chosen_reward"] = c.mean().item()
        metrics["rejected_reward"] = r.mean().item()
        return metrics

    def loss_value(self, pc, pr, rc, rr) -> float:
        if self.cfg.loss_type == "ipo":
            return ipo_loss(pc, pr, rc, rr, beta=self.cfg.beta).item()
        return dpo_loss(pc, pr, rc, rr, beta=self.cfg.beta).item()

    # ---- saving
    def _adopt_merged(self, merged: nn.Module) -> None:
        self.model = merged
        self.module.lm = merged

    def save_files(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)
        bb.save_model_config(self.model.config, directory)
        if getattr(self.model, "generation_config", None) is not None:
            self.model.generation_config.save_pretrained(directory)

    def meta(self) -> dict:
        return {"weights_prefix": "", "lora": bool(self.cfg.lora), "loss_type": self.cfg.loss_type}


def _autocast(device, cfg):
    from .trainer import autocast_factory

    return autocast_factory(cfg, device)
