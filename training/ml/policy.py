"""DPO and IPO on a causal LM against a frozen reference.

The reference is the starting model (or `reference_model`): its log-probabilities of every chosen and
rejected reply are computed ONCE, before the first step, so no second model sits in memory and no
reference forward pass is repeated per epoch. Sequence log-probs run the LM head only on response
positions, never on the prompt (the vocabulary projection is the largest matmul of a small LM).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from . import backbone as bb
from .objectives import dpo_loss, ipo_loss
from .reward import pad_batch, pairwise_metrics
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


def load_policy(checkpoint_or_model: str | Path):
    """(causal LM, tokenizer) from a DPO checkpoint, a model directory or a short name."""
    path = bb.resolve(checkpoint_or_model)
    return bb.load_causal_lm(path), bb.load_tokenizer(path)


class DPOTask:
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
        self.module = SequenceLogProbs(lm)
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

    def train_size(self) -> int:
        return len(self.train)

    def train_lengths(self) -> list[int]:
        return self.train.lengths()

    def has_eval(self) -> bool:
        return bool(self.eval and len(self.eval))

    # ---- reference log-probs, once
    def prepare(self, device) -> None:
        if self.cfg.reference_model:
            ref_lm = bb.load_causal_lm(bb.resolve(self.cfg.reference_model)).to(device)
            scorer = SequenceLogProbs(ref_lm)
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
        bs = self.cfg.eval_batch_size or 2 * self.cfg.batch_size
        lengths = data.lengths()
        order = sorted(range(len(data)), key=lengths.__getitem__)
        sums = torch.zeros(len(data), 2)
        counts = torch.zeros(len(data), 2)
        autocast = _autocast(device, self.cfg)
        for start in range(0, len(order), bs):
            idx = order[start : start + bs]
            b = self._batch(data, idx, device, with_ref=False)
            with autocast():
                s, c = scorer(b["input_ids"], b["attention_mask"], b["resp_mask"])
            sums[idx] = torch.stack(s.float().cpu().chunk(2), dim=1)
            counts[idx] = torch.stack(c.float().cpu().chunk(2), dim=1)
        scorer.train(was_training)
        return sums, counts

    # ---- batches and loss
    def _batch(
        self, data: TokenizedPairs, indices: list[int], device, *, with_ref: bool, split: str = "train"
    ):
        ids, mask = pad_batch(
            [data.chosen[i] for i in indices] + [data.rejected[i] for i in indices], self.pad
        )
        plen = torch.tensor([data.prompt_len[i] for i in indices] * 2)
        batch = {
            "input_ids": ids.to(device),  # (2B, T): chosen rows, then rejected rows
            "attention_mask": mask.to(device),
            "resp_mask": response_mask(mask, plen).to(device),
            "weight": torch.tensor([data.weight[i] for i in indices], device=device),  # (B,)
            "smoothing": torch.tensor([data.smoothing[i] for i in indices], device=device),
        }
        if with_ref:
            sums, counts = self.ref[split]
            batch["ref"] = sums[indices].to(device)  # (B, 2)
            batch["ref_counts"] = counts[indices].to(device)
        return batch

    def batch(self, indices: list[int], device) -> dict[str, Tensor]:
        return self._batch(self.train, indices, device, with_ref=True)

    def _pair_logps(self, module, batch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        sums, counts = module(batch["input_ids"], batch["attention_mask"], batch["resp_mask"])
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
            loss = ipo_loss(pc, pr, rc, rr, beta=beta, weights=batch["weight"])
        else:
            loss = dpo_loss(
                pc, pr, rc, rr, beta=beta, label_smoothing=batch["smoothing"], weights=batch["weight"]
            )
        with torch.no_grad():
            margin = beta * ((pc - rc) - (pr - rr))
        return loss, {"accuracy": (margin > 0).float().mean().item(), "margin": margin.mean().item()}

    def evaluate(self, device, autocast) -> dict[str, float]:
        chosen, rejected, losses = [], [], []
        bs = self.cfg.eval_batch_size or 2 * self.cfg.batch_size
        lengths = self.eval.lengths()
        order = sorted(range(len(self.eval)), key=lengths.__getitem__)
        with torch.inference_mode(), autocast():
            for start in range(0, len(order), bs):
                idx = order[start : start + bs]
                batch = self._batch(self.eval, idx, device, with_ref=True, split="eval")
                pc, pr, rc, rr = self._pair_logps(self.module, batch)
                chosen.append((self.cfg.beta * (pc - rc)).float().cpu())
                rejected.append((self.cfg.beta * (pr - rr)).float().cpu())
                losses.append(self.loss_value(pc, pr, rc, rr) * len(idx))
        c, r = torch.cat(chosen), torch.cat(rejected)
        metrics = pairwise_metrics(c, r)  # on the implicit rewards beta * log(pi / ref)
        metrics["loss"] = sum(losses) / len(order)
        metrics["chosen_reward"] = c.mean().item()
        metrics["rejected_reward"] = r.mean().item()
        return metrics

    def loss_value(self, pc, pr, rc, rr) -> float:
        if self.cfg.loss_type == "ipo":
            return ipo_loss(pc, pr, rc, rr, beta=self.cfg.beta).item()
        return dpo_loss(pc, pr, rc, rr, beta=self.cfg.beta).item()

    # ---- saving
    def weights(self, *, final: bool) -> dict[str, Tensor]:
        if self.peft is None:
            return self.model.state_dict()
        if final:
            self.model = self.peft.merge_and_unload()
            self.module.lm = self.model
            self.peft = None
            return self.model.state_dict()
        return bb.trainable_state(self.model)

    def load_weights(self, tensors: dict[str, Tensor]) -> None:
        if self.peft is None:
            self.model.load_state_dict(tensors, strict=True)
        else:
            bb.load_partial_state(self.model, tensors)

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
