"""Load a transformers backbone and its tokenizer from a short name, a directory or one of our checkpoints.

Our checkpoints keep the training config in `config.json`, so the backbone's own config lives in
`model_config.json`; everything here hides that difference from the trainers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

from .checkpoints import CHECKPOINT_FILE, load_tensors, read_json

MODEL_CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "model.safetensors"


def is_checkpoint(path: Path) -> bool:
    return (path / CHECKPOINT_FILE).is_file() and (path / MODEL_CONFIG_FILE).is_file()


def resolve(name_or_path: str | Path) -> Path:
    """A local directory for `name_or_path`: our checkpoint, a hub/short name via hub.py, or a path."""
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir() and is_checkpoint(path):
        return path
    if importlib.util.find_spec("training.ml.hub") is not None:
        from .hub import resolve_model

        return Path(resolve_model(str(name_or_path)))
    if not path.is_dir():
        raise FileNotFoundError(f"{name_or_path} is not a model directory.")
    return path


def load_model_config(path: Path) -> PretrainedConfig:
    if is_checkpoint(path):
        data = read_json(path / MODEL_CONFIG_FILE)
        return AutoConfig.for_model(data.pop("model_type"), **data)
    return AutoConfig.from_pretrained(path)


def save_model_config(config: PretrainedConfig, directory: Path) -> None:
    (directory / MODEL_CONFIG_FILE).write_text(config.to_json_string(use_diff=False), encoding="utf-8")


def load_tokenizer(path: Path):
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token_id is None:
        # Decoders often ship without a pad token; padding is masked out, so EOS serves.
        tok.pad_token = tok.eos_token
    return tok


def is_encoder(config: PretrainedConfig) -> bool:
    """Bidirectional encoders (BERT-like) vs causal decoders."""
    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)


def _from_checkpoint(path: Path, auto_cls, prefix: str) -> torch.nn.Module:
    meta = read_json(path / CHECKPOINT_FILE)
    if meta.get("lora") and not meta.get("final"):
        raise ValueError(
            f"{path} is a LoRA step checkpoint (adapters only, for resuming); start from a final one."
        )
    config = load_model_config(path)
    model = auto_cls.from_config(config, dtype=torch.float32)
    _drop_pooler(model)
    state = load_tensors(path / WEIGHTS_FILE)
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    model.load_state_dict(state, strict=True)
    return model


def _drop_pooler(model: torch.nn.Module) -> None:
    # BERT's pooler is never used by our heads; an unused parameter would also upset DDP.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None


def load_encoder_or_decoder(path: Path) -> torch.nn.Module:
    """The bare backbone (hidden states out), in fp32."""
    if is_checkpoint(path):
        kind = read_json(path / CHECKPOINT_FILE).get("weights_prefix", "")
        return _from_checkpoint(path, AutoModel, kind)
    model = AutoModel.from_pretrained(path, dtype=torch.float32)
    _drop_pooler(model)
    return model


def load_causal_lm(path: Path) -> torch.nn.Module:
    if is_checkpoint(path):
        meta = read_json(path / CHECKPOINT_FILE)
        if meta.get("weights_prefix"):
            raise ValueError(f"{path} holds a {meta.get('kind')} checkpoint, not a causal language model.")
        return _from_checkpoint(path, AutoModelForCausalLM, "")
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)


def apply_lora(model: torch.nn.Module, spec: bool | dict, *, causal: bool):
    """Inject LoRA adapters into `model` in place (peft freezes the rest); returns the PeftModel."""
    from peft import LoraConfig, TaskType, get_peft_model

    options = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}
    if isinstance(spec, dict):
        options.update(spec)
    config = LoraConfig(task_type=TaskType.CAUSAL_LM if causal else None, **options)
    return get_peft_model(model, config)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in model.state_dict().items() if k in names}


def load_partial_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load a trainable-only state dict, insisting that every trainable weight is in it."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable - set(tensors))
    if missing:
        raise ValueError(f"Checkpoint lacks trainable weights: {', '.join(missing[:5])}...")
    unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
    if unexpected:
        raise ValueError(f"Checkpoint has weights this model lacks: {', '.join(unexpected[:5])}...")


def disable_dropout(model: torch.nn.Module) -> None:
    """Zero every dropout: modules, and the float rates some attention layers read at call time."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for attr in ("attention_dropout", "dropout"):
            if isinstance(getattr(module, attr, None), float):
                setattr(module, attr, 0.0)
