"""Change the sample weight of one data source linearly over training (e.g. lean on synthetic data early and
on real data late).

A source's sample weight is fixed per source (``SGGConcatDataset(sample_weights=...)``) and copied into every
sample.
This hook rescales it batch by batch: before each training step it multiplies the ``sample_weight`` metainfo
of that source's samples by a factor going linearly from ``start_factor`` at iteration ``begin`` to
``end_factor`` at ``end`` (constant outside), the way mmengine's ``LinearLR`` moves a learning rate. The model
reads the changed weight (docs/model.md, "Per-sample loss weights"), and ``SGGSourceMixHook`` logs it as
``source_weight_<source>``.
"""
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook

from speaq_mm.datasets import source_names


@HOOKS.register_module()
class SGGSampleWeightRampHook(Hook):
    """Multiply the sample weight of ``source``'s samples by a factor that moves linearly over iterations.

    Args:
        source (str): the ``source`` name of the dataset whose samples are reweighted (e.g. ``'synthetic'``).
        start_factor (float): the factor up to iteration ``begin``.
        end_factor (float): the factor from iteration ``end`` on.
        begin (int): first iteration of the ramp.
        end (int, optional): last iteration of the ramp (default: the end of training).
    """

    priority = 'ABOVE_NORMAL'  # before any hook that reads the weights of the batch

    def __init__(self, source: str = 'synthetic', start_factor: float = 1.0, end_factor: float = 0.0,
                 begin: int = 0, end: Optional[int] = None) -> None:
        if start_factor < 0 or end_factor < 0:
            raise ValueError(f'SGGSampleWeightRampHook: start_factor and end_factor must be >= 0, got '
                             f'{start_factor} and {end_factor}')
        if begin < 0 or (end is not None and end <= begin):
            raise ValueError(f'SGGSampleWeightRampHook: need 0 <= begin < end, got begin={begin}, end={end}')
        self.source = source
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.begin = begin
        self.end = end

    def factor(self, iteration: int, max_iters: int) -> float:
        """The factor at ``iteration`` (0-based) of a run of ``max_iters`` iterations."""
        end = self.end if self.end is not None else max_iters
        if end <= self.begin:
            return self.end_factor
        progress = min(max((iteration - self.begin) / (end - self.begin), 0.0), 1.0)
        return self.start_factor + (self.end_factor - self.start_factor) * progress

    def before_train(self, runner) -> None:
        """Check that the training data has the source."""
        sources = source_names(runner.train_dataloader.dataset)
        if self.source not in sources:
            raise ValueError(f'SGGSampleWeightRampHook: source "{self.source}" is not one of the training '
                             f'sources {sources} (custom_hooks in the config)')

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        """Rescale the sample weight of the source's samples in the batch about to be trained on."""
        factor = self.factor(runner.iter, runner.max_iters)
        for sample in (data_batch or {}).get('data_samples', []):
            if sample.metainfo.get('source') == self.source:
                sample.set_metainfo(dict(sample_weight=float(sample.metainfo['sample_weight']) * factor))
