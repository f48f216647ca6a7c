"""mmdet's ``AspectRatioBatchSampler``, resumable at any batch and with seeded samples.

The single-source recipes group images by aspect ratio with mmdet's batch sampler. Its batches depend on the
whole epoch before them (the ratio buckets fill as the sampler's permutation goes by), so a resumed run can
only find batch ``n`` by going through the epochs before it; this subclass does that on indices alone (no image
is read) in :meth:`SGGAspectRatioBatchSampler.resume_at`, and seeds every sample for its augmentation by (seed,
epoch, batch, rank, position) (``seeded_draws``). The batches themselves are mmdet's.
"""
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info

from ..seeded_draws import seeded_batch


@DATA_SAMPLERS.register_module()
class SGGAspectRatioBatchSampler(AspectRatioBatchSampler):
    """``AspectRatioBatchSampler`` (same arguments) with :meth:`resume_at` and seeded sample indices.

    The seed is the sampler's (``DefaultSampler.seed``, the run's ``randomness.seed``), the epoch the sampler's
    (set by mmengine's loops and ``DistSamplerSeedHook``).
    """

    def __init__(self, sampler, batch_size, drop_last=False):
        super().__init__(sampler, batch_size, drop_last=drop_last)
        self.rank = get_dist_info()[0]
        self._skip = 0

    def _batches(self):
        """mmdet's batches of the sampler's current epoch."""
        return super().__iter__()

    def __iter__(self):
        """Yield the epoch's batches, from the one :meth:`resume_at` named if it was called."""
        epoch, seed = getattr(self.sampler, 'epoch', 0), getattr(self.sampler, 'seed', 0) or 0
        skip, self._skip = self._skip, 0
        for batch_index, batch in enumerate(self._batches()):
            if batch_index >= skip:
                yield seeded_batch(batch, seed, batch_index, self.rank, epoch=epoch)

    def resume_at(self, batch_index):
        """Make the next ``__iter__`` start at batch ``batch_index`` of the run (0-based) and return its epoch.

        Counts the batches of every earlier epoch from the sampler's indices; no image is read.
        """
        epoch, remaining = 0, batch_index
        while True:
            self.sampler.set_epoch(epoch)
            count = sum(1 for _ in self._batches())
            if remaining < count or count == 0:
                break
            remaining -= count
            epoch += 1
        self._skip = remaining
        return epoch
