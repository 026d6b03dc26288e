"""A file layer that drops every write not yet fsynced: power loss for the ledger tests.

Python's sqlite3 cannot take a VFS written in Python (APSW's VFS lives in APSW's own bundled
SQLite), so the writer runs with ``powerloss_shim.c`` preloaded (``LD_PRELOAD``). For every
regular file under one directory the shim keeps ``<name>.synced-image``, the file's content
when its last ``fsync``/``fdatasync`` returned; ``unlink`` drops the image too. A "power cut"
is SIGKILL of the writer followed by :func:`power_cut`, which puts every image back in place
and deletes files that were never synced (and SQLite's ``-shm``, which it never syncs).

Why images instead of a write log with sync markers: SQLite syncs whole files (the WAL, the
database, a journal), so a copy at sync time is the same state a log replay would give, with
no bookkeeping on write/pwrite/ftruncate and no reordering bugs in the harness. It is the
strictest outcome of a power cut (every unsynced write lost, as lazyfs's
``lose-unfsynced-writes``); torn or reordered partial writes are not simulated. Directory
fsyncs are not modelled: a file exists after the cut if and only if it was ever synced, and an
``unlink`` counts at once (SQLite only deletes a WAL or journal after syncing what replaces it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SHIM_SOURCE = Path(__file__).with_name("powerloss_shim.c")
IMAGE = ".synced-image"


def build_shim(out_dir: Path) -> Path:
    """Compile the shim with the system C compiler into ``out_dir``; returns the .so path."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("the power-loss test needs a C compiler (gcc) on PATH")
    out = out_dir / "powerloss_shim.so"
    subprocess.run(
        [
            cc,
            "-O2",
            "-Wall",
            "-Werror",
            "-shared",
            "-fPIC",
            "-o",
            str(out),
            str(SHIM_SOURCE),
            "-ldl",
        ],
        check=True,
        capture_output=True,
    )
    return out


def shim_env(shim: Path, directory: Path) -> dict[str, str]:
    """Environment for a writer whose files under ``directory`` lose unsynced writes."""
    env = dict(os.environ)
    env["LD_PRELOAD"] = str(shim)
    env["POWERLOSS_DIR"] = str(directory.resolve())
    return env


def _tracked(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file() and ".synced-" not in p.name]


def power_cut(directory: Path) -> dict[str, int]:
    """Leave ``directory`` as a power cut would (the writer must already be dead).

    Returns how many files were rolled back to their image and how many vanished.
    """
    rolled = vanished = 0
    for path in _tracked(directory):
        image = path.with_name(path.name + IMAGE)
        if image.exists():
            if path.read_bytes() != image.read_bytes():
                rolled += 1
            os.replace(image, path)
            shutil.copyfile(path, image)
        else:
            path.unlink()
            vanished += 1
    for left in directory.iterdir():
        if ".synced-tmp." in left.name:  # the temporary of a sync that never returned
            left.unlink()
    _drop_orphan_images(directory)
    return {"rolled_back": rolled, "vanished": vanished}


def mark_all_synced(directory: Path) -> None:
    """Record the current files as durable (after a clean close by a process without the shim)."""
    for path in _tracked(directory):
        shutil.copyfile(path, path.with_name(path.name + IMAGE))
    _drop_orphan_images(directory)


def _drop_orphan_images(directory: Path) -> None:
    for left in directory.iterdir():
        if left.name.endswith(IMAGE) and not left.with_name(left.name[: -len(IMAGE)]).exists():
            left.unlink()
