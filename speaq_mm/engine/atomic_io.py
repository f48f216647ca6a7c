"""Crash-safe local writes: a file appears under its final name complete, or not at all.

mmengine writes checkpoints with ``open(path, 'wb').write(...)``: a job killed or a disk that fills up in the
middle of the write leaves a truncated ``iter_N.pth`` under the final name, and ``--resume`` then fails on it
(or, worse, a later tool reads a half file). Here every local write goes to a temporary file in the same
folder, is flushed and fsynced, and is renamed over the final name with ``os.replace``, which is atomic on
POSIX file systems. A failed write removes its temporary file and raises :class:`AtomicWriteError` naming the
file, the reason and the free space left; the file that was there before is untouched.

Importing this module makes it mmengine's backend for local paths (``register_backend('local', ...,
force=True)``), so ``Runner.save_checkpoint``, ``mmengine.dump`` and everything else that writes through
``mmengine.fileio`` become atomic. ``CheckpointHook`` writes its ``last_checkpoint`` pointer with a plain
``open``; :class:`speaq_mm.engine.hooks.SpeaQCheckpointHook` writes it through :func:`atomic_write` instead.
"""
import contextlib
import errno
import glob
import os
import os.path as osp
import shutil
import tempfile
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend

# Temporary files are named ``.<final name>.<random>.partial`` next to the final file.
PARTIAL_SUFFIX = '.partial'


def _file_mode():
    """The permissions an ordinary ``open(path, 'w')`` would give a new file (0666 minus the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _file_mode()


class AtomicWriteError(OSError):
    """Writing a file failed; the previous content of the file (if any) is intact."""


def _write_payload(stream, data: bytes) -> None:
    """Write ``data`` to the open temporary file (a separate function so tests can simulate a full disk)."""
    stream.write(data)


def _fsync_directory(directory: str) -> None:
    """Persist a rename: the directory entry lives in the directory, not in the file."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some file systems do not allow opening a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _free_space(directory: str) -> str:
    try:
        return f'{shutil.disk_usage(directory).free / 2**20:.1f} MiB free there'
    except OSError:
        return 'free space unknown'


def atomic_write(data: Union[bytes, str], path: str, encoding: str = 'utf-8') -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of ``data``.

    Args:
        data (bytes | str): the content; text is encoded with ``encoding``.
        path (str): the final file; its folder is created when missing.
        encoding (str): encoding of text ``data``.

    Raises:
        AtomicWriteError: the write failed (e.g. ``errno.ENOSPC``, no space left on the device); the message
            names the file, the reason and the free space, and ``errno`` is the original one.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    path = osp.abspath(osp.expanduser(str(path)))
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    partial = None
    try:
        fd, partial = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix=PARTIAL_SUFFIX, dir=directory)
        try:
            os.fchmod(fd, _FILE_MODE)
        finally:
            os.close(fd)
        with open(partial, 'wb') as stream:
            _write_payload(stream, data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except BaseException as err:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.remove(partial)
        if isinstance(err, OSError):
            reason = 'no space left on the device' if err.errno == errno.ENOSPC else (err.strerror or str(err))
            raise AtomicWriteError(
                err.errno or errno.EIO,
                f'could not write {path} ({len(data) / 2**20:.1f} MiB): {reason}; {_free_space(directory)}. '
                f'Nothing was replaced: an earlier {osp.basename(path)} and every other file are intact, and '
                'the incomplete temporary file was removed') from err
        raise
    _fsync_directory(directory)


def find_partial_files(directory: str) -> list:
    """Temporary files that an interrupted :func:`atomic_write` left in ``directory`` (killed processes)."""
    return sorted(glob.glob(osp.join(glob.escape(directory), f'.*{PARTIAL_SUFFIX}')))


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text`` (see the module docstring)."""

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write(obj, str(filepath), encoding=encoding)


def register_atomic_local_backend() -> None:
    """Make :class:`AtomicLocalBackend` mmengine's backend for paths without a scheme prefix."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


register_atomic_local_backend()
