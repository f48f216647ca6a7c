"""What makes a resumed run the continuation of the interrupted one, besides weights and optimizer.

mmengine's resume restores the weights, the optimizer, the schedulers, the message hub and the seed. This
hook adds the rest (docs/distributed.md, "Resuming"):

* before every training iteration it re-seeds Python's, numpy's and torch's generators from (seed, rank,
  iteration), so dropout and every other draw of the model are those of the uninterrupted run; the samples are
  seeded by the batch samplers (``speaq_mm.datasets.seeded_draws``);
* it stores the batch sampler's state (``state_dict(next_batch)``, e.g. ``SGGRatioBatchSampler``'s per-source
  stream positions) in every checkpoint and hands it back when the run resumes, before the first batch is
  drawn, so that a resumed run with another ratio, batch size or number of GPUs continues every source's pass.

Together with ``SpeaQIterBasedTrainLoop`` (which skips the trained batches without loading them) the weights of
a resumed run equal those of a run never stopped.
"""
from mmdet.registry import HOOKS
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from speaq_mm.datasets.samplers import SGGRatioBatchSampler
from speaq_mm.datasets.seeded_draws import seed_iteration

STATE_KEY = 'ratio_batch_sampler'  # checkpoint['meta'] key of the batch sampler state


@HOOKS.register_module()
class SpeaQExactResumeHook(Hook):
    """Seed every training iteration from (seed, rank, iteration); keep the batch sampler state in checkpoints."""

    priority = 'VERY_HIGH'  # seeds before any other hook of the iteration draws

    def __init__(self):
        self._loaded_state = None

    def before_train(self, runner):
        """Check the loop; restore the batch sampler state of a resumed run."""
        batch_sampler = runner.train_loop.dataloader.batch_sampler
        if getattr(batch_sampler, 'infinite', False) and isinstance(runner.train_loop, EpochBasedTrainLoop):
            raise ValueError('train_dataloader.batch_sampler.infinite=True never ends an epoch of '
                             'EpochBasedTrainLoop; set it to False or use IterBasedTrainLoop')
        if runner.iter > 0 and self._loaded_state is not None and hasattr(batch_sampler, 'load_state_dict'):
            batch_sampler.load_state_dict(self._loaded_state)
            runner.logger.info(f'{type(batch_sampler).__name__} resumes at batch {runner.iter}: '
                               f'{self._loaded_state}')

    def after_load_checkpoint(self, runner, checkpoint):
        """Keep the sampler state of the loaded checkpoint until ``before_train`` knows whether it resumed."""
        self._loaded_state = checkpoint.get('meta', {}).get(STATE_KEY)

    def before_save_checkpoint(self, runner, checkpoint):
        """Store the batch sampler state for the first batch the checkpoint has not trained on."""
        batch_sampler = runner.train_loop.dataloader.batch_sampler
        if isinstance(batch_sampler, SGGRatioBatchSampler):
            checkpoint['meta'][STATE_KEY] = batch_sampler.state_dict(checkpoint['meta']['iter'])

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        """Seed this iteration's draws."""
        seed_iteration(runner.seed, get_dist_info()[0], runner.iter)
