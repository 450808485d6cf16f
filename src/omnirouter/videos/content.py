"""Finished videos under the data dir (`<data dir>/videos/<job id>/<index>.mp4`), kept for
`video_retention_days` after the job completes; the poller's cleanup pass deletes what expired.

A job's videos are written to a `.partial` directory first and renamed into place only once the
job's completion is recorded, so a directory under its own name always holds every video."""

from __future__ import annotations

import shutil
from pathlib import Path


def root(data_dir: Path) -> Path:
    return Path(data_dir) / "videos"


def path_of(data_dir: Path, job_id: str, index: int) -> Path:
    return root(data_dir) / job_id / f"{index}.mp4"


def write_partial(data_dir: Path, job_id: str, videos: list[bytes]) -> Path:
    partial = root(data_dir) / f"{job_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for index, data in enumerate(videos):
        (partial / f"{index}.mp4").write_bytes(data)
    return partial


def publish(partial: Path, data_dir: Path, job_id: str) -> None:
    final = root(data_dir) / job_id
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)


def discard(partial: Path) -> None:
    shutil.rmtree(partial, ignore_errors=True)


def stored(data_dir: Path) -> list[str]:
    """The job ids whose videos this machine holds."""
    base = root(data_dir)
    if not base.is_dir():
        return []
    return [p.name for p in base.iterdir() if p.is_dir() and not p.name.endswith(".partial")]


def delete(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(root(data_dir) / job_id, ignore_errors=True)
