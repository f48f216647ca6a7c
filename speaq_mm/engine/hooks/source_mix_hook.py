"""Per-batch source mix of the training batches, in the log."""
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from speaq_mm.datasets import source_names
from speaq_mm.models.utils import read_sample_weight


@HOOKS.register_module()
class SGGSourceMixHook(Hook):
    """Log the source mix of every global batch.

    It is one of the default hooks of every config (configs/_base_/default_runtime.py) and works only when the
    training dataset is a ConcatDataset of several sources (``SGGConcatDataset``); otherwise it does nothing.

    After each training iteration it counts, over all ranks, the samples of each source (their ``source``
    metainfo) and their ``sample_weight``, and puts ``source_frac_<name>`` (share of the global batch) and
    ``source_weight_<name>`` (mean sample weight of that source's samples, only when it has some) in the message
    hub, which LoggerHook prints with the losses. They are plain floats outside the loss dict, so they can
    never be summed into the objective. (The batch sampler's state in checkpoints is ``SpeaQExactResumeHook``'s.)
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), so the values of this iteration are printed

    def __init__(self):
        self._sources = None

    def before_train(self, runner):
        """Read the source names."""
        dataset = runner.train_loop.dataloader.dataset
        self._sources = list(dict.fromkeys(source_names(dataset))) if hasattr(dataset, 'datasets') else None

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Put the global batch's source fractions and mean sample weights in the message hub."""
        if self._sources is None:
            return
        num_sources = len(self._sources)
        tallies = torch.zeros(2 * num_sources, dtype=torch.float64)
        for sample in data_batch['data_samples']:
            meta = sample.metainfo
            if 'source' not in meta:
                raise KeyError('SGGSourceMixHook: a training sample has no "source" metainfo; the packing '
                               'transform must keep it (meta_keys of SGGPackInputs)')
            if meta['source'] not in self._sources:
                raise KeyError(f'SGGSourceMixHook: sample source "{meta["source"]}" is not one of the training '
                               f'sources {self._sources}')
            index = self._sources.index(meta['source'])
            tallies[index] += 1
            tallies[num_sources + index] += read_sample_weight(sample)
        all_reduce(tallies)
        counts, weight_sums = tallies[:num_sources], tallies[num_sources:]
        for name, count, weight_sum in zip(self._sources, counts.tolist(), weight_sums.tolist()):
            runner.message_hub.update_scalar(f'train/source_frac_{name}', count / counts.sum().item())
            if count:
                runner.message_hub.update_scalar(f'train/source_weight_{name}', weight_sum / count)
