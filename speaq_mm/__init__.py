"""speaq_mm: SpeaQ scene graph generation as an MMDetection 3.x plugin.

Every component registers into mmdet's own registries (see README, "Registries"), so importing this
package, directly or through ``custom_imports=dict(imports=['speaq_mm'])``, is all a config needs.
"""
import warnings

import mmcv
import mmdet
import mmengine

from .version import __version__

_TESTED = {'mmcv': (mmcv, '2.1.0'), 'mmdet': (mmdet, '3.3.0'), 'mmengine': (mmengine, '0.10.7')}
for _name, (_module, _version) in _TESTED.items():
    if _module.__version__ != _version:
        warnings.warn(f'speaq_mm is tested with {_name}=={_version}, found {_module.__version__}', stacklevel=2)

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401  (registers every module)

# The safe checkpoint loader and atomic local writes, for the whole process (README, "What importing speaq_mm
# changes"; speaq_mm/engine/mmengine_compat.py).
engine.install_process_wide_workarounds()

__all__ = ['__version__']
