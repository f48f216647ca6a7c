"""Skip optimizer steps whose loss or gradients are not finite, instead of corrupting the weights.

One NaN in a loss term or a gradient reaches every weight through AdamW's moments and the model never
recovers; mmengine's gradient clipping does not stop it (the clipped norm is NaN too). The hook wraps the
optimizer wrapper's ``backward`` and ``step``: a non-finite loss or gradient skips the update (the gradients
are zeroed by ``update_params`` as usual), the log names the non-finite loss terms, the parameters with
non-finite gradients and the batch's images, and training stops after ``max_consecutive_bad_steps`` skipped
steps in a row.
"""
import math

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.optim import AmpOptimWrapper, OptimWrapper

_NAMES_SHOWN = 8


@HOOKS.register_module()
class SpeaQNonFiniteGuardHook(Hook):
    """Skip the weight update of a step with a non-finite loss or gradient.

    Args:
        max_consecutive_bad_steps (int): raise after this many skipped steps in a row.
        check_grads (bool): also check the gradients before each update. With ``AmpOptimWrapper`` the
            gradients are not checked here: its GradScaler already skips steps with inf/NaN gradients
            (and lowers the loss scale), which is part of normal AMP training.

    In distributed training every rank checks its own loss and gradients and the verdict is all-reduced,
    so all ranks skip the same steps and stay in sync.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_consecutive_bad_steps=10, check_grads=True):
        if max_consecutive_bad_steps < 1:
            raise ValueError(f'max_consecutive_bad_steps must be >= 1, got {max_consecutive_bad_steps}')
        self.max_consecutive_bad_steps = max_consecutive_bad_steps
        self.check_grads = check_grads
        self.consecutive_bad_steps = 0
        self.skipped_steps = 0
        self._loss_finite = True
        self._skipped = False
        self._bad_parameters = []

    def before_train(self, runner):
        """Install the guard on the runner's optimizer wrapper."""
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, OptimWrapper):
            raise TypeError(f'SpeaQNonFiniteGuardHook supports a single OptimWrapper, got '
                            f'{type(wrapper).__name__}')
        self.install(wrapper, runner.model)

    def install(self, wrapper, model):
        """Wrap ``wrapper.backward`` and ``wrapper.step`` (instance attributes shadow the methods that
        ``update_params`` calls)."""
        backward, step = wrapper.backward, wrapper.step
        grads_checked = self.check_grads and not isinstance(wrapper, AmpOptimWrapper)
        names = {parameter: name for name, parameter in model.named_parameters()}

        def guarded_backward(loss, **kwargs):
            # Losses accumulated over several iterations before one step must all be finite.
            self._loss_finite = self._loss_finite and bool(torch.isfinite(loss.detach()).all())
            backward(loss, **kwargs)

        def guarded_step(**kwargs):
            self._bad_parameters = self._non_finite_gradients(wrapper, names) if grads_checked else []
            bad = not self._loss_finite or bool(self._bad_parameters)
            self._loss_finite = True
            if get_world_size() > 1:
                flag = torch.tensor(float(bad), device=_device_of(wrapper))
                all_reduce(flag, op='max')
                bad = bool(flag.item())
            self._skipped = self._skipped or bad
            if not bad:
                step(**kwargs)

        wrapper.backward = guarded_backward
        wrapper.step = guarded_step

    @staticmethod
    def _non_finite_gradients(wrapper, names):
        """Names of the parameters whose gradient holds inf or NaN (one fused check in the usual case)."""
        parameters = [p for group in wrapper.optimizer.param_groups for p in group['params']]
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads or torch.isfinite(torch.nn.utils.get_total_norm(grads)):
            return []
        return [names.get(p, '<unnamed>') for p in parameters
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Report a skipped step; raise after too many in a row."""
        if not self._skipped:
            self.consecutive_bad_steps = 0
            return
        self._skipped = False
        self.consecutive_bad_steps += 1
        self.skipped_steps += 1
        terms = [name for name, value in (outputs or {}).items() if not _is_finite(value)]
        images = _image_names((data_batch or {}).get('data_samples', []))
        parameters = self._bad_parameters
        message = (f'iteration {runner.iter + 1}: non-finite loss or gradient, weight update skipped '
                   f'({self.consecutive_bad_steps} in a row, {self.skipped_steps} in total). '
                   f'Non-finite logged terms: {terms or "none"}; parameters with non-finite gradients: '
                   f'{_shorten(parameters) or "none"}; images of the batch: {images}')
        runner.logger.warning(message)
        if self.consecutive_bad_steps >= self.max_consecutive_bad_steps:
            raise RuntimeError(f'{self.consecutive_bad_steps} consecutive training steps had a non-finite '
                               'loss or gradient (SpeaQNonFiniteGuardHook.max_consecutive_bad_steps). '
                               f'Last: {message}')


def _device_of(wrapper):
    for group in wrapper.optimizer.param_groups:
        for parameter in group['params']:
            return parameter.device
    return torch.device('cpu')


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
