"""Validate a run's training config against the ML core's dataclasses without importing torch.

``training.ml.config`` holds plain dataclasses (no torch), so the web process may import it; a
test checks that validating a config leaves ``torch`` out of ``sys.modules``.
"""

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
