"""Browser tests use the session-wide chromium, page and artifacts fixtures of tests/conftest.py."""
