"""Speed options for a GPU, off by default (docs/benchmarks.md, "Speed options"): channels-last memory for the
backbone, ``torch.compile`` of the backbone and encoder, and bf16 autocast. Each one keeps the model's outputs
within the tolerance stated in docs/benchmarks.md of the fp32 outputs (tests/test_models_speed_options.py
checks it on CPU); whether it is faster depends on the device, which is why none is on by default.
"""
import contextlib

import torch


def use_channels_last(model):
    """Store the backbone's and input projection's weights channels-last and feed the backbone channels-last
    images (cuDNN's fast convolution layout on tensor-core GPUs). Returns ``model``."""
    for module in (model.backbone, getattr(model, 'neck', None)):
        if module is not None:
            module.to(memory_format=torch.channels_last)
    model.backbone.register_forward_pre_hook(_inputs_channels_last)
    return model


def _inputs_channels_last(module, args):
    return (args[0].contiguous(memory_format=torch.channels_last), *args[1:])


def compile_backbone_and_encoder(model, **compile_kwargs):
    """``torch.compile`` the backbone and the encoder in place (``nn.Module.compile``, so that parameter
    names and checkpoints are unchanged); the decoder, matcher and post-processing stay eager (their shapes
    change with the number of GT relations). Returns ``model``."""
    model.backbone.compile(**compile_kwargs)
    model.encoder.compile(**compile_kwargs)
    return model


def bf16_autocast(device):
    """The bf16 autocast context for ``device`` (``'cpu'`` or ``'cuda'``); for training with mmengine use
    ``optim_wrapper=dict(type='SpeaQNonFiniteGuardAmpOptimWrapper', dtype='bfloat16')`` instead."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def speed_options_context(model, device, bf16=False, channels_last=False, compile_modules=False):
    """Apply the chosen options to ``model`` and return the context to run it in (autocast or nothing)."""
    if channels_last:
        use_channels_last(model)
    if compile_modules:
        compile_backbone_and_encoder(model)
    return bf16_autocast(device) if bf16 else contextlib.nullcontext()
