"""Per-batch source mix in the training log, and the RatioBatchSampler's stream state in checkpoints."""
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from speaq_mm.datasets.samplers import RatioBatchSampler, source_names

STATE_KEY = 'ratio_batch_sampler'


@HOOKS.register_module()
class SourceMixHook(Hook):
    """Log the source mix of every global batch; save and restore the RatioBatchSampler's state.

    It is one of the default hooks of every config (configs/_base_/default_runtime.py) and works only when the
    training dataset is a ConcatDataset of several sources (``SGGConcatDataset``); otherwise it does nothing.

    After each training iteration it counts, over all ranks, the samples of each source (their ``source``
    metainfo) and their ``sample_weight``, and puts ``source_frac_<name>`` (share of the global batch) and
    ``source_weight_<name>`` (mean sample weight of that source's samples, only when it has some) in the message
    hub, which LoggerHook prints with the losses. They are plain floats outside the loss dict, so they can
    never be summed into the objective.

    With a ``RatioBatchSampler`` it also stores the sampler's state (seed and per-source stream
    positions) in every checkpoint's ``meta`` and, when a run resumes, hands it back to the sampler before
    the first batch is drawn (see docs/multi_dataset.md, "Resuming"); and it refuses an infinite sampler
    under ``EpochBasedTrainLoop``, whose epochs would never end.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL), so the values of this iteration are printed

    def __init__(self):
        self._sources = None
        self._loaded_state = None

    def before_train(self, runner):
        """Read the source names; check the loop; restore the sampler state of a resumed run."""
        dataloader = runner.train_loop.dataloader
        if not hasattr(dataloader.dataset, 'datasets'):
            self._sources = None
            return
        self._sources = list(dict.fromkeys(source_names(dataloader.dataset)))
        batch_sampler = dataloader.batch_sampler
        if not isinstance(batch_sampler, RatioBatchSampler):
            return
        if batch_sampler.infinite and isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError('train_dataloader.batch_sampler.infinite=True never ends an epoch of '
                             'EpochBasedTrainLoop; set it to False or use IterBasedTrainLoop')
        if runner.iter > 0 and self._loaded_state is not None:
            batch_sampler.load_state_dict(self._loaded_state)
            runner.logger.info(f'RatioBatchSampler resumes at batch {runner.iter}: {self._loaded_state}')

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the sampler state of the loaded checkpoint until ``before_train`` knows whether it resumed."""
        self._loaded_state = checkpoint.get('meta', {}).get(STATE_KEY)

    def before_save_checkpoint(self, runner, checkpoint):
        """Store the sampler state for the first batch the checkpoint has not trained on."""
        batch_sampler = runner.train_loop.dataloader.batch_sampler
        if isinstance(batch_sampler, RatioBatchSampler):
            checkpoint['meta'][STATE_KEY] = batch_sampler.state_dict(checkpoint['meta']['iter'])

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Put the global batch's source fractions and mean sample weights in the message hub."""
        if self._sources is None:
            return
        num_sources = len(self._sources)
        tallies = torch.zeros(2 * num_sources, dtype=torch.float64)
        for sample in data_batch['data_samples']:
            meta = sample.metainfo
            if 'source' not in meta or 'sample_weight' not in meta:
                raise KeyError('SourceMixHook: a training sample has no "source"/"sample_weight" metainfo; the '
                               'packing transform must keep both (meta_keys of PackSGGInputs)')
            if meta['source'] not in self._sources:
                raise KeyError(f'SourceMixHook: sample source "{meta["source"]}" is not one of the training '
                               f'sources {self._sources}')
            index = self._sources.index(meta['source'])
            tallies[index] += 1
            tallies[num_sources + index] += float(meta['sample_weight'])
        all_reduce(tallies)
        counts, weight_sums = tallies[:num_sources], tallies[num_sources:]
        for name, count, weight_sum in zip(self._sources, counts.tolist(), weight_sums.tolist()):
            runner.message_hub.update_scalar(f'train/source_frac_{name}', count / counts.sum().item())
            if count:
                runner.message_hub.update_scalar(f'train/source_weight_{name}', weight_sum / count)
