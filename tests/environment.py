"""A pytest plugin loaded first (`-p tests.environment`), before Django settings load.

Tests get a fresh random SECRET_KEY per run and never reach a model hub.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("STATIC_MANIFEST", "false")
