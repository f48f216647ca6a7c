"""An ``IterBasedTrainLoop`` that resumes at the batch it stopped at without loading the batches before it.

mmengine 0.10.7's ``IterBasedTrainLoop`` resumes by drawing and discarding every batch already trained on,
through the full load / augment / collate pipeline: minutes to hours at a late iteration, on every resume.
``SpeaQIterBasedTrainLoop`` keeps mmengine's loop and only changes what those discarded draws cost: the batch
sampler is moved to the resumed batch at the index level (``resume_at``, which ``SGGRatioBatchSampler`` does in
constant time and ``SGGAspectRatioBatchSampler`` from indices alone), and the discarded draws return nothing.
A batch sampler without ``resume_at`` falls back to mmengine's replay, with a warning.
"""
import logging

from mmdet.registry import LOOPS
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

# The iterator IterBasedTrainLoop itself uses (private in mmengine 0.10.7); it restarts the dataloader at each
# epoch end.
from .mmengine_compat import InfiniteDataloaderIterator


@LOOPS.register_module()
class SpeaQIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` (same arguments) whose resume skips trained batches at the index level."""

    def run(self):
        """Train; on a resumed run, first move the data stream to the first batch not yet trained on."""
        if self._iter > 0:
            self.dataloader_iterator = _SkipTrainedBatches(self, self._iter, self.dataloader_iterator)
        return super().run()


class _SkipTrainedBatches:
    """Stands in for the dataloader iterator while ``IterBasedTrainLoop.run`` discards the trained batches.

    The first draw happens after the ``before_train`` hooks (which restore the sampler's state), so the batch
    sampler is moved then; the ``count`` discarded draws return ``None`` and the last one hands the loop a
    fresh iterator that starts at batch ``count``.
    """

    def __init__(self, loop, count, replay):
        self.loop, self.count, self.replay = loop, count, replay
        self.calls, self.resumed = 0, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.calls == 0:
            self._move_the_stream()
        self.calls += 1
        if self.resumed is None:  # mmengine's replay
            batch = next(self.replay)
            if self.calls == self.count:
                self.loop.dataloader_iterator = self.replay
            return batch
        if self.calls == self.count:
            self.loop.dataloader_iterator = self.resumed
        return None

    def _move_the_stream(self):
        dataloader = self.loop.dataloader
        batch_sampler = getattr(dataloader, 'batch_sampler', None)
        if not hasattr(batch_sampler, 'resume_at') or InfiniteDataloaderIterator is None:
            print_log(f'{type(batch_sampler).__name__} cannot start at a given batch: resuming by loading and '
                      f'discarding the {self.count} batches already trained on (use SGGRatioBatchSampler or '
                      'SGGAspectRatioBatchSampler to skip them)', logger='current', level=logging.WARNING)
            return
        epoch = batch_sampler.resume_at(self.count)
        # The iterator made before the checkpoint was loaded prefetched from the old position: drop it.
        old = getattr(self.replay, '_iterator', None)
        if not getattr(dataloader, 'persistent_workers', False) and hasattr(old, '_shutdown_workers'):
            old._shutdown_workers()
        self.resumed = InfiniteDataloaderIterator(dataloader)
        self.resumed._epoch = epoch  # so that the next epoch end continues the count
        self.replay = None
        print_log(f'resuming at batch {self.count} (epoch {epoch} of the batch sampler): the trained batches are '
                  'skipped without being loaded', logger='current')
