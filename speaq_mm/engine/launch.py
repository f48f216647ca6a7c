"""Distributed launch on machines without CUDA.

mmengine 0.10.7's ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` whatever the backend, and
``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]``, which DDP rejects for CPU modules. On a machine with
CUDA nothing here changes; without it, the gloo process group is created before the Runner (which then
skips ``init_dist``) and the DDP wrapper is told to use no device ids.
"""
import os

import torch
import torch.distributed as torch_dist


def prepare_launch(cfg, launcher):
    """Adjust ``cfg`` (and the process group) so ``Runner.from_cfg(cfg)`` works for ``launcher``.

    Args:
        cfg (mmengine.Config): the run's config; ``cfg.launcher`` is set, and on CPU
            ``env_cfg.dist_cfg.backend`` and ``model_wrapper_cfg.device_ids`` too.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA on this version of mmengine; on a machine without GPUs '
            'start the processes with torchrun (tools/dist_train.sh), which uses --launcher pytorch.')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))
