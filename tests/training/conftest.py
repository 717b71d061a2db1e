import pytest


@pytest.fixture(autouse=True)
def checkpoint_dir(tmp_path, settings):
    settings.ALIGNWEB_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.ALIGNWEB_CHECKPOINT_DIR
