"""Import formats, one module per format. Adding a format is adding a module here that
subclasses ``base.Format`` and decorates it with ``@register``: every module in this package is
imported once, below, so the registry knows it."""

import importlib
import pkgutil

from annotation.importers.base import FORMATS, Format

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")


def get_format(name: str) -> Format:
    """An instance of the format called ``name``; KeyError names the known ones."""
    try:
        return FORMATS[name]()
    except KeyError:
        raise KeyError(f"Unknown import format {name!r}; known: {', '.join(sorted(FORMATS))}.") from None


def format_choices() -> list[tuple[str, str]]:
    return [(name, FORMATS[name].label) for name in sorted(FORMATS)]
