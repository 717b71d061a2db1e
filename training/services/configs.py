"""Validate a run's training config against the ML core's dataclasses without importing torch.

``training.ml.config`` holds plain dataclasses (no torch), so the web process may import it; a
test checks that validating a config leaves ``torch`` out of ``sys.modules``.
"""

import json

from annotation.services.errors import ValidationFailed
from training.models import RunKind


def run_config_validate(*, kind: str, config: dict) -> dict:
    """The config as the ML core normalises it (defaults filled in), or ValidationFailed."""
    if kind not in RunKind.values:
        raise ValidationFailed(
            f"Unknown run kind {kind!r}; use one of {', '.join(RunKind.values)}.", field="kind"
        )
    if not isinstance(config, dict):
        raise ValidationFailed("The config must be a JSON object.", field="config")
    from training.ml.config import ConfigError, config_from_dict

    try:
        return config_from_dict(kind, config).to_dict()
    except ConfigError as error:
        raise ValidationFailed(str(error), field="config") from None


# Config fields the server fills in itself; the run form lists them as such.
SERVER_SET_FIELDS = {"reward_model": "Set by the server: the project's active scorer."}


def run_config_fields(*, kind: str) -> dict[str, list[dict]]:
    """The fields of ``kind``'s config for the run form, from the ML core's dataclasses:
    ``{"method": [...], "common": [...]}``, where ``method`` holds the fields the method adds or
    gives its own default, and ``common`` those every trainer shares. Each field is a dict of name,
    type, default (as JSON would write it), help and, for server-set fields, ``server_set``."""
    from training.ml.config import CONFIG_CLASSES, TrainingConfig

    if kind not in CONFIG_CLASSES:
        raise ValidationFailed(f"Unknown run kind {kind!r}.", field="kind")
    shared = {doc["name"]: doc["default"] for doc in TrainingConfig.field_docs()}
    out: dict[str, list[dict]] = {"method": [], "common": []}
    for doc in CONFIG_CLASSES[kind].field_docs():
        doc = {**doc, "default": json.dumps(doc["default"])}
        if doc["name"] in SERVER_SET_FIELDS:
            doc["server_set"] = SERVER_SET_FIELDS[doc["name"]]
        own = doc["name"] not in shared or json.dumps(shared[doc["name"]]) != doc["default"]
        out["method" if own else "common"].append(doc)
    return out
