"""Export formats, one module each, behind ``base.Exporter``; look them up with ``get_exporter``."""

from annotation.exporters.base import Exporter, Pair, Vote, WriteOptions, available_formats, get_exporter

__all__ = ["Exporter", "Pair", "Vote", "WriteOptions", "available_formats", "get_exporter"]
