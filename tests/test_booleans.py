"""One reading of boolean words, shared by the settings, the forms and the ML core."""

import pytest

from alignweb.booleans import text_bool


@pytest.mark.parametrize("word", ["true", "1", "yes", "on", " TRUE ", "On"])
def test_it_reads_the_true_words_in_any_case(word):
    assert text_bool(word) is True


@pytest.mark.parametrize("word", ["false", "0", "no", "off", " No "])
def test_it_reads_the_false_words_in_any_case(word):
    assert text_bool(word) is False


@pytest.mark.parametrize("word", ["", "maybe", "2", "truthy"])
def test_anything_else_is_no_boolean(word):
    assert text_bool(word) is None


def test_the_ml_core_reads_hub_offline_with_it(monkeypatch):
    from training.ml.hub import _hub_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", " Yes ")
    assert _hub_offline() is True
    monkeypatch.setenv("HF_HUB_OFFLINE", "off")
    assert _hub_offline() is False
