"""Count the calls that make the host wait for the device (host round trips), on any device, CPU included.

On a GPU every read of device data by Python (``.item()``, ``.tolist()``, ``.cpu()``, truth tests, ...),
every operation whose output shape depends on device data (boolean-mask indexing, ``nonzero``, ``unique``,
``repeat_interleave`` with tensor repeats, ...) and every copy of host data to the device (``torch.tensor(...,
device=...)``, ``new_tensor``, ``.to(device)`` of a host tensor) stops the CPU until the GPU has caught up: a
round trip. On a CPU nothing waits, so a timing cannot show them; this counter records them by intercepting
the torch API calls (a ``TorchFunctionMode``) and classifying them the way CUDA would execute them.

Which tensors live on the host. A CPU run cannot tell a host tensor from a device tensor by its ``device``,
so the counter follows the code's intent:

* host tensors are the results of a counted device-to-host transfer (``.cpu()``, ``.to('cpu')``), of
  creations without a ``device`` argument (``torch.arange(n)``, ``torch.as_tensor(array)``, which PyTorch puts
  on the CPU wherever the model runs), and of any operation whose tensor inputs are all host tensors;
* every other tensor (model inputs, parameters, anything created with ``device=``) is a device tensor.

Operations on host tensors are free. Code that works on the host after one transfer (the matcher's
assignment, the post-processor's NMS) therefore costs exactly the transfers it makes. A device-to-host
transfer is ``.cpu()`` or ``.to('cpu')`` with the device written as a string; ``.to(x.device)`` is taken as a
move between device tensors, free.

Blind spots: calls inside C++ extensions (e.g. mmcv's NMS on device tensors) are not seen, and a CPU tensor
made outside the counted region (a plain attribute built at init, ``torch.from_numpy``, which the mode does not
see) is taken for a device tensor, so moving it with ``.to(device)`` is not counted; keep such tables as
module buffers or cache their device copy, as a GPU run wants anyway.

Usage (tests and ``tools/benchmarks/bench_model.py --profile``)::

    with HostSyncCounter() as counter:
        losses = model.loss(inputs, samples)
    print(counter.total, counter.by_kind())
"""
import traceback
import weakref
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

# What a call is counted as (the kind), by the name of the torch function or method.
_READS = {  # device data read by Python
    'item': 'read', 'tolist': 'read', 'numpy': 'read', '__bool__': 'truth test', '__int__': 'read',
    '__float__': 'read', '__index__': 'read', '__complex__': 'read', 'is_nonzero': 'truth test',
    'equal': 'read', 'allclose': 'read',
}
_DATA_DEPENDENT_SHAPES = {  # outputs whose size the host must read from the device
    'nonzero', 'argwhere', 'masked_select', 'unique', 'unique_consecutive', 'bincount', 'nonzero_static',
}
_HOST_DATA_CREATIONS = {'tensor', 'as_tensor', 'asarray', 'new_tensor'}
_CREATIONS = _HOST_DATA_CREATIONS | {
    'arange', 'zeros', 'ones', 'full', 'empty', 'linspace', 'eye', 'rand', 'randn', 'randint', 'randperm',
}


def _is_cpu(device):
    return device is not None and torch.device(device).type == 'cpu'


def _device_argument(args, kwargs):
    """The device a ``Tensor.to`` call names (a string or ``torch.device``, not a tensor's), or None."""
    device = kwargs.get('device')
    for value in args:
        if isinstance(value, (str, torch.device)):
            device = value
    return device


