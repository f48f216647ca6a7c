"""Report and bound the training steps the non-finite guard skipped.

``SpeaQNonFiniteGuardOptimWrapper`` / ``SpeaQNonFiniteGuardAmpOptimWrapper`` (``speaq_mm.engine.optim_wrappers``,
the ``optim_wrapper`` type of the shipped schedules) skip the weight update of a step whose loss or gradients
are not finite. This hook, a default hook of every config (``default_hooks.non_finite_guard``), makes sure the
run uses such a wrapper, logs every skipped step with the non-finite loss terms, the parameters with non-finite
gradients and the batch's images, and stops training after ``max_consecutive_bad_steps`` skipped steps in a row.
"""
import math

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from ..optim_wrappers import NonFiniteGuardMixin

_NAMES_SHOWN = 8


@HOOKS.register_module()
class SpeaQNonFiniteGuardHook(Hook):
    """Log the steps the optimizer wrapper skipped; raise after too many in a row.

    Args:
        max_consecutive_bad_steps (int): raise after this many skipped steps in a row.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_consecutive_bad_steps=10):
        if max_consecutive_bad_steps < 1:
            raise ValueError(f'max_consecutive_bad_steps must be >= 1, got {max_consecutive_bad_steps}')
        self.max_consecutive_bad_steps = max_consecutive_bad_steps
        self.consecutive_bad_steps = 0
        self.skipped_steps = 0

    def before_train(self, runner):
        """Check that the optimizer wrapper skips non-finite steps; give it the parameter names to report."""
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, NonFiniteGuardMixin):
            raise TypeError(
                f'default_hooks.non_finite_guard needs an optimizer wrapper that skips non-finite steps, but '
                f'optim_wrapper.type is {type(wrapper).__name__}: set optim_wrapper.type='
                "'SpeaQNonFiniteGuardOptimWrapper' (or 'SpeaQNonFiniteGuardAmpOptimWrapper' for AMP), or switch "
                'the guard off with default_hooks.non_finite_guard=None')
        model = getattr(runner.model, 'module', runner.model)
        wrapper.parameter_names = {parameter: name for name, parameter in model.named_parameters()}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Report a skipped step; raise after too many in a row."""
        skipped, parameters = runner.optim_wrapper.pop_skipped_step()
        if not skipped:
            self.consecutive_bad_steps = 0
            return
        self.consecutive_bad_steps += 1
        self.skipped_steps += 1
        terms = [name for name, value in (outputs or {}).items() if not _is_finite(value)]
        images = _image_names((data_batch or {}).get('data_samples', []))
        message = (f'iteration {runner.iter + 1}: non-finite loss or gradient, weight update skipped '
                   f'({self.consecutive_bad_steps} in a row, {self.skipped_steps} in total). '
                   f'Non-finite logged terms: {terms or "none"}; parameters with non-finite gradients: '
                   f'{_shorten(parameters) or "none"}; images of the batch: {images}')
        runner.logger.warning(message)
        if self.consecutive_bad_steps >= self.max_consecutive_bad_steps:
            raise RuntimeError(f'{self.consecutive_bad_steps} consecutive training steps had a non-finite '
                               'loss or gradient (SpeaQNonFiniteGuardHook.max_consecutive_bad_steps). '
                               f'Last: {message}')


def _is_finite(value):
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all())
    return math.isfinite(float(value))


def _image_names(samples):
    """Image paths (or ids) of a batch's data samples, packed or collated into a dict of lists."""
    if isinstance(samples, dict):
        return list(samples.get('img_path', samples.get('img_id', [])))
    names = []
    for sample in samples:
        meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
        names.append(meta.get('img_path', meta.get('img_id', '<unknown>')))
    return names


def _shorten(names):
    if len(names) <= _NAMES_SHOWN:
        return names
    return names[:_NAMES_SHOWN] + [f'... {len(names) - _NAMES_SHOWN} more']
