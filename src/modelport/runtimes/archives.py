"""Zip archives (skops files) sized from their directory before anything is decompressed.

A 1 MB skops file holding a 1 GiB member of zeros took skops 10 s and 2.3 GiB of memory to
refuse. The zip's central directory states every member's sizes; Python's ``zipfile`` never
inflates a member past its stated size, so checking those numbers first bounds what any later
read can cost, in microseconds.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from modelport.errors import ModelLoadError

MAX_UNCOMPRESSED_BYTES = 2 * 1024**3
"""Largest total a model archive may inflate to: far above real models, far below what would
exhaust a serving host."""
MAX_RATIO = 200
"""Largest compression ratio of one big member. Model weights compress a few times at most
(skops stores them uncompressed by default); a bomb's run of zeros compresses ~1000:1."""
RATIO_FLOOR_BYTES = 4 * 1024**2
"""Members smaller than this may compress as well as they like (schemas, small arrays)."""


def check_zip_sizes(
    path: Path, *, max_total_bytes: int = MAX_UNCOMPRESSED_BYTES, max_ratio: float = MAX_RATIO
) -> None:
    """Refuse (422) an archive that is not a zip, or whose members would inflate too far."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(f"{path.name} is not a readable zip archive: {exc}") from exc
    total = 0
    for member in members:
        total += member.file_size
        if total > max_total_bytes:
            raise ModelLoadError(
                f"{path.name} would inflate to more than {max_total_bytes:,} bytes; "
                "refusing to read it"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR_BYTES and ratio > max_ratio:
            raise ModelLoadError(
                f"{path.name}: member {member.filename!r} inflates {ratio:,.0f}:1 to "
                f"{member.file_size:,} bytes (limit {max_ratio:,.0f}:1); "
                "refusing to read what looks like a zip bomb"
            )
