"""Loading checkpoints, prediction dumps and metainfo files without letting them run code.

Checkpoints and dumps are pickles, and unpickling an arbitrary pickle can run any Python it names. Files
users download or share are untrusted, so every loader of speaq_mm admits only the types our own files hold:

* torch files (checkpoints, converted or reference detectron2 checkpoints) load with ``torch.load(...,
  weights_only=True)`` plus :func:`checkpoint_globals`, the handful of non-tensor types mmengine writes into a
  checkpoint (numpy arrays, dtypes and scalars in the message hub and the metainfo, mmengine's
  ``HistoryBuffer``). ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``;
  instead of the builtin ``getattr`` (which would hand a file any attribute of anything it can name), the file
  gets :func:`_history_buffer_method`, which resolves only those methods.
* plain pickles (``tools/test.py --out preds.pkl``, mmengine's ``DumpResults``, metainfo ``.pkl``) load with
  :class:`RestrictedUnpickler`, which resolves only plain containers, numpy arrays and torch tensors.

A file that needs anything else is refused with :class:`UntrustedFileError`, naming the file, the type and the
flag that opts in for that one file: ``--trust-pickle FILE`` on every tool (or :func:`trust_file` from
Python). A trusted file is loaded with the full pickle machinery, and the log says so. There is no switch
for the whole process.
"""
import _compat_pickle
import io
import os.path as osp
import pickle
import re
import warnings

import numpy as np

TRUST_FLAG = '--trust-pickle'
_trusted_files = set()


class UntrustedFileError(pickle.UnpicklingError):
    """A file holds a type that speaq_mm does not load from untrusted files (it could run code)."""


def trust_file(path):
    """Allow ``path`` (this one file) to be unpickled without restrictions in this process.

    Only for files you made yourself or fully trust: unpickling can run code. The tools call it for every
    ``--trust-pickle FILE`` they are given.
    """
    _trusted_files.add(osp.realpath(osp.expanduser(str(path))))


def is_trusted(path):
    """Whether :func:`trust_file` was called for ``path`` (symlinks and ``~`` resolved)."""
    return osp.realpath(osp.expanduser(str(path))) in _trusted_files


def add_trust_argument(parser):
    """Add the ``--trust-pickle FILE`` option (repeatable) to an ``argparse`` parser of a tool."""
    parser.add_argument(
        TRUST_FLAG, action='append', default=[], metavar='FILE',
        help='load FILE (a checkpoint or pickle) even if it holds types beyond plain tensors, arrays and '
             'containers; unpickling such a file can run code, so only for files you made or trust (repeatable)')


def trust_files_from_args(args):
    """Call :func:`trust_file` for every ``--trust-pickle`` of parsed ``args``."""
    for path in getattr(args, 'trust_pickle', None) or ():
        trust_file(path)


def _untrusted(path, what, offending):
    return UntrustedFileError(
        f'{path}: this {what} holds {offending}, which is not among the types speaq_mm loads from files it '
        f'cannot trust (tensors, numpy arrays, plain containers, mmengine logs): unpickling it could run code. '
        f'If you made this file or trust its source, pass {TRUST_FLAG} {path} (or call '
        f'speaq_mm.utils.trust_file) to load this one file anyway.')


def _warn_trusted(path):
    warnings.warn(f'loading {path} with full unpickling ({TRUST_FLAG}): it can run code', stacklevel=3)


def _history_buffer_method(owner, name):
    """The ``getattr`` a checkpoint may call: only ``HistoryBuffer``'s statistics methods resolve."""
    from mmengine.logging import HistoryBuffer
    method = vars(HistoryBuffer).get(name) if owner is HistoryBuffer else None
    if not callable(method):
        owner = getattr(owner, '__qualname__', type(owner).__name__)
        raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr({owner}, {name!r}) was not an '
                                     'allowed global')
    return method


def _numpy_globals():
    """(object, pickled name) pairs for numpy arrays, dtypes and scalars, under numpy 1 and numpy 2 names."""
    multiarray = np.core.multiarray if np.__version__.startswith('1.') else np._core.multiarray
    pairs = []
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        pairs += [(multiarray._reconstruct, f'{module}._reconstruct'), (multiarray.scalar, f'{module}.scalar')]
    pairs += [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    # numpy >= 1.25 pickles a dtype's class (numpy.dtypes.Float32DType, ...) in some protocols.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        pairs += [(getattr(dtypes, name), f'numpy.dtypes.{name}') for name in dir(dtypes)
                  if name.endswith('DType') and isinstance(getattr(dtypes, name), type)]
    return pairs