class HostSyncCounter(TorchFunctionMode):
    """A context manager counting host round trips (see the module docstring).

    Args:
        record_stacks (bool): keep a short call stack per event, to find where a round trip comes from.

    Attributes:
        events (list[tuple[str, str, str]]): ``(kind, torch function, where)`` per round trip, in order; the
            kinds are ``read``, ``truth test``, ``to host``, ``mask read``, ``mask write``,
            ``data-dependent shape`` and ``to device``.
    """

    def __init__(self, record_stacks=False):
        super().__init__()
        self.record_stacks = record_stacks
        self.events = []
        self._host = {}  # id -> weakref of the host tensors

    @property
    def total(self):
        """Number of round trips counted."""
        return len(self.events)

    def by_kind(self):
        """``{kind: count}`` of the counted round trips."""
        return dict(Counter(kind for kind, _, _ in self.events))

    def reads(self):
        """Round trips that bring device data to the host (everything except copies to the device)."""
        return sum(1 for kind, _, _ in self.events if kind != 'to device')

    def summary(self):
        """One line: the total and the count of each kind."""
        kinds = ', '.join(f'{count} {kind}' for kind, count in sorted(self.by_kind().items()))
        return f'{self.total} host round trip(s)' + (f' ({kinds})' if kinds else '')

    def is_host(self, tensor):
        """Whether the counter treats ``tensor`` as a host tensor."""
        ref = self._host.get(id(tensor))
        return ref is not None and ref() is tensor

    def _mark_host(self, outputs):
        for value in tree_flatten(outputs)[0]:
            if isinstance(value, torch.Tensor) and not self.is_host(value):
                key = id(value)
                self._host[key] = weakref.ref(value, lambda _, key=key: self._host.pop(key, None))

    def _count(self, kind, name):
        where = ''
        if self.record_stacks:
            frames = [f for f in traceback.extract_stack()[:-2] if 'torch/' not in f.filename]
            where = ' <- '.join(f'{f.filename.rsplit("/", 1)[-1]}:{f.lineno}' for f in frames[-4:][::-1])
        self.events.append((kind, name, where))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', str(func))
        tensors = [v for v in tree_flatten((args, kwargs))[0] if isinstance(v, torch.Tensor)]
        result = func(*args, **kwargs)
        if tensors and all(self.is_host(t) for t in tensors):
            if _moves_to_a_device(name, args, kwargs):
                self._count('to device', name)
                if any(result is t for t in tensors):
                    result = result.clone()  # on a CPU run the "device" copy is its input: keep them apart
            else:
                self._mark_host(result)
            return result
        kind = self._classify(name, args, kwargs, tensors)
        if kind is not None:
            self._count(kind, name)
        if kind == 'to host' and any(result is t for t in tensors):
            result = result.clone()  # on a CPU run .cpu() returns its input, which must stay a device tensor
        if kind == 'to host' or (name in _CREATIONS and not tensors and kwargs.get('device') is None):
            self._mark_host(result)
        return result

    def _classify(self, name, args, kwargs, tensors):
        """The kind of round trip a call that involves device tensors makes, or None."""
        if name in _READS:
            return _READS[name]
        if name == 'cpu' or (name == 'to' and any(isinstance(a, str) and _is_cpu(a) for a in args[1:])) or (
                name == 'to' and isinstance(kwargs.get('device'), str) and _is_cpu(kwargs['device'])):
            return 'to host'
        if name in ('__getitem__', '__setitem__'):
            index = args[1] if len(args) > 1 else None
            parts = index if isinstance(index, tuple) else (index,)
            if any(isinstance(p, torch.Tensor) and p.dtype == torch.bool for p in parts):
                return 'mask read' if name == '__getitem__' else 'mask write'
            if any(isinstance(p, list) or (isinstance(p, torch.Tensor) and self.is_host(p)) for p in parts):
                return 'to device'  # a Python list or a host tensor used as an index is copied to the device
            return None
        if name in _DATA_DEPENDENT_SHAPES or (name == 'where' and len(args) + len(kwargs) == 1):
            return 'data-dependent shape'
        if name == 'repeat_interleave':
            repeats = args[1] if len(args) > 1 else kwargs.get('repeats', args[0] if args else None)
            if isinstance(repeats, torch.Tensor) and repeats.numel() > 1 and kwargs.get('output_size') is None:
                return 'data-dependent shape'
            return None
        if _moves_to_a_device(name, args, kwargs) and any(self.is_host(t) for t in tensors):
            return 'to device'
        if name in _HOST_DATA_CREATIONS:
            data = args[1] if name == 'new_tensor' else (args[0] if args else kwargs.get('data'))
            if not isinstance(data, torch.Tensor) and (name == 'new_tensor' or kwargs.get('device') is not None):
                return 'to device'
        return None


def _moves_to_a_device(name, args, kwargs):
    """Whether a call copies its (host) input to an explicitly named device: ``.to(device)``, ``.cuda()``,
    ``torch.as_tensor(host, device=...)``."""
    if name == 'to':
        return _device_argument(args[1:], kwargs) is not None
    return name == 'cuda' or (name in _HOST_DATA_CREATIONS and kwargs.get('device') is not None)
