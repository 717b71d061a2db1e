"""A pytest plugin loaded first (`-p tests.environment`), before Django settings load.

Tests get a fresh random SECRET_KEY per run and never reach a model hub. The API's throttles are
off: they count in the cache, which outlives a test, so one test's requests would throttle the
next; tests/annotation/test_api_throttles.py turns them on with ``override_settings``.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("ALIGNWEB_THROTTLE_ANON", "off")
os.environ.setdefault("ALIGNWEB_THROTTLE_USER", "off")
