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

Both loaders also bound what an allowed type may ask for: numpy's ``_reconstruct`` only creates the empty array
that numpy's own pickles ask for (a 41-byte file cannot request gigabytes before its data is read), object
arrays are refused (their ``__setstate__`` allocates the declared shape whatever the file holds), and a
``HistoryBuffer`` state may not re-point mmengine's process-wide statistics table
(``speaq_mm.engine.mmengine_compat``, workaround 8).

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


class _Refusal(Exception):
    """Raised by an allowed callable whose arguments ask for more than our files ever do; the loaders turn it
    into an :class:`UntrustedFileError` naming the file. (Not an ``UnpicklingError``, so torch's weights-only
    loader passes it through unchanged.)"""


def _trust_key(path):
    """A local file is trusted by its real path (never by its base name); a remote source (``s3://...``,
    ``https://...``) by the exact string."""
    path = str(path)
    return path if '://' in path else osp.realpath(osp.expanduser(path))


def trust_file(path):
    """Allow ``path`` (this one file, or this one remote source) to be unpickled without restrictions.

    Only for files you made yourself or fully trust: unpickling can run code. The tools call it for every
    ``--trust-pickle FILE`` they are given.
    """
    _trusted_files.add(_trust_key(path))


def is_trusted(path):
    """Whether :func:`trust_file` was called for ``path`` (symlinks and ``~`` resolved)."""
    return _trust_key(path) in _trusted_files


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


def _refused(path, what, refusal):
    return UntrustedFileError(f'{path}: this {what} {refusal}; refused before allocating or running anything. '
                              f'If you made this file or trust its source, pass {TRUST_FLAG} {path} to load it '
                              'with full unpickling anyway.')


def _warn_trusted(path):
    warnings.warn(f'loading {path} with full unpickling ({TRUST_FLAG}): it can run code', stacklevel=3)


# The statistics mmengine registers for every HistoryBuffer; a checkpoint pickles this table with each buffer.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(owner, name):
    """The ``getattr`` a checkpoint may call: only ``HistoryBuffer``'s statistics methods resolve."""
    from mmengine.logging import HistoryBuffer
    method = vars(HistoryBuffer).get(name) if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS else None
    if not callable(method):
        owner = getattr(owner, '__qualname__', type(owner).__name__)
        raise pickle.UnpicklingError(f'Unsupported global: GLOBAL builtins.getattr({owner}, {name!r}) was not an '
                                     'allowed global')
    return method


_NUMPY_CORE = np.core if np.__version__.startswith('1.') else np._core
_MULTIARRAY = _NUMPY_CORE.multiarray


def _empty_array(subtype, shape, dtype):
    """numpy's ``_reconstruct`` as a pickle may call it: the empty array that BUILD then fills.

    numpy's own pickles always ask for ``(ndarray, (0,), b'b')`` and bring the data with BUILD, whose
    ``__setstate__`` checks it against the shape. Any other shape would allocate memory the file never holds.
    """
    if subtype is not np.ndarray:
        raise _Refusal(f'asks numpy _reconstruct for a {getattr(subtype, "__qualname__", subtype)!r}, not an ndarray')
    dims = (shape,) if isinstance(shape, int) else shape
    if not (isinstance(dims, tuple) and all(isinstance(d, int) and d >= 0 for d in dims)) or 0 not in dims:
        raise _Refusal(f'asks numpy _reconstruct for an array of shape {shape!r} before reading any data '
                       "(numpy's own pickles ask for an empty one)")
    return _MULTIARRAY._reconstruct(np.ndarray, dims, dtype)


def _plain_dtype(*args):
    """``numpy.dtype`` for pickles: every dtype except those holding Python objects.

    An object array's ``__setstate__`` allocates its declared shape before it compares it with the list of
    items the file holds (a few bytes can ask for gigabytes), and our files hold none.
    """
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise _Refusal(f'holds a numpy array of Python objects (dtype {dtype}), which speaq_mm does not load')
    return dtype


def _numpy_globals():
    """(object, pickled name) pairs for numpy arrays, dtypes and scalars, under numpy 1 and numpy 2 names."""
    pairs = []
    for core in ('numpy.core', 'numpy._core'):
        pairs += [(_empty_array, f'{core}.multiarray._reconstruct'), (_MULTIARRAY.scalar, f'{core}.multiarray.scalar'),
                  # Protocol 5 pickles a contiguous array as _frombuffer(bytes, dtype, shape, order): a view of
                  # the file's bytes, reshaped (numpy checks that the sizes agree).
                  (_NUMPY_CORE.numeric._frombuffer, f'{core}.numeric._frombuffer')]
    pairs += [(np.ndarray, 'numpy.ndarray'), (_plain_dtype, 'numpy.dtype')]
    # numpy >= 1.25 pickles a dtype's class (numpy.dtypes.Float32DType, ...) in some protocols, and torch's
    # weights-only BUILD needs a dtype's class allowed to set its state. ObjectDType() would build dtype('O').
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        pairs += [(getattr(dtypes, name), f'numpy.dtypes.{name}') for name in dir(dtypes)
                  if name.endswith('DType') and name != 'ObjectDType' and isinstance(getattr(dtypes, name), type)]
    return pairs


