"""mmdet's ``AspectRatioBatchSampler`` batches, as a pure function of the epoch, resumable at any batch.

The single-source recipes group images by aspect ratio the way mmdet's batch sampler does. mmdet keeps its
two ratio buckets on the instance (``self._aspect_ratio_buckets``), so an iterator that is abandoned part-way
leaves indices there for the next one: the dataloader iterator mmengine's loop builds before a resume
prefetches a few batches and is then dropped, and the next pass over the epoch starts with those indices in
its buckets (one batch more in the epoch, every later batch shifted). This subclass fills buckets local to
each pass instead, so the batches of an epoch depend only on the sampler's permutation, itself a function of
(seed, epoch): whatever iterators came before, with any number of workers. Batches of a pass that runs to
its end are exactly mmdet's.

A resumed run finds batch ``n`` by counting the batches of the epochs before it on indices alone (no image
is read) in :meth:`SGGAspectRatioBatchSampler.resume_at`; every sample is seeded for its augmentation by
(seed, epoch, batch, rank, position) (``seeded_draws``).
"""
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info

from ..seeded_draws import seeded_batch


@DATA_SAMPLERS.register_module()
class SGGAspectRatioBatchSampler(AspectRatioBatchSampler):
    """``AspectRatioBatchSampler`` (same arguments) with :meth:`resume_at`, seeded sample indices and no
    state carried from one pass to the next.

    The seed is the sampler's (``DefaultSampler.seed``, the run's ``randomness.seed``), the epoch the sampler's
    (set by mmengine's loops and ``DistSamplerSeedHook``).
    """

    def __init__(self, sampler, batch_size, drop_last=False):
        super().__init__(sampler, batch_size, drop_last=drop_last)
        self.rank = get_dist_info()[0]
        self._skip = 0

    def _batches(self):
        """The batches of the sampler's current epoch: mmdet's grouping (width < height or not), with the
        buckets local to this pass (mmdet's live on the instance, see the module docstring)."""
        buckets = ([], [])
        for index in self.sampler:
            info = self.sampler.dataset.get_data_info(index)
            bucket = buckets[0 if info['width'] < info['height'] else 1]
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield list(bucket)
                bucket.clear()
        left = buckets[0] + buckets[1]
        while left:  # mmdet's rule: the last chunk (full or not) only without drop_last
            if len(left) <= self.batch_size:
                if not self.drop_last:
                    yield left
                return
            yield left[:self.batch_size]
            left = left[self.batch_size:]

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
