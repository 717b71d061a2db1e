"""Writing an export: one database snapshot streamed through a format plugin into a file,
atomically (a temporary file renamed over the target), hashed on the way."""

import hashlib
import io
import os
import tempfile
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

from django.db import connection, transaction

from annotation.exporters import get_exporter
from annotation.models import Project
from annotation.services.exports.options import ExportOptions
from annotation.services.exports.pairs import export_pairs

SORT_MEMORY = "128MB"  # PostgreSQL work_mem for the export's sorts (per sort, server side)


def export_write(*, project: Project, options: ExportOptions, out: BinaryIO) -> int:
    """Stream the export into ``out``; return the rows written. Reads one database snapshot."""
    exporter = get_exporter(options.format)
    outer = connection.in_atomic_block  # a caller's (or a test's) transaction has run queries already
    with transaction.atomic():
        with connection.cursor() as cursor:
            if not outer:
                # Every read (version names, user names, the rows) then sees the same committed data.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # Plan for the whole result, not its first rows (an export reads every row); JIT
            # compiling a plan this size costs seconds and saves less than it costs here; the one
            # sort of the COPY source fits in memory with a larger work_mem.
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
        # Closed before the transaction ends, even when the exporter fails half way: an open COPY
        # holds the connection, and the rollback would wait for it forever.
        with closing(export_pairs(project=project, options=options)) as pairs:
            return exporter.write(pairs, out, options.write_options)


class _HashingFile(io.RawIOBase):
    """Writes through to a file and hashes the bytes on the way, so the content hash costs no
    second read of a file that may be gigabytes."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.digest.update(data)
        written = self.raw.write(data)
        self.position += written
        return written

    def tell(self) -> int:
        return self.position


def export_to_path(*, project: Project, options: ExportOptions, path: Path) -> tuple[int, str]:
    """Write the export to ``path`` atomically (a temporary file renamed over it) and return
    (rows, sha256 of the bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb", buffering=0) as raw:
            hashing = _HashingFile(raw)
            out = io.BufferedWriter(hashing, buffer_size=1024 * 1024)
            rows = export_write(project=project, options=options, out=out)
            out.flush()
            os.fsync(raw.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return rows, hashing.digest.hexdigest()