def checkpoint_globals():
    """The allow-list for ``torch.load(weights_only=True)`` of our checkpoints (see the module docstring)."""
    from mmengine.logging import HistoryBuffer
    return [*_numpy_globals(), HistoryBuffer, (_history_buffer_method, 'builtins.getattr')]


def _offending_global(error):
    """The type or function named in torch's weights-only refusal, or None."""
    for pattern in (r'GLOBAL (.+?) (?:was not an allowed|whose module)', r'unrecognized function (.+?)(?: which|$)',
                    r'but got (<[^>]+>)'):
        match = re.search(pattern, str(error), flags=re.MULTILINE)
        if match:
            return match.group(1)
    return None


def _torch_reason(error):
    """The line of a torch error that says what went wrong (its weights-only refusals wrap it in advice)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(('Weights only load failed', 'Please file an issue',
                                                              'Check the documentation'))]
    return (reasons or lines or [type(error).__name__])[-1].strip()


def load_torch_file(path, map_location=None, what='checkpoint', source=None):
    """``torch.load`` a file that may come from anyone: tensors, arrays, containers and mmengine logs only.

    Args:
        path (str): the file.
        map_location: as for ``torch.load``.
        what (str): what the file is, for error messages (``'checkpoint'``, ``'reference checkpoint'``).
        source (str, optional): where a downloaded file came from (a URL); :func:`trust_file` of ``source``
            trusts it as well as of ``path``.

    Raises:
        FileNotFoundError: no such file.
        UntrustedFileError: the file holds other types; the message names the type and ``--trust-pickle``.
        ValueError: the file is not a torch file at all.
    """
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} file {path} can not be found.')
    with open(path, 'rb') as file:
        return _load_torch(file, path, map_location, what, trusted=is_trusted(path) or (
            source is not None and is_trusted(source)))


def load_torch_bytes(data, name, map_location=None, what='checkpoint'):
    """:func:`load_torch_file` for the bytes of a remote file (``s3://...``); ``name`` is its address, by which
    :func:`trust_file` trusts it."""
    return _load_torch(io.BytesIO(data), name, map_location, what, trusted=is_trusted(name))


def _load_torch(file, name, map_location, what, trusted):
    import torch
    if trusted:
        _warn_trusted(name)
        return torch.load(file, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            return torch.load(file, map_location=map_location, weights_only=True)
    except _Refusal as refusal:
        raise _refused(name, what, refusal) from None
    except pickle.UnpicklingError as error:
        offending = _offending_global(error)
        if offending:
            raise _untrusted(name, what, offending) from None
        error_text = _torch_reason(error)
    except (RuntimeError, EOFError, OSError) as error:
        error_text = _torch_reason(error)
    # A plain pickle (not torch's format) fails on an opcode or the magic number before torch names a global;
    # the restricted unpickler names the first global it refuses, and runs nothing.
    file.seek(0)
    try:
        restricted_load(file, name, what)
    except UntrustedFileError:
        raise
    except Exception:  # not a pickle either: report torch's reason
        pass
    raise ValueError(f'{name}: not a readable {what} ({error_text})')


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


def restricted_load(file, name='<bytes>', what='pickle file'):
    """Unpickle the open binary ``file`` with :class:`RestrictedUnpickler`; refusals name ``name``."""
    try:
        return RestrictedUnpickler(file, name, what).load()
    except _Refusal as refusal:
        raise _refused(name, what, refusal) from None


def check_history_buffer_state(state):
    """Refuse a ``HistoryBuffer`` state whose statistics table maps a name to another method.

    mmengine's ``HistoryBuffer.__setstate__`` merges the table a file carries into the class-wide one that
    every buffer of the process uses, so a file mapping ``'mean'`` to ``HistoryBuffer.max`` would make every
    later mean a max. A file may only restate the entries the table already has (``speaq_mm.engine.mmengine_compat``).
    """
    from mmengine.logging import HistoryBuffer
    table = state.get('statistics_methods', {}) if isinstance(state, dict) else None
    if not isinstance(table, dict):
        raise _Refusal(f'holds a HistoryBuffer state that is not a dict with a statistics table ({type(state)})')
    for key, method in table.items():
        own = vars(HistoryBuffer)[key] if key in HISTORY_BUFFER_STATISTICS else None
        # A statistic this process registered itself may be restated (a trusted file of this project's runs).
        if method is not own and method is not HistoryBuffer._statistics_methods.get(key):
            shown = getattr(method, '__qualname__', type(method).__name__)
            raise _Refusal(f'holds a HistoryBuffer whose statistic {key!r} is {shown} (mmengine would register it '
                           'for every HistoryBuffer of the process)')


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
            return restricted_load(file, path, what)
        except UntrustedFileError:
            raise
        except Exception as error:
            raise ValueError(f'{path}: not a readable pickle file ({error})') from error
