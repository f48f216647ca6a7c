"""Stop a run whose training batches have lost every relation in the pipeline.

A dataset whose relations are all filtered out already fails when it loads (``VGH5Dataset``: empty split, or
no relations for the statistics). The training pipeline can still drop them later: a crop or a minimum box
size that removes the boxes takes their relations along (``SGGPackInputs``). The model then trains without
complaint on "no relation" targets only and learns to predict nothing. This hook counts the ground-truth
relations of every global batch, warns when a batch has none and stops the run after
``max_consecutive_empty_batches`` such batches in a row. Batches without relation annotations at all (no
``gt_relations`` field: a detector's pipeline) are not counted.
"""
import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce
from mmengine.hooks import Hook


@HOOKS.register_module()
class SpeaQEmptyRelationsGuardHook(Hook):
    """Warn about training batches without any ground-truth relation; raise after too many in a row.

    Args:
        max_consecutive_empty_batches (int): raise after this many consecutive global batches (all ranks
            together) without a relation.
    """

    priority = 'NORMAL'

    def __init__(self, max_consecutive_empty_batches=10):
        if not isinstance(max_consecutive_empty_batches, int) or max_consecutive_empty_batches < 1:
            raise ValueError('max_consecutive_empty_batches must be an int >= 1, got '
                             f'{max_consecutive_empty_batches!r}')
        self.max_consecutive_empty_batches = max_consecutive_empty_batches
        self.consecutive_empty_batches = 0

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Count the batch's relations over all ranks."""
        samples = (data_batch or {}).get('data_samples', [])
        if not any('gt_relations' in sample for sample in samples if hasattr(sample, 'keys')):
            return
        count = torch.tensor([float(sum(len(s.gt_relations) if 'gt_relations' in s else 0 for s in samples))])
        all_reduce(count)
        if count.item() > 0:
            self.consecutive_empty_batches = 0
            return
        self.consecutive_empty_batches += 1
        images = [s.metainfo.get('img_path', s.metainfo.get('img_id')) for s in samples]
        message = (f'iteration {runner.iter + 1}: the training batch has no ground-truth relation left after '
                   f'the pipeline ({self.consecutive_empty_batches} such batches in a row; images on this rank: '
                   f'{images})')
        if self.consecutive_empty_batches >= self.max_consecutive_empty_batches:
            raise RuntimeError(
                f'{message}. Every relation is being filtered out: check the transforms that drop boxes '
                '(crops, SGGFilterEmptyInstances.min_size) and the dataset filters '
                '(SpeaQEmptyRelationsGuardHook.max_consecutive_empty_batches)')
        runner.logger.warning(message)
