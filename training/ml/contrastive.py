"""Contrastive objectives from the design notes.

- `margin_ranking` and `info_nce` train an embedding model (an encoder, mean pooled, L2-normalised):
  a prompt should sit closer to its chosen reply than to the rejected one (margin ranking on cosine
  similarities) or than to every other reply in the batch (InfoNCE with in-batch negatives).
- `contrastive_lm` trains a causal LM so the chosen reply's sequence log-likelihood beats the
  rejected one's, listwise (softmax over one positive and its negatives; one negative per pair).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import backbone as bb
from .objectives import contrastive_lm_loss, info_nce_loss, margin_ranking_loss
from .policy import DPOTask
from .reward import pad_batch, pairwise_metrics, pool
from .task_parts import AdapterWeights, PairSetData, eval_batches
from .tokenization import layout_for, render_conversation


class EmbeddingModel(nn.Module):
    """backbone -> pooled, L2-normalised vectors."""

    def __init__(self, backbone: nn.Module, *, pooling: str):
        super().__init__()
        self.backbone = backbone
        self.pooling = "mean" if pooling == "auto" else pooling

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(N, T) -> (N, D) unit vectors."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask)[0]  # (N, T, H)
        return F.normalize(pool(hidden, attention_mask, self.pooling).float(), dim=-1)


class EmbeddingTask(PairSetData, AdapterWeights):
    """margin_ranking / info_nce on (prompt, chosen, rejected) triples (see trainer.Task)."""

    kind = "contrastive"
    default_metric = "accuracy"
    greater_is_better = True

    def __init__(self, cfg, model: EmbeddingModel, tokenizer, train, eval_triples):
        self.cfg = cfg
        self.model = self.module = model
        self.tokenizer = tokenizer
        self.peft = bb.apply_lora(model.backbone, cfg.lora, causal=False) if cfg.lora else None
        self.train, self.eval = train, eval_triples
        self.pad = tokenizer.pad_token_id or 0

    @classmethod
    def build(cls, cfg, examples, eval_examples) -> EmbeddingTask:
        path = bb.resolve(cfg.model)
        tokenizer = bb.load_tokenizer(path)
        model = EmbeddingModel(bb.load_encoder_or_decoder(path), pooling=cfg.pooling)
        encoder = bb.is_encoder(model.backbone.config)
        train = Triples.build(tokenizer, examples, max_length=cfg.max_length, encoder=encoder)
        ev = Triples.build(tokenizer, eval_examples, max_length=cfg.max_length, encoder=encoder)
        return cls(cfg, model, tokenizer, train, ev if len(ev) else None)

    def _batch(self, data: Triples, indices: list[int], device) -> dict[str, Tensor]:
        seqs = [data.prompt[i] for i in indices] + [data.chosen[i] for i in indices]
        seqs += [data.rejected[i] for i in indices]
        ids, mask = pad_batch(seqs, self.pad)
        return {
            "input_ids": ids.to(device),  # (3B, T): prompts, chosen, rejected
            "attention_mask": mask.to(device),
            "weight": torch.tensor([data.weight[i] for i in indices], device=device),
        }

    def batch(self, indices, device):
        return self._batch(self.train, indices, device)

    def _embed(self, module, batch) -> tuple[Tensor, Tensor, Tensor]:
        return module(batch["input_ids"], batch["attention_mask"]).chunk(3)  # 3 x (B, D)

    def loss(self, module, batch):
        q, c, r = self._embed(module, batch)
        pos, neg = (q * c).sum(-1), (q * r).sum(-1)  # (B,) cosine similarities
        if self.cfg.objective == "margin_ranking":
            loss = margin_ranking_loss(pos, neg, margin=self.cfg.margin, weights=batch["weight"])
        else:
            loss = info_nce_loss(q, torch.cat([c, r]), temperature=self.cfg.temperature)
        return loss, {"accuracy": (pos > neg).float().mean().item()}

    def evaluate(self, device, autocast):
        pos, neg = [], []
        with torch.inference_mode(), autocast():
            for idx in eval_batches(self.cfg, len(self.eval)):
                q, c, r = self._embed(self.model, self._batch(self.eval, idx, device))
                pos.append((q * c).sum(-1).float().cpu())
                neg.append((q * r).sum(-1).float().cpu())
        p, n = torch.cat(pos), torch.cat(neg)
        # Calibration is read on similarities scaled by the temperature, the logits InfoNCE trains.
        metrics = pairwise_metrics(p / self.cfg.temperature, n / self.cfg.temperature)
        metrics["margin"] = (p - n).mean().item()
        return metrics

    def _adopt_merged(self, merged: nn.Module) -> None:
        self.model.backbone = merged

    def save_files(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)
        bb.save_model_config(self.model.backbone.config, directory)

    def meta(self) -> dict:
        return {"weights_prefix": "backbone.", "pooling": self.model.pooling, "objective": self.cfg.objective}


class Triples:
    """Token ids of prompt, chosen and rejected, each encoded on its own (queries and documents)."""

    def __init__(self):
        self.prompt: list[list[int]] = []
        self.chosen: list[list[int]] = []
        self.rejected: list[list[int]] = []
        self.weight: list[float] = []
        self.truncated_examples = 0

    def __len__(self) -> int:
        return len(self.prompt)

    def lengths(self) -> list[int]:
        return [
            max(len(a), len(b), len(c))
            for a, b, c in zip(self.prompt, self.chosen, self.rejected, strict=True)
        ]

    def stats(self) -> dict[str, int]:
        return {"pairs": len(self), "truncated_examples": self.truncated_examples}

    @classmethod
    def build(cls, tokenizer, examples, *, max_length: int, encoder: bool) -> Triples:
        out = cls()
        if not examples:
            return out
        layout = layout_for(tokenizer, is_encoder=encoder)
        head, end = layout.head, (layout.middle or layout.tail)[:1]  # [CLS] text [SEP], or [BOS] text [EOS]
        budget = max_length - len(head) - len(end)
        if budget < 1:
            raise ValueError(f"max_length={max_length} leaves no room for text.")
        texts = []
        for ex in examples:
            prompt = render_conversation(ex.prompt) if isinstance(ex.prompt, list) else ex.prompt
            texts += [prompt, ex.chosen, ex.rejected]
        enc = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        for i, ex in enumerate(examples):
            p, c, r = enc[3 * i], enc[3 * i + 1], enc[3 * i + 2]
            cut = len(p) > budget or len(c) > budget or len(r) > budget
            # Queries keep their end (the latest turn), documents their start.
            out.prompt.append(head + p[max(0, len(p) - budget) :] + end)
            out.chosen.append(head + c[:budget] + end)
            out.rejected.append(head + r[:budget] + end)
            out.weight.append(float(ex.weight))
            out.truncated_examples += cut
        return out


class ContrastiveLMTask(DPOTask):
    """Listwise contrastive LM loss on sequence log-likelihoods; no reference model involved."""

    kind = "contrastive"

    def prepare(self, device) -> None:
        if self.share:
            self._check_packing(device)
        n = len(self.train)
        self.ref["train"] = (torch.zeros(n, 2), torch.ones(n, 2))
        if self.has_eval():
            self.ref["eval"] = (torch.zeros(len(self.eval), 2), torch.ones(len(self.eval), 2))

    def loss(self, module, batch):
        sums, _ = self._sums(module, batch)
        logps = torch.stack(sums.chunk(2), dim=1)  # (B, 1 + K) with K = 1: [chosen, rejected]
        loss = contrastive_lm_loss(logps, weights=batch["weight"])
        return loss, {"accuracy": (logps[:, 0] > logps[:, 1]).float().mean().item()}

    def evaluate(self, device, autocast):
        chosen, rejected = [], []
        with torch.inference_mode(), autocast():
            for idx in eval_batches(self.cfg, len(self.eval)):
                b = self._batch(self.eval, idx, device, with_ref=False)
                sums, _ = self._sums(self.module, b)
                c, r = sums.float().cpu().chunk(2)
                chosen.append(c)
                rejected.append(r)
        c, r = torch.cat(chosen), torch.cat(rejected)
        metrics = pairwise_metrics(c, r)
        metrics["loss"] = contrastive_lm_loss(torch.stack([c, r], 1)).item()
        return metrics

    def meta(self) -> dict:
        return {"weights_prefix": "", "lora": bool(self.cfg.lora), "objective": "contrastive_lm"}


class ContrastiveTask:
    """Picks the task for cfg.objective."""

    @staticmethod
    def build(cfg, examples, eval_examples):
        if cfg.objective == "contrastive_lm":
            return ContrastiveLMTask.build(cfg, examples, eval_examples)
        return EmbeddingTask.build(cfg, examples, eval_examples)
