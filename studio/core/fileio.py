"""Writing files so that a crash, a kill or a full disk never leaves a half-written one in place.

Every file Studio rewrites (``config.toml``, ``run.json``, checkpoint manifests, token-cache
metadata) goes through :func:`atomic_write_text`: the new contents are written to a temporary file
with a unique name in the same folder, flushed to the disk (``fsync``), and renamed over the target,
which POSIX and Windows both do atomically. Readers see the old file or the new one, never a mix.
If anything fails, the temporary file is removed and the old file is untouched.

Unique temporary names (not a fixed ``run.json.tmp``) matter because two processes may rewrite the
same file: the window editing a run's tags while the trainer updates its progress.

:func:`describe_os_error` turns an ``OSError`` into one sentence a person can act on (disk full,
read-only, no permission), which is what the CLI and the window show instead of a traceback.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from studio.core.i18n import _


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once, at import: os.umask can only be read by setting it, which is not thread-safe later.
_UMASK = _current_umask()
FILE_MODE = 0o666 & ~_UMASK  # what open() would have given a new file
DIR_MODE = 0o777 & ~_UMASK


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable. A no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        # mkstemp makes the file private (0600); give it the mode of the file it replaces, or
        # the mode any new file would get, so a config or run.json stays readable as before.
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            mode = FILE_MODE
        os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def is_disk_full(error: BaseException) -> bool:
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def describe_os_error(error: OSError, action: str = "") -> str:
    """One sentence for the person: what failed, where, and what to do about it. ``action`` is
    what was being done, already translated (``_("writing")``), put before the file's name."""
    where = error.filename or ""
    target = f"{where}" if where else _("a file")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        if action:
            # Translators: {action} is what was being done ("writing"), {target} the file.
            return _("the disk is full: {action} {target} failed. Free some space (or choose another folder) and try again").format(
                action=action, target=target
            )
        return _("the disk is full: {target} failed. Free some space (or choose another folder) and try again").format(
            target=target
        )
    if error.errno == errno.EROFS:
        return _("{target} is on a read-only file system; choose a writable folder (for example with --out)").format(
            target=target
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return _("no permission to write {target}; choose a folder you can write to (for example with --out)").format(
            target=target
        )
    if error.errno == errno.EEXIST:
        return _("{target} already exists").format(target=target)
    if error.errno == errno.ENOENT:
        return _("{target} does not exist").format(target=target)
    if error.errno == errno.ENOTDIR:
        return _("{target} is not a folder").format(target=target)
    if error.errno == errno.EISDIR:
        return _("{target} is a folder, not a file").format(target=target)
    reason = error.strerror or str(error)
    if action:
        # Translators: {action} is what was being done ("writing"), {target} the file, {reason} the system's words.
        return _("{action} {target} failed: {reason}").format(action=action, target=target, reason=reason).strip()
    return _("{target} failed: {reason}").format(target=target, reason=reason).strip()


def check_writable(folder: Path) -> None:
    """Raise ``OSError`` unless a file can be created in ``folder`` (created if missing).

    Checked by creating a real file rather than with ``os.access``, which says yes to root on a
    read-only mount and to anyone on a folder marked immutable.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".studio-write-check-", dir=folder)
    os.close(fd)
    os.unlink(name)
