"""The folder prometheus_client's multiprocess mode keeps every worker's metrics in, made before any worker starts.

This module never imports prometheus_client at import time: PROMETHEUS_MULTIPROC_DIR must be set before that import,
or the process keeps its values in memory (and /metrics under gunicorn shows one worker's share).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["MULTIPROC_ENV", "prepare_multiprocess_dir", "remove_multiprocess_dir", "worker_exited"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> tuple[Path, bool]:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty, owner-only folder for this run of the server, before any worker
    imports prometheus_client: a fresh temporary one when unset; when the operator set one, its metric files from an
    earlier run are removed (they would be added to this run's counts). Returns the folder and whether it was made here.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if not given:
        folder = Path(tempfile.mkdtemp(prefix="delegate-metrics-"))  # 0700 and empty, made for this run alone
        os.environ[MULTIPROC_ENV] = str(folder)
        return folder, True
    folder = Path(given)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for stale in folder.glob("*.db"):
        if stale.name.split("_", 1)[0] in ("counter", "gauge", "histogram", "summary"):  # prometheus_client's files
            stale.unlink(missing_ok=True)
    return folder, False


def remove_multiprocess_dir(folder: Path) -> None:
    """Delete a folder prepare_multiprocess_dir made (at the server's exit)."""
    shutil.rmtree(folder, ignore_errors=True)


def worker_exited(_server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges no longer count."""
    from prometheus_client import multiprocess

    folder = os.environ.get(MULTIPROC_ENV)
    # Reaped after the server's exit removed the folder (a worker killed at the end of the graceful stop): nothing
    # left to mark, and prometheus_client would raise, turning a clean stop into exit code 1.
    if folder and os.path.isdir(folder):
        multiprocess.mark_process_dead(worker.pid)
