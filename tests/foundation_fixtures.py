"""A toy regressor and dataset for testing the runtime plumbing without the scene graph model.

Imported through ``custom_imports`` by the configs that ``write_toy_config`` writes, so subprocesses started by
torchrun register the same modules.
"""
import os.path as osp
import textwrap

import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import BaseDataset
from mmengine.model import BaseModel

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@MODELS.register_module()
class SpeaQTestToyRegressor(BaseModel):
    """Fits y = 2x with one weight; enough to move an optimizer and produce a checkpoint."""

    def __init__(self, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        prediction = self.weight * x
        if mode == 'loss':
            return dict(loss=((prediction - 2 * x) ** 2).mean())
        return prediction


@DATASETS.register_module()
class SpeaQTestToyDataset(BaseDataset):
    """Sixteen scalar samples."""

    def __init__(self, **kwargs):
        super().__init__(serialize_data=False, lazy_init=False, **kwargs)

    def load_data_list(self):
        return [dict(inputs=torch.tensor([float(i + 1)])) for i in range(16)]

    def prepare_data(self, idx):
        return dict(inputs=self.get_data_info(idx)['inputs'])


def write_toy_config(folder, max_iters, checkpoint_interval=2):
    """Write a config that inherits our default runtime and trains the toy regressor; return its path."""
    path = osp.join(folder, 'toy_regressor.py')
    with open(path, 'w') as f:
        f.write(textwrap.dedent(f"""\
            _base_ = [{osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py')!r}]
            custom_imports = dict(imports=['speaq_mm', 'tests.foundation_fixtures'], allow_failed_imports=False)
            model = dict(type='SpeaQTestToyRegressor')
            train_dataloader = dict(
                batch_size=2, num_workers=0,
                dataset=dict(type='SpeaQTestToyDataset'),
                sampler=dict(type='DefaultSampler', shuffle=True))
            train_cfg = dict(type='IterBasedTrainLoop', max_iters={max_iters})
            optim_wrapper = dict(type='SpeaQNonFiniteGuardOptimWrapper', optimizer=dict(type='SGD', lr=0.001))
            default_hooks = dict(
                checkpoint=dict(type='CheckpointHook', interval={checkpoint_interval}, by_epoch=False),
                logger=dict(type='LoggerHook', interval=1))
            log_processor = dict(by_epoch=False)
            """))
    return path
