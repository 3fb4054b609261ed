"""Files that hold personal data are created private: folders 0700, files 0600.

The mirror, the plan CSVs, the run lock and the lead models hold names, e-mail addresses and
scores of real people; on a shared host the default 0644 would let every local user read them.
``dvsync`` also sets a ``0o077`` umask at start (so SQLite's ``-wal``/``-shm`` files and anything
a library writes follow); these helpers make the modes explicit where dvsync creates the files,
so they hold for library callers too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "private_dir", "private_file"]

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | Path) -> Path:
    """Create ``path`` and its missing parents as 0700 (folders that already exist are left as they are)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    for created in missing:
        with contextlib.suppress(OSError):  # mkdir's mode is filtered by the umask: set it
            os.chmod(created, FOLDER_MODE)
    return path


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty as 0600 if it does not exist; set 0600 on it either way."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    with contextlib.suppress(OSError):  # not ours to change (another user's file): leave it
        os.chmod(path, FILE_MODE)
    return path
