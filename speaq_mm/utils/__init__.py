"""Small helpers shared across speaq_mm."""
import inspect

from .safe_loading import (
    UntrustedFileError,
    add_trust_argument,
    load_pickle_file,
    load_torch_file,
    trust_file,
    trust_files_from_args,
)

__all__ = [
    'UntrustedFileError', 'add_trust_argument', 'load_pickle_file', 'load_torch_file', 'reject_unknown_kwargs',
    'trust_file', 'trust_files_from_args'
]


def reject_unknown_kwargs(owner, base_cls, kwargs):
    """Raise ``TypeError`` naming ``owner`` for any key of ``kwargs`` that ``base_cls.__init__`` rejects.

    Classes that forward ``**kwargs`` to an mmdet/mmengine base would otherwise report a config typo
    against a base class (``DetectionTransformer``, ``BaseDataset``) the user never named. The accepted
    names are gathered along the base's MRO until an ``__init__`` without ``**kwargs`` ends the chain.
    """
    accepted = set()
    for klass in base_cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        accepted.update(p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    else:
        return  # the chain never closes: anything may be accepted
    for key in kwargs:
        if key not in accepted:
            raise TypeError(f"{owner}.__init__() got an unexpected keyword argument '{key}'")
