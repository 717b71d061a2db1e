"""Which API key a model version's endpoint gets: one rule for registration and for every request.

A version does not store its key. It names an environment variable of the workers
(``api_key_env``), and only names that start with the operator's prefix,
``settings.ALIGNWEB_ENDPOINT_KEY_PREFIX`` (``ALIGNWEB_ENDPOINT_KEY_`` unless set), are accepted:
a project admin must not be able to send ``SECRET_KEY``, ``DATABASE_URL`` or any other variable of
the server to an endpoint they control. The operator puts each key in such a variable
(``ALIGNWEB_ENDPOINT_KEY_VLLM=...``) and tells the admin its name. A version that names none gets
the global ``ALIGNWEB_ENDPOINT_API_KEY``, if set, and only when its endpoint's host is one the
operator listed in ``ALIGNWEB_ENDPOINT_ALLOWED_HOSTS``: otherwise a project admin could register
a server of their own and read the global key off its requests.

The name is write-only: no API answer, page or error shows it back, and the key itself never
leaves the worker except in the ``Authorization`` header of that version's requests.
"""

import os
import re

from django.conf import settings

from annotation.services.errors import ValidationFailed
from training.endpoint_guard import endpoint_url_host, host_is_operator_allowed

GLOBAL_KEY_ENV = "ALIGNWEB_ENDPOINT_API_KEY"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


class MissingKey(Exception):
    """The version names a key variable that is not set where it runs (a worker's environment)."""


def key_prefix() -> str:
    return settings.ALIGNWEB_ENDPOINT_KEY_PREFIX


def api_key_env_check(name: str) -> str:
    """``name`` if a version may name it as its key variable, else a 400 on ``api_key_env``."""
    prefix = key_prefix()
    if not (_ENV_NAME.fullmatch(name) and name.startswith(prefix) and len(name) > len(prefix)):
        raise ValidationFailed(
            f"The API key variable must be a name the operator set up: {prefix} followed by "
            "upper-case letters, digits or _.",
            field="api_key_env",
        )
    return name


def api_key_for(api_key_env: str, *, endpoint_url: str) -> str | None:
    """The key a version at ``endpoint_url`` naming ``api_key_env`` ("" for none) sends, or None
    for no key.

    The name is checked again here: a prefix the operator has since changed shuts out names
    registered under the old one.
    """
    if not api_key_env:
        if not host_is_operator_allowed(endpoint_url_host(endpoint_url)):
            return None
        return os.environ.get(GLOBAL_KEY_ENV) or None
    try:
        api_key_env_check(api_key_env)
    except ValidationFailed as refused:
        raise MissingKey(refused.message) from None
    key = os.environ.get(api_key_env)
    if not key:
        # Not the global key instead: that one was not meant for this endpoint.
        raise MissingKey("This version's API key variable is not set on the worker; ask the operator.")
    return key
