"""Stop a run whose training batches have lost every relation of a source in the pipeline.

A dataset whose relations are all filtered out already fails when it loads (``VGH5Dataset``: empty split, or
no relations for the statistics). The training pipeline can still drop them later: a crop or a minimum box
size that removes the boxes takes their relations along (``SGGPackInputs``). The model then trains without
complaint on "no relation" targets only and learns to predict nothing. With several sources, one source's
pipeline can do that alone while the others keep the batches' relation count up, and the model silently
stops learning from that source. This hook counts the ground-truth relations of every global batch per
source (the ``source`` metainfo of ``SGGConcatDataset``'s datasets; one count for a single dataset), warns
when a source's samples in a batch have none and stops the run after ``max_consecutive_empty_batches`` such
batches of a source in a row (batches without a sample of the source do not count). Batches without relation
annotations at all (no ``gt_relations`` field: a detector's pipeline) are not counted.
"""
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

from speaq_mm.datasets import source_names


@HOOKS.register_module()
class SpeaQEmptyRelationsGuardHook(Hook):
    """Warn about training batches without any ground-truth relation of a source; raise after too many in a row.

    Args:
        max_consecutive_empty_batches (int): raise after this many consecutive global batches (all ranks
            together) whose samples of one source have no relation.
    """

    priority = 'NORMAL'

    def __init__(self, max_consecutive_empty_batches=10):
        if not isinstance(max_consecutive_empty_batches, int) or max_consecutive_empty_batches < 1:
            raise ValueError('max_consecutive_empty_batches must be an int >= 1, got '
                             f'{max_consecutive_empty_batches!r}')
        self.max_consecutive_empty_batches = max_consecutive_empty_batches
        self.sources = None  # the training sources (None: the samples are counted together)
        self.consecutive_empty_batches = {}  # source (or None) -> batches in a row without a relation

    def before_train(self, runner):
        """Read the training sources, in the same order on every rank."""
        dataset = runner.train_dataloader.dataset
        self.sources = list(dict.fromkeys(source_names(dataset))) if hasattr(dataset, 'datasets') else None

    def _source_index(self, sample):
        if self.sources is None:
            return 0
        source = sample.metainfo.get('source')
        if source not in self.sources:
            raise KeyError(f'SpeaQEmptyRelationsGuardHook: a training sample has source {source!r}, not one of '
                           f'the training sources {self.sources}')
        return self.sources.index(source)

    def before_train_iter(self, runner, batch_idx=None, data_batch=None):
        """Count the batch's samples and relations per source over all ranks."""
        samples = (data_batch or {}).get('data_samples', [])
        if not any('gt_relations' in sample for sample in samples if hasattr(sample, 'keys')):
            return
        names = self.sources or [None]
        tallies = torch.zeros(2 * len(names), dtype=torch.float64)  # samples, then relations, per source
        for sample in samples:
            index = self._source_index(sample)
            tallies[index] += 1
            tallies[len(names) + index] += len(sample.gt_relations) if 'gt_relations' in sample else 0
        all_reduce(tallies)
        for index, name in enumerate(names):
            sample_count, relation_count = tallies[index].item(), tallies[len(names) + index].item()
            if sample_count == 0:
                continue
            if relation_count > 0:
                self.consecutive_empty_batches[name] = 0
                continue
            in_a_row = self.consecutive_empty_batches.get(name, 0) + 1
            self.consecutive_empty_batches[name] = in_a_row
            images = [s.metainfo.get('img_path', s.metainfo.get('img_id')) for s in samples
                      if name is None or s.metainfo.get('source') == name]
            which = '' if name is None else f' in its samples of source "{name}"'
            message = (f'iteration {runner.iter + 1}: the training batch has no ground-truth relation left after '
                       f'the pipeline{which} ({in_a_row} such batches in a row; images on this rank: {images})')
            if in_a_row >= self.max_consecutive_empty_batches:
                raise RuntimeError(
                    f'{message}. Every relation is being filtered out{"" if name is None else f" of {name}"}: '
                    'check the transforms that drop boxes (crops, SGGFilterEmptyInstances.min_size) and the '
                    'dataset filters (SpeaQEmptyRelationsGuardHook.max_consecutive_empty_batches)')
            runner.logger.warning(message)
