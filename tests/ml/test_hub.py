import json
import multiprocessing
from pathlib import Path

import pytest

from tests.ml.tiny_models import save_tiny_causal_lm
from training.ml import hub
from training.ml.hub import ModelNotFoundError, model_cache_dir, resolve_model


def test_a_local_model_directory_passes_through(tmp_path):
    model_dir = save_tiny_causal_lm(tmp_path / "tiny")
    assert resolve_model(str(model_dir)) == model_dir.resolve()


def test_it_refuses_a_directory_without_config_json(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_it_refuses_a_file(tmp_path):
    file = tmp_path / "weights.bin"
    file.write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_model(str(file))


def test_it_refuses_an_empty_name():
    with pytest.raises(ModelNotFoundError, match="required"):
        resolve_model("  ")


def test_a_hub_id_is_refused_clearly_when_the_hub_is_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_a_name_that_is_neither_a_path_nor_a_hub_id_lists_the_short_names(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelNotFoundError, match="minilm-l6, smollm2-135m"):
        resolve_model("no-such-model")


def test_the_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNWEB_MODEL_CACHE", str(tmp_path / "models"))
    assert model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv("ALIGNWEB_MODEL_CACHE")
    assert model_cache_dir() == Path.home() / ".cache" / "alignweb" / "models"


def test_a_missing_model_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(
        hub.SHIPPED_MODELS, "ghost", hub.ShippedModel("no_such_package_xyz", "model", "dir", "0")
    )
    with pytest.raises(ModelNotFoundError, match=r"requirements-models\.txt"):
        resolve_model("ghost")


def _fake_convert(source: Path, target: Path) -> None:
    # Stands in for the slow GGUF conversion: same atomic protocol, tiny payload.
    import os
    import tempfile

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    (tmp / "config.json").write_text(json.dumps({"pid": os.getpid()}))
    try:
        os.rename(tmp, target)
    except OSError:
        assert (target / "config.json").is_file()


def test_the_gguf_model_is_converted_once_and_then_read_from_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("ALIGNWEB_MODEL_CACHE", str(tmp_path))
    calls = []

    def convert(source, target):
        calls.append(target)
        _fake_convert(source, target)

    monkeypatch.setattr(hub, "_convert_gguf", convert)
    first = resolve_model("smollm2-135m")
    second = resolve_model("SmolLM2-135M")
    assert first == second == tmp_path / "smollm2-135m-0.1.2"
    assert len(calls) == 1


def _race(cache: str) -> str:
    import os

    os.environ["ALIGNWEB_MODEL_CACHE"] = cache
    hub._convert_gguf = _fake_convert
    return str(resolve_model("smollm2-135m"))


def test_two_processes_converting_at_once_both_end_with_one_complete_model(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_race, [str(tmp_path)] * 2)
    assert results[0] == results[1]
    assert json.loads((Path(results[0]) / "config.json").read_text())["pid"]
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-135m-0.1.2"]  # no temp dirs left behind


def test_a_failed_conversion_leaves_nothing_that_looks_complete(monkeypatch, tmp_path):
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file")
    with pytest.raises(Exception):  # noqa: B017 - whatever the GGUF reader raises
        hub._convert_gguf(gguf, tmp_path / "cache" / "broken")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.integration
@pytest.mark.slow
def test_smollm2_converts_to_a_causal_lm_with_a_chat_template():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("smollm2-135m")
    assert (path / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama"
    assert 130e6 < sum(p.numel() for p in model.parameters()) < 140e6
    assert tokenizer.chat_template


@pytest.mark.integration
def test_minilm_resolves_to_the_packaged_sentence_encoder():
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model("minilm-l6")
    model = AutoModel.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.hidden_size == 384
    assert tokenizer("hello")["input_ids"][0] == tokenizer.cls_token_id