def checkpoint_globals():
    """The allow-list for ``torch.load(weights_only=True)`` of our checkpoints (see the module docstring)."""
    from mmengine.logging import HistoryBuffer
    return [*_numpy_globals(), HistoryBuffer, (_history_buffer_method, 'builtins.getattr')]


def _offending_global(error):
    """The type or function named in torch's weights-only refusal, or its first line."""
    text = str(error)
    for pattern in (r'GLOBAL (.+?) (?:was not an allowed|whose module)', r'unrecognized function (.+?)(?: which|$)',
                    r'but got (<[^>]+>)'):
        match = re.search(pattern, text, flags=re.MULTILINE)
        if match:
            return match.group(1)
    return text.strip().splitlines()[-1] if text.strip() else type(error).__name__


def load_torch_file(path, map_location=None, what='checkpoint'):
    """``torch.load`` a file that may come from anyone: tensors, arrays, containers and mmengine logs only.

    Args:
        path (str): the file.
        map_location: as for ``torch.load``.
        what (str): what the file is, for error messages (``'checkpoint'``, ``'reference checkpoint'``).

    Raises:
        FileNotFoundError: no such file.
        UntrustedFileError: the file holds other types; the message names the type and ``--trust-pickle``.
        ValueError: the file is not a torch file at all.
    """
    import torch
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file {path} can not be found.')
    if is_trusted(path):
        _warn_trusted(path)
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        if 'Weights only load failed' in str(error) or 'allowed global' in str(error):
            raise _untrusted(path, what, _offending_global(error)) from None
        raise ValueError(f'{path}: not a readable {what} ({error})') from error
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f'{path}: not a readable {what} ({error})') from error


def _load_storage_bytes(data):
    """``torch.storage._load_from_bytes`` (how ``pickle`` stores a tensor's data), without full unpickling."""
    import torch
    return torch.load(io.BytesIO(data), weights_only=True)


def _plain_pickle_globals():
    """``module.name`` -> object for what :class:`RestrictedUnpickler` resolves."""
    import collections

    import torch
    allowed = {name: obj for obj, name in _numpy_globals()}
    allowed.update({
        'builtins.set': set, 'builtins.frozenset': frozenset, 'builtins.bytes': bytes, 'builtins.slice': slice,
        'builtins.complex': complex, 'builtins.bytearray': bytearray, 'builtins.range': range,
        'collections.OrderedDict': collections.OrderedDict, '_codecs.encode': _latin1_encode,
        'torch._utils._rebuild_tensor_v2': torch._utils._rebuild_tensor_v2,
        'torch._utils._rebuild_parameter': torch._utils._rebuild_parameter,
        'torch.storage._load_from_bytes': _load_storage_bytes,
        'torch.Size': torch.Size, 'torch.device': torch.device,
    })
    for name in dir(torch):
        if isinstance(getattr(torch, name, None), torch.dtype):
            allowed[f'torch.{name}'] = getattr(torch, name)
    return allowed


def _latin1_encode(text, encoding='latin1'):
    """``_codecs.encode`` as protocol-2 pickles use it to store bytes: text to latin1, nothing else."""
    if encoding not in ('latin1', 'latin-1') or not isinstance(text, str):
        raise pickle.UnpicklingError(f'Unsupported global: GLOBAL _codecs.encode({encoding!r}) was not an allowed '
                                     'global')
    return text.encode(encoding)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only plain containers, numpy arrays and scalars, and torch tensors.

    ``what`` and ``path`` name the file in the error raised for any other global.
    """

    def __init__(self, file, path='<bytes>', what='file'):
        super().__init__(file)
        self._path, self._what = path, what
        self._allowed = _plain_pickle_globals()

    def find_class(self, module, name):
        """Resolve ``module.name`` from the allow-list, or refuse the file."""
        # Protocol 0-2 pickles name builtins by their Python 2 names (__builtin__.bytes), which the default
        # find_class maps the same way.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        key = f'{module}.{name}'
        if key in self._allowed:
            return self._allowed[key]
        raise _untrusted(self._path, self._what, key)


def load_pickle_file(path, what='pickle file'):
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (or fully, if :func:`trust_file` was called for it).

    Raises:
        FileNotFoundError: no such file.
        UntrustedFileError: the file names a type outside the allow-list (the payload never runs).
        ValueError: the file is not a readable pickle.
    """
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist')
    with open(path, 'rb') as file:
        try:
            if is_trusted(path):
                _warn_trusted(path)
                return pickle.Unpickler(file).load()
            return RestrictedUnpickler(file, path, what).load()
        except UntrustedFileError:
            raise
        except Exception as error:
            raise ValueError(f'{path}: not a readable pickle file ({error})') from error
