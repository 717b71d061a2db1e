"""A failed job shows its user the exception's type and message; the traceback goes to the log."""

import logging

import pytest

from alignweb.errors import MAX_MESSAGE_CHARS, user_error_text


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as error:
        return error


def test_it_names_the_type_and_the_message_without_a_traceback(caplog):
    with caplog.at_level(logging.ERROR, logger="alignweb.jobs"):
        text = user_error_text(raised(ValueError("learning rate must be positive")))

    assert text == "ValueError: learning rate must be positive"
    assert "Traceback" in caplog.text and "test_errors.py" in caplog.text


def test_it_hides_where_server_files_live():
    path = "/work/main/var/runs/7/checkpoint-3/model.safetensors"
    error = raised(FileNotFoundError(2, "No such file", path))

    text = user_error_text(error)

    assert "model.safetensors" in text
    assert "/work" not in text and "var/runs" not in text


def test_it_keeps_a_url_whole():
    text = user_error_text(raised(ConnectionError("cannot reach http://sampler:8000/v1/generate")))

    assert "http://sampler:8000/v1/generate" in text


@pytest.mark.parametrize("message", ["", "line one\nline two", "x" * 5000])
def test_it_is_one_short_line(message):
    text = user_error_text(raised(RuntimeError(message)))

    assert "\n" not in text and text.startswith("RuntimeError")
    assert len(text) <= MAX_MESSAGE_CHARS + len("RuntimeError: ")
