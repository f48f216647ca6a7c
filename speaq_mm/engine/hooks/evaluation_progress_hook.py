"""A progress bar over the test images: mmengine's test loop only logs every ``LoggerHook.interval``
batches."""
import sys

from mmdet.registry import HOOKS
from mmengine.dist import get_dist_info
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar


@HOOKS.register_module()
class SGGEvaluationProgressHook(Hook):
    """Show ``mmengine.utils.ProgressBar`` over the images of the test (and, optionally, validation) loop.

    Only rank 0 draws; it counts its own batches times the world size, which is what all ranks together
    have done when their shards are equal.

    Args:
        on_val (bool): also draw during validation (off by default: training logs are easier to read without).
        file: stream to draw on (default: ``sys.stdout``).
    """

    priority = 'VERY_LOW'

    def __init__(self, on_val=False, file=None):
        self.on_val = on_val
        self.file = file
        self._bar = None

    def _start(self, dataloader):
        rank, self._world_size = get_dist_info()
        if rank == 0:
            self._bar = ProgressBar(len(dataloader.dataset), file=self.file or sys.stdout)

    def _advance(self, outputs):
        if self._bar is not None:
            done = (len(outputs) if outputs is not None else 1) * self._world_size
            remaining = self._bar.task_num - self._bar.completed
            if remaining > 0:  # padded samplers can overshoot the dataset length
                self._bar.update(min(done, remaining))

    def _finish(self):
        if self._bar is not None:
            self._bar.file.write('\n')
            self._bar.file.flush()
            self._bar = None

    def before_test_epoch(self, runner):
        """Start the bar."""
        self._start(runner.test_dataloader)

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Advance by the batch's images."""
        self._advance(outputs)

    def after_test_epoch(self, runner, metrics=None):
        """End the bar's line."""
        self._finish()

    def before_val_epoch(self, runner):
        """Start the bar when ``on_val``."""
        if self.on_val:
            self._start(runner.val_dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        """Advance by the batch's images when ``on_val``."""
        if self.on_val:
            self._advance(outputs)

    def after_val_epoch(self, runner, metrics=None):
        """End the bar's line when ``on_val``."""
        if self.on_val:
            self._finish()
