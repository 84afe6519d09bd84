"""Where batch jobs submitted over HTTP may read and write."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.errors import ForbiddenError
from modelport.jobs.batch.roots import check_within


@pytest.mark.parametrize(
    "location",
    ["{root}", "{root}/in", "{root}/a/b/../c", "file://{root}/x", "s3://scoring/in/day"],
)
def test_inside_the_roots(tmp_path: Path, location: str) -> None:
    check_within([str(tmp_path), "s3://scoring/"], location.format(root=tmp_path), "/input")


@pytest.mark.parametrize(
    "location",
    [
        "{root}/../elsewhere",
        "{root}-sibling/x",
        "/etc/passwd",
        "s3://scoring-other/x",
        "s3://scoring/../other",
        "gs://scoring/in",
        "{root}/link/x",
    ],
)
def test_outside_the_roots(tmp_path: Path, location: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)  # a link out of the root does not count as inside
    with pytest.raises(ForbiddenError, match="outside the folders"):
        check_within([str(root), "s3://scoring"], location.format(root=root), "/output")


def test_no_roots_no_batch_jobs() -> None:
    with pytest.raises(ForbiddenError, match="MODELPORT_BATCH_ROOTS"):
        check_within([], "/data/in", "/input")
