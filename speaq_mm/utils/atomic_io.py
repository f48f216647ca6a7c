"""Crash-safe local writes: a file appears under its final name complete, or not at all.

mmengine writes checkpoints with ``open(path, 'wb').write(...)``: a job killed or a disk that fills up in the
middle of the write leaves a truncated ``iter_N.pth`` under the final name, and ``--resume`` then fails on it
(or, worse, a later tool reads a half file). Here every local write goes to a temporary file in the same
folder, is flushed and fsynced, and is renamed over the final name with ``os.replace``, which is atomic on
POSIX file systems. A failed write removes its temporary file and raises :class:`AtomicWriteError` naming the
file, the reason and the free space left; the file that was there before is untouched.

``import speaq_mm`` makes ``AtomicLocalBackend`` (``speaq_mm.engine.mmengine_compat``) mmengine's backend
for local paths, so ``Runner.save_checkpoint``, ``mmengine.dump`` and everything else that writes through
``mmengine.fileio`` become atomic. ``CheckpointHook`` writes its ``last_checkpoint`` pointer with a plain
``open``; :class:`speaq_mm.engine.hooks.SpeaQCheckpointHook` writes it through :func:`atomic_write` instead.
"""
import contextlib
import errno
import glob
import os
import os.path as osp
import shutil
import socket
import tempfile
from typing import Union

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


@contextlib.contextmanager
def atomic_path(path: str, size_hint: str = ''):
    """Yield a temporary path to write ``path``'s new content to; on success it replaces ``path`` atomically.

    For writers that need a file name rather than bytes (``h5py``, say). The temporary file sits next to
    ``path`` and names its writer (``.<name>.<pid>@<host>.<random>.partial``), so the clean-up of
    :func:`remove_stale_partial_files` removes only files whose writer has died and never one another process
    is still writing. On failure it is removed and an ``OSError`` becomes :class:`AtomicWriteError` (naming
    the file, the reason and the free space); whatever ``path`` held before is untouched.
    """
    path = osp.abspath(osp.expanduser(str(path)))
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    partial = None
    try:
        fd, partial = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.{_writer_token()}.', suffix=PARTIAL_SUFFIX,
                                       dir=directory)
        try:
            os.fchmod(fd, _FILE_MODE)
        finally:
            os.close(fd)
        yield partial
        with open(partial, 'rb+') as stream:
            os.fsync(stream.fileno())
        os.replace(partial, path)
    except BaseException as err:
        if partial is not None:
            with contextlib.suppress(OSError):
                os.remove(partial)
        if isinstance(err, OSError) and not isinstance(err, AtomicWriteError):
            reason = 'no space left on the device' if err.errno == errno.ENOSPC else (err.strerror or str(err))
            raise AtomicWriteError(
                err.errno or errno.EIO,
                f'could not write {path}{size_hint}: {reason}; {_free_space(directory)}. Nothing was replaced: an '
                f'earlier {osp.basename(path)} and every other file are intact, and the incomplete temporary file '
                'was removed') from err
        raise
    _fsync_directory(directory)


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
    with atomic_path(path, size_hint=f' ({len(data) / 2**20:.1f} MiB)') as partial:
        with open(partial, 'wb') as stream:
            _write_payload(stream, data)
            stream.flush()


def atomic_dump(obj, path: str, file_format: str = None, **kwargs) -> None:
    """Write a result file atomically; every result file of speaq_mm (metrics, dumps, converted checkpoints,
    demo and report JSON) is written through it.

    ``file_format`` (default: the extension of ``path``) is ``json`` (indented, ``indent=1`` unless given;
    numpy values are converted), ``pkl``/``pickle``, or ``pth`` (``torch.save``). ``kwargs`` go to the
    serialiser.
    """
    file_format = (file_format or osp.splitext(str(path))[1]).lstrip('.').lower()
    if file_format == 'pth':
        import io

        import torch
        buffer = io.BytesIO()
        torch.save(obj, buffer, **kwargs)
        data = buffer.getvalue()
    elif file_format in ('json', 'pkl', 'pickle'):
        from mmengine.fileio import dump
        if file_format == 'json':
            kwargs.setdefault('indent', 1)
        data = dump(obj, file_format='json' if file_format == 'json' else 'pkl', **kwargs)
    else:
        raise ValueError(f'atomic_dump: cannot write {path} as {file_format!r} (json, pkl or pth)')
    atomic_write(data, path)


def _writer_token() -> str:
    """``<pid>@<host>`` of this process, as temporary file names carry it (dots of the host name as ``_``)."""
    return f'{os.getpid()}@{socket.gethostname().replace(".", "_")}'


def find_partial_files(directory: str) -> list:
    """Temporary files of :func:`atomic_path` in ``directory`` (those of killed writers and of live ones)."""
    return sorted(glob.glob(osp.join(glob.escape(directory), f'.*{PARTIAL_SUFFIX}')))


def parse_partial_name(partial: str) -> tuple:
    """(final file name, writer pid or None, writer host or None) of a temporary file of :func:`atomic_path`."""
    parts = osp.basename(partial)[1:-len(PARTIAL_SUFFIX)].rsplit('.', 2)
    pid, _, host = parts[1].partition('@') if len(parts) == 3 else ('', '', '')
    if not (pid.isdigit() and host):
        return osp.basename(partial)[1:-len(PARTIAL_SUFFIX)].rsplit('.', 1)[0], None, None
    return parts[0], int(pid), host


def _writer_alive(pid: int, host: str) -> bool:
    """Whether the writer may still be running: always for another host, whose processes are not visible."""
    if host != _writer_token().split('@', 1)[1]:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partial_files(directory: str, is_ours=lambda name: True) -> list:
    """Remove the temporary files that killed writers left in ``directory``; return their paths.

    Only files whose final name satisfies ``is_ours`` are considered, and only those whose writer (named in
    the file name) is a dead process of this host: a concurrent run's file in progress is never removed, nor
    one whose writer cannot be told.
    """
    removed = []
    for partial in find_partial_files(directory):
        name, pid, host = parse_partial_name(partial)
        if pid is None or not is_ours(name) or _writer_alive(pid, host):
            continue
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
            removed.append(partial)
    return removed
