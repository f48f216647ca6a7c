"""Checks the tools run before they write: never over a user's files without ``--overwrite``, never over an input.

Each function raises before anything is written, with a message naming the files and the way out, so a refused
command changes nothing (docs/safety.md, "Files that are never replaced without a flag").
"""
import os
import os.path as osp
import time

_SHOWN = 5


def _listed(paths):
    paths = list(paths)
    return ', '.join(paths[:_SHOWN]) + (f' and {len(paths) - _SHOWN} more' if len(paths) > _SHOWN else '')


def refuse_existing_files(paths, overwrite=False, flag='--overwrite'):
    """Raise ``FileExistsError`` naming every path of ``paths`` that exists, unless ``overwrite``."""
    existing = [path for path in paths if osp.lexists(path)]
    if existing and not overwrite:
        raise FileExistsError(f'{_listed(existing)} already exist(s); nothing was written. Pass {flag} to replace '
                              'them, or choose another name.')


def refuse_non_empty_folder(folder, overwrite=False, flag='--overwrite'):
    """Raise ``FileExistsError`` if ``folder`` holds anything, unless ``overwrite``; ``NotADirectoryError`` if
    it is a file."""
    if osp.exists(folder) and not osp.isdir(folder):
        raise NotADirectoryError(f'{folder} exists and is not a folder')
    if osp.isdir(folder) and os.listdir(folder) and not overwrite:
        raise FileExistsError(f'{folder} is not empty; nothing was written. Choose an empty or new folder, or pass '
                              f'{flag} to replace what it holds.')


def refuse_outputs_among_inputs(out_dir, inputs, option='--out-dir'):
    """Raise ``ValueError`` if ``out_dir`` is, or contains, the folder of any of the ``inputs`` files.

    A tool that writes ``<name>.png`` per input ``<name>.<ext>`` into ``out_dir`` would otherwise replace input
    photos (``photo.png`` by its drawing) and mix its outputs with them. Paths are compared after resolving
    symlinks.
    """
    root = osp.realpath(out_dir)
    inside = [path for path in inputs
              if osp.commonpath([root, osp.realpath(path)]) == root]
    if inside:
        raise ValueError(f'{option} {out_dir} holds the input image(s) {_listed(inside)}: the outputs would be '
                         f'written among them and could replace them; nothing was written. Choose a {option} '
                         'outside the input folder.')


def fresh_run_dir(work_dir, holds_results, log=print):
    """``work_dir`` if it holds no earlier results (``holds_results(work_dir)`` is false), else a new sibling
    ``<work_dir>_<YYYYmmdd_HHMMSS>`` (said in ``log``), so that the earlier run's results stay as they are."""
    if not holds_results(work_dir):
        return work_dir
    stamp = time.strftime('%Y%m%d_%H%M%S')
    candidate, number = f'{work_dir.rstrip(os.sep)}_{stamp}', 1
    while osp.exists(candidate):
        number += 1
        candidate = f'{work_dir.rstrip(os.sep)}_{stamp}_{number}'
    log(f'{work_dir} holds the results of an earlier run, which are kept; this run writes to {candidate} '
        '(pass --overwrite to write into the earlier run\'s folder instead)')
    return candidate
