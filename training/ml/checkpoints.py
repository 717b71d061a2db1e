"""Checkpoints that describe themselves and never hold pickles.

A checkpoint is a directory:

    model.safetensors        weights (all of them, or only the trainable ones for LoRA step checkpoints)
    model_config.json        the backbone's transformers config (to rebuild the architecture)
    config.json              the training config
    checkpoint.json          kind, step, metrics, lineage, base model; written last ("complete": true)
    tokenizer files
    optimizer.safetensors + optimizer.json, trainer_state.json (scheduler, RNG, early stopping)

It is written into a hidden temporary directory next to its final place, every file is fsynced,
and only then is the directory renamed into place (rename is atomic on one filesystem). A crash
leaves at worst a `.tmp-*` directory, which `latest_checkpoint` ignores and `remove_stale_temp`
deletes; a directory counts only when its checkpoint.json says it is complete.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

CHECKPOINT_FILE = "checkpoint.json"
LATEST_FILE = "LATEST"
FINAL_NAME = "final"
BEST_PREFIX = "best-"  # with early stopping: the weights of the best evaluation so far, per step
TMP_PREFIX = ".tmp-"


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or inconsistent."""


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def best_name(step: int) -> str:
    return f"{BEST_PREFIX}{step:08d}"


def prune_best(output_dir: Path, keep_steps: set[int | None]) -> None:
    """Remove the best-so-far copies but those of `keep_steps`."""
    keep = {best_name(step) for step in keep_steps if step is not None}
    for d in Path(output_dir).glob(f"{BEST_PREFIX}*"):
        if d.is_dir() and d.name not in keep:
            shutil.rmtree(d, ignore_errors=True)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_checkpoint(
    output_dir: Path, name: str, fill: Callable[[Path], None], meta: dict[str, Any], *, latest: bool = True
) -> Path:
    """Write a checkpoint atomically: `fill(tmp_dir)` writes the files, then meta goes in last. With
    `latest`, the run's LATEST pointer moves to it (the best-so-far copy is written without)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        fill(tmp)
        write_json(tmp / CHECKPOINT_FILE, {**meta, "complete": True})
        for f in tmp.rglob("*"):
            if f.is_file():
                _fsync_path(f)
        _fsync_path(tmp)
        final = output_dir / name
        old = None
        if final.exists():
            # A directory cannot be renamed over a non-empty one: move the old aside first. Until the
            # rename below lands, `latest_checkpoint` still finds the previous complete step dirs.
            old = output_dir / f"{TMP_PREFIX}old-{name}-{uuid.uuid4().hex[:8]}"
            final.rename(old)
        tmp.rename(final)
        _fsync_path(output_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if latest:
        _write_pointer(output_dir, name)
    return final


def _write_pointer(output_dir: Path, name: str) -> None:
    tmp = output_dir / f"{TMP_PREFIX}{LATEST_FILE}-{uuid.uuid4().hex[:8]}"
    tmp.write_text(name + "\n", encoding="utf-8")
    _fsync_path(tmp)
    os.replace(tmp, output_dir / LATEST_FILE)
    _fsync_path(output_dir)


def is_complete(path: Path) -> bool:
    meta = path / CHECKPOINT_FILE
    if path.name.startswith(TMP_PREFIX) or not meta.is_file():
        return False
    try:
        return bool(read_json(meta).get("complete"))
    except (OSError, ValueError):
        return False


def read_meta(path: Path) -> dict[str, Any]:
    if not is_complete(Path(path)):
        raise CheckpointError(f"{path} is not a complete checkpoint (no checkpoint.json marked complete).")
    return read_json(Path(path) / CHECKPOINT_FILE)


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint (the final one wins over step checkpoints of the same run)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    final = output_dir / FINAL_NAME
    if is_complete(final):
        return final
    best, best_step = None, -1
    for d in output_dir.glob("step-*"):
        if d.is_dir() and is_complete(d):
            step = int(read_json(d / CHECKPOINT_FILE).get("step", -1))
            if step > best_step:
                best, best_step = d, step
    return best


def remove_stale_temp(output_dir: Path) -> None:
    for d in Path(output_dir).glob(f"{TMP_PREFIX}*"):
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
        else:
            d.unlink(missing_ok=True)


def prune_step_checkpoints(output_dir: Path, keep: int) -> None:
    steps = sorted(
        (d for d in Path(output_dir).glob("step-*") if d.is_dir()),
        key=lambda d: d.name,
    )
    for d in steps[: max(0, len(steps) - keep)]:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------- weights & state


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """safetensors refuses tensors that share memory (tied embeddings): store each once, contiguous."""
    seen: dict[tuple[int, int], str] = {}
    out, aliases = {}, {}
    for k, t in tensors.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if key in seen and tuple(tensors[seen[key]].shape) == tuple(t.shape):
            aliases[k] = seen[key]
            continue
        seen[key] = k
        out[k] = t.detach().to("cpu").contiguous()
    save_file(out, str(path), metadata={"aliases": json.dumps(aliases)})


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        aliases = json.loads((fh.metadata() or {}).get("aliases", "{}"))
    tensors = load_file(str(path))
    for k, target in aliases.items():
        tensors[k] = tensors[target]
    return tensors


def save_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    """Optimizer state as safetensors (tensors) + JSON (hyper-parameters and scalars)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, pstate in state["state"].items():
        for key, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    save_file(tensors, str(directory / "optimizer.safetensors"))
    write_json(directory / "optimizer.json", {"param_groups": state["param_groups"], "scalars": scalars})


def load_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    meta = read_json(directory / "optimizer.json")
    tensors = load_file(str(directory / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    # JSON turned tuples (betas) into lists; the optimizer compares and unpacks them as tuples.
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """RNG states split into tensors (torch CPU/CUDA) and JSON (Python's random)."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], data: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda_keys = sorted((k for k in tensors if k.startswith("torch_cuda_")), key=lambda k: int(k[11:]))
    cuda = [tensors[k] for k in cuda_keys]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = data["python"]
    random.setstate((version, tuple(internal), gauss))
