"""Optimizer wrappers that skip the weight update of a step whose loss or gradients are not finite.

One NaN in a loss term or a gradient reaches every weight through AdamW's moments and the model never
recovers; mmengine's gradient clipping does not stop it (the clipped norm is NaN too). These wrappers are
mmengine's ``OptimWrapper`` and ``AmpOptimWrapper`` with ``backward`` and ``step`` extended: a non-finite loss
or gradient skips the update (the gradients are zeroed by ``update_params`` as usual) and puts the model's
buffers back as they were before the step's forward passes (a NaN born inside the forward reaches the
BatchNorm running statistics before any loss is computed), and the wrapper records why;
``SpeaQNonFiniteGuardHook`` (``default_hooks.non_finite_guard``) logs each skipped step and stops the run after
too many in a row. In distributed training every rank checks its own loss and gradients and the verdict
is all-reduced, so all ranks skip the same steps and stay in sync.
"""
from contextlib import contextmanager

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.dist import all_reduce, get_world_size
from mmengine.optim import AmpOptimWrapper, OptimWrapper


class NonFiniteGuardMixin:
    """``backward`` and ``step`` of an ``OptimWrapper`` that skip the update after a non-finite loss or gradient.

    After every ``update_params``, :meth:`pop_skipped_step` tells whether the step was skipped and which
    parameters had non-finite gradients. A skipped step leaves the model as it was before the step, buffers
    included: :meth:`optim_context` (which ``train_step`` enters around every forward) copies the buffers at
    the first forward of each step, a step is also skipped when a buffer is no longer finite, and a skipped step
    copies them back. The buffers are the BatchNorm statistics and the like, a small fraction of the weights.

    Args:
        check_grads (bool): also check the gradients before each update (one fused norm in the usual case).
            The AMP wrapper never checks them here: its GradScaler already skips steps with inf/NaN gradients
            (and lowers the loss scale), which is part of normal AMP training.
    """

    checks_grads_itself = True

    def __init__(self, *args, check_grads=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.check_grads = check_grads and self.checks_grads_itself
        self.parameter_names = {}
        self._loss_finite = None  # a device bool over the losses since the last step; None before the first
        self._skipped = False
        self._bad_parameters = []
        self._buffers_before_step = []

    @contextmanager
    def optim_context(self, model):
        """The wrapper's context for a forward pass; keeps the buffers as they were before the step."""
        if self._inner_count % self._accumulative_counts == 0:  # first forward of an optimizer step
            self._buffers_before_step = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
        with super().optim_context(model):
            yield

    def backward(self, loss, **kwargs):
        """Backward, remembering whether the loss was finite (every loss accumulated before one step).

        The verdict stays on the device until `step` reads it, so the backward pass is queued without waiting
        for the forward pass to finish (a read here would stall a GPU once per micro-batch)."""
        finite = torch.isfinite(loss.detach()).all()
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite
        super().backward(loss, **kwargs)

    def step(self, **kwargs):
        """The optimizer step, unless this rank or any other saw a non-finite loss, gradient or buffer; a skipped
        step puts the buffers back as they were before its forward passes (BatchNorm statistics included).

        One read of the device per step: the loss verdicts, the gradients' and the buffers' total norms are
        combined (and all-reduced over the ranks) on the device first."""
        finite = self._loss_finite
        self._loss_finite = None
        if finite is None:
            finite = torch.ones((), dtype=torch.bool, device=self._device())
        grads = [p.grad for group in self.optimizer.param_groups for p in group['params']
                 if p.grad is not None] if self.check_grads else []
        if grads:
            finite = finite & torch.isfinite(torch.nn.utils.get_total_norm(grads)).to(finite.device)
        buffers = [buffer for buffer, _ in self._buffers_before_step if buffer.is_floating_point()]
        if buffers:
            finite = finite & torch.isfinite(torch.nn.utils.get_total_norm(buffers)).to(finite.device)
        if get_world_size() > 1:
            flag = (~finite).float()
            all_reduce(flag, op='max')
            bad = bool(flag.item())
        else:
            bad = not bool(finite)
        self._bad_parameters = self._non_finite_gradients() if bad and self.check_grads else []
        self._skipped = self._skipped or bad
        if bad:
            with torch.no_grad():
                for buffer, before in self._buffers_before_step:
                    buffer.copy_(before)
        else:
            super().step(**kwargs)
        self._buffers_before_step = []

    def pop_skipped_step(self):
        """``(skipped, names of parameters with non-finite gradients)`` since the last call."""
        skipped, self._skipped = self._skipped, False
        return skipped, self._bad_parameters

    def _non_finite_gradients(self):
        parameters = [p for group in self.optimizer.param_groups for p in group['params']]
        return [self.parameter_names.get(p, '<unnamed>') for p in parameters
                if p.grad is not None and not bool(torch.isfinite(p.grad).all())]

    def _device(self):
        for group in self.optimizer.param_groups:
            for parameter in group['params']:
                return parameter.device
        return torch.device('cpu')


@OPTIM_WRAPPERS.register_module()
class SpeaQNonFiniteGuardOptimWrapper(NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` (same arguments, plus ``check_grads``) that skips non-finite steps."""


@OPTIM_WRAPPERS.register_module()
class SpeaQNonFiniteGuardAmpOptimWrapper(NonFiniteGuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` (same arguments) that skips steps with a non-finite loss."""

    checks_grads_itself = False
