"""Small helpers shared across the package: atomic file writes and hashing."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _read_umask() -> int:
    # os.umask can only be read by setting it, which is process-wide: done once at import, not per write,
    # so a thread creating a file meanwhile never sees a 0 umask.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _umask_mode() -> int:
    # mkstemp creates 0600 files; give the final file the permissions a plain open() would have.
    return 0o666 & ~_UMASK


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (after a power cut the new name must be there, not neither)."""
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened or synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_prefix(path: Path) -> str:
    # The writer's pid is in the name so that a later run can tell a killed run's leftovers from a live one's.
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temp files/folders that killed runs left beside ``path`` (those of live processes stay).

    :func:`atomic_write`, :func:`atomic_path` and :func:`atomic_dir` name their temps ``.<name>.<pid>.…``;
    a SIGKILL leaves one behind, and the next write to the same ``path`` clears it here.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path.parent):
            pid, _, rest = entry.name.removeprefix(prefix).partition(".")
            if not entry.name.startswith(prefix) or not pid.isdigit() or not rest or _pid_alive(int(pid)):
                continue
            target = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
            removed.append(target)
    return removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Write to a temp file beside ``path`` and rename it into place only when the block succeeds.

    A process killed mid-write leaves at most a stray ``.tmp`` file, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(
    path: str | os.PathLike, temp_dir: str | os.PathLike | None = None
) -> contextlib.AbstractContextManager[Path]:
    """Like :func:`atomic_write` for libraries that want a file name (safetensors, imageio, PIL).

    ``temp_dir``: where the temp file lives (default: beside ``path``; it must be on the same file system).
    """
    return _atomic_path(Path(path), Path(temp_dir) if temp_dir is not None else None)


@contextlib.contextmanager
def _atomic_path(path: Path, temp_dir: Path | None) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=path.suffix or ".tmp", dir=temp_dir or path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:  # the library closed it unsynced: flush its data before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    if ctypes.get_errno() in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()), str(a))


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder in a temp folder beside ``path`` and put it in place of ``path`` when the block succeeds.

    A run killed at any point leaves ``path`` as it was (the old folder, or none) or the complete new one,
    never a mix (frames of a killed run beside a new run's). The swap is one ``renameat2(RENAME_EXCHANGE)``
    on Linux; elsewhere the old folder is renamed aside first (a kill between the two renames then leaves
    the old folder under its hidden temp name). The replaced folder is deleted; temps of killed runs are
    cleared on the next call.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700 folders
        if path.is_dir() and not path.is_symlink():
            if not _exchange(tmp, path):
                old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
                os.replace(path, old / path.name)
                os.replace(tmp, path)
                tmp = old
            shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks (files may be larger than memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
