import pytest


@pytest.fixture(autouse=True)
def checkpoint_dir(tmp_path, settings):
    settings.ALIGNWEB_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.ALIGNWEB_CHECKPOINT_DIR


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from tests.ml.conftest import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("loop-tiny-bert"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    from tests.ml.conftest import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("loop-tiny-llama"))
