"""Scalar reward models on any transformers backbone, plus the pairwise evaluation metrics.

Encoders (BERT, MiniLM) pool their token states (mean by default, the way sentence-transformers
trained MiniLM; or [CLS]); decoders read the state of the last non-pad token. A linear head turns
the pooled vector into one number. Chosen and rejected replies go through the backbone in one
forward pass: the batch is [chosen_1..chosen_B, rejected_1..rejected_B].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from . import backbone as bb
from . import length_chunks
from .checkpoints import read_json
from .data import Message
from .objectives import bradley_terry_loss
from .task_parts import AdapterWeights, PairSetData, eval_batches
from .tokenization import TokenizedPairs, tokenize_pairs, tokenize_scoring


def pool(hidden: Tensor, attention_mask: Tensor, how: str) -> Tensor:
    """hidden: (N, T, H), attention_mask: (N, T) right-padded -> (N, H)."""
    if how == "cls":
        return hidden[:, 0]
    if how == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (N, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    if how == "last":
        last = attention_mask.sum(1) - 1  # (N,)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"Unknown pooling {how!r}.")


class RewardModel(nn.Module):
    """backbone -> pooled vector -> linear head -> one reward per sequence."""

    def __init__(self, backbone: nn.Module, *, pooling: str, encoder: bool):
        super().__init__()
        self.backbone = backbone
        self.encoder = encoder
        self.pooling = ("mean" if encoder else "last") if pooling == "auto" else pooling
        hidden = backbone.config.hidden_size
        self.head = nn.Linear(hidden, 1)
        nn.init.normal_(self.head.weight, std=1 / math.sqrt(hidden + 1))
        nn.init.zeros_(self.head.bias)
        self.tokenizer = None  # attached by `load` / the trainer, for `score`
        self.max_length = 512
        self.split_by_length = True  # see forward

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """input_ids, attention_mask: (N, T) right-padded -> rewards (N,).

        On CPU the rows go through the backbone in length-sorted chunks, each padded only to its own
        longest row (see length_chunks): the same rewards, with most of the padding's work skipped.
        """
        if not (self.split_by_length and input_ids.device.type == "cpu" and input_ids.shape[0] > 1):
            return self._score_block(attention_mask, input_ids=input_ids)
        lengths = attention_mask.sum(1).tolist()  # (N,); right padding, as pad_batch makes
        chunks = length_chunks.plan(lengths, overhead=length_chunks.CPU_OVERHEAD_TOKENS)
        if len(chunks) == 1:
            width = max(lengths)
            return self._score_block(attention_mask[:, :width], input_ids=input_ids[:, :width])
        blocks = [(torch.tensor(rows), max(lengths[i] for i in rows)) for rows in chunks]
        # One embedding lookup for all chunks: each lookup's backward writes a dense gradient as big
        # as the vocabulary table, which would otherwise be paid once per chunk.
        ids = torch.cat([input_ids[index, :width].reshape(-1) for index, width in blocks])
        vectors = self.backbone.get_input_embeddings()(ids).split([len(i) * w for i, w in blocks])
        parts = []
        for (index, width), v in zip(blocks, vectors, strict=True):
            embeds = v.view(len(index), width, -1)  # (rows, width, H)
            parts.append(self._score_block(attention_mask[index, :width], inputs_embeds=embeds))
        order = torch.tensor([i for rows in chunks for i in rows])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order))
        return torch.cat(parts)[inverse]  # (N,), back in the batch's row order

    def _score_block(self, attention_mask: Tensor, **inputs: Tensor) -> Tensor:
        """Rewards of one padded block, given its input_ids or its inputs_embeds."""
        return self.head(self.pooled(attention_mask, **inputs)).squeeze(-1).float()

    def pooled(self, attention_mask: Tensor, **inputs: Tensor) -> Tensor:
        """The vectors the head sees, (N, H) in the head's dtype, for one right-padded block given
        its input_ids or its inputs_embeds: reward = head(pooled)."""
        out = self.backbone(attention_mask=attention_mask, **inputs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (N, T, H)
        return pool(hidden, attention_mask, self.pooling).to(self.head.weight.dtype)  # (N, H)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, pooling: str = "auto") -> RewardModel:
        """A fresh head on a base model, or a trained reward model when given our checkpoint."""
        path = bb.resolve(name_or_path)
        if bb.is_checkpoint(path) and read_json(path / "checkpoint.json").get("kind") == "reward_model":
            return cls.load(path)
        config = bb.load_model_config(path)
        model = cls(bb.load_encoder_or_decoder(path), pooling=pooling, encoder=bb.is_encoder(config))
        model.tokenizer = bb.load_tokenizer(path)
        return model

    @classmethod
    def load(cls, checkpoint_dir: str | Path) -> RewardModel:
        """Rebuild a trained reward model from a checkpoint directory (safetensors + JSON only)."""
        path = Path(checkpoint_dir)
        meta = read_json(path / "checkpoint.json")
        if meta.get("kind") != "reward_model":
            raise ValueError(f"{path} holds a {meta.get('kind')!r} checkpoint, not a reward model.")
        config = bb.load_model_config(path)
        backbone = bb.AutoModel.from_config(config, dtype=torch.float32)
        bb._drop_pooler(backbone)
        model = cls(backbone, pooling=meta["pooling"], encoder=bb.is_encoder(config))
        model.load_state_dict(bb.load_tensors(path / bb.WEIGHTS_FILE), strict=True)
        model.tokenizer = bb.load_tokenizer(path)
        model.max_length = int(read_json(path / "config.json").get("max_length", 512))
        return model.eval()

    @torch.inference_mode()
    def score(
        self, prompt: str | list[Message], responses: Sequence[str], *, batch_size: int = 32
    ) -> list[float]:
        """Rewards of several responses to one prompt, batched."""
        if self.tokenizer is None:
            raise RuntimeError("This reward model has no tokenizer attached; build it with load().")
        ids = tokenize_scoring(
            self.tokenizer, prompt, list(responses), max_length=self.max_length, is_encoder=self.encoder
        )
        device = self.head.weight.device
        pad = self.tokenizer.pad_token_id or 0
        scores: list[float] = []
        for start in range(0, len(ids), batch_size):
            input_ids, mask = pad_batch(ids[start : start + batch_size], pad)
            scores.extend(self(input_ids.to(device), mask.to(device)).tolist())
        return scores


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest sequence: (N, T) ids and (N, T) mask."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


def pairwise_metrics(chosen: Tensor, rejected: Tensor, *, bins: int = 10) -> dict[str, float]:
    """Accuracy, mean margin and expected calibration error of P(chosen > rejected) = sigma(r_c - r_r).

    chosen, rejected: (B,). A pair whose rewards are equal counts as half right. ECE uses the
    confidence of the predicted side, max(p, 1 - p), in `bins` equal bins over [0.5, 1].
    """
    if chosen.numel() == 0:
        return {"accuracy": float("nan"), "margin": float("nan"), "ece": float("nan"), "pairs": 0}
    diff = (chosen - rejected).double()  # (B,)
    correct = (diff > 0).double() + 0.5 * (diff == 0).double()  # (B,)
    p = torch.sigmoid(diff)
    conf = torch.maximum(p, 1 - p)  # (B,)
    idx = ((conf - 0.5) * 2 * bins).long().clamp(0, bins - 1)  # (B,)
    ece = torch.zeros((), dtype=torch.double)
    for b in range(bins):
        sel = idx == b
        if sel.any():
            ece += sel.double().mean() * (correct[sel].mean() - conf[sel].mean()).abs()
    return {
        "accuracy": correct.mean().item(),
        "margin": diff.mean().item(),
        "ece": ece.item(),
        "pairs": int(chosen.numel()),
    }


# ---------------------------------------------------------------------------------------- training


class RewardTask(PairSetData, AdapterWeights):
    """Bradley-Terry training of a RewardModel (see trainer.Task)."""

    kind = "reward_model"
    default_metric = "accuracy"
    greater_is_better = True

    def __init__(
        self, cfg, train: TokenizedPairs | None, eval_pairs: TokenizedPairs | None, model: RewardModel
    ):
        self.cfg = cfg
        self.model = self.module = model
        self.train, self.eval = train, eval_pairs
        self.pad = model.tokenizer.pad_token_id or 0
        self.peft = bb.apply_lora(model.backbone, cfg.lora, causal=False) if cfg.lora else None

    @classmethod
    def build(cls, cfg, examples, eval_examples) -> RewardTask:
        model = RewardModel.from_pretrained(cfg.model, pooling=cfg.pooling)
        model.max_length = cfg.max_length
        model.split_by_length = cfg.split_by_length
        kw = {"max_length": cfg.max_length, "is_encoder": model.encoder, "use_margin": cfg.use_margin}
        train = tokenize_pairs(model.tokenizer, examples, label_smoothing=cfg.label_smoothing, **kw)
        ev = tokenize_pairs(model.tokenizer, eval_examples, **kw) if eval_examples else None
        return cls(cfg, train, ev, model)

    def _batch(self, data: TokenizedPairs, indices: list[int], device) -> dict[str, Tensor]:
        ids, mask = pad_batch(
            [data.chosen[i] for i in indices] + [data.rejected[i] for i in indices], self.pad
        )
        return {
            "input_ids": ids.to(device),  # (2B, T): chosen rows, then rejected rows
            "attention_mask": mask.to(device),
            "margin": torch.tensor([data.margin[i] for i in indices], device=device),  # (B,)
            "weight": torch.tensor([data.weight[i] for i in indices], device=device),
            "smoothing": torch.tensor([data.smoothing[i] for i in indices], device=device),
        }

    def batch(self, indices: list[int], device) -> dict[str, Tensor]:
        return self._batch(self.train, indices, device)

    def _rewards(self, module, batch) -> tuple[Tensor, Tensor]:
        return module(batch["input_ids"], batch["attention_mask"]).chunk(2)  # (B,), (B,)

    def loss(self, module, batch) -> tuple[Tensor, dict[str, float]]:
        chosen, rejected = self._rewards(module, batch)
        loss = bradley_terry_loss(
            chosen,
            rejected,
            margin=batch["margin"],
            label_smoothing=batch["smoothing"],
            weights=batch["weight"],
        )
        if self.cfg.center_rewards_coefficient:
            loss = loss + self.cfg.center_rewards_coefficient * ((chosen + rejected) ** 2).mean()
        return loss, {"accuracy": (chosen > rejected).float().mean().item()}

    def evaluate(self, device, autocast) -> dict[str, float]:
        chosen, rejected = [], []
        with torch.inference_mode(), autocast():
            for idx in eval_batches(self.cfg, len(self.eval), lengths=self.eval.lengths()):
                c, r = self._rewards(self.model, self._batch(self.eval, idx, device))
                chosen.append(c.float().cpu())
                rejected.append(r.float().cpu())
        c, r = torch.cat(chosen), torch.cat(rejected)
        metrics = pairwise_metrics(c, r)
        metrics["loss"] = bradley_terry_loss(c, r).item()
        return metrics

    def _adopt_merged(self, merged: nn.Module) -> None:
        self.model.backbone = merged

    def save_files(self, directory: Path) -> None:
        self.model.tokenizer.save_pretrained(directory)
        bb.save_model_config(self.model.backbone.config, directory)

    def meta(self) -> dict:
        return {
            "pooling": self.model.pooling,
            "encoder": self.model.encoder,
            "weights_prefix": "backbone.",
            "lora": bool(self.cfg.lora),
        }
