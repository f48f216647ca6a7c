"""Image loading with a configurable policy for images that are missing or cannot be decoded.

A single unreadable file among 100k images should not cost a multi-day run, but it must not vanish silently
either. ``SGGLoadImageFromFile`` is mmcv's ``LoadImageFromFile`` with ``on_unreadable``:

- ``'error'`` (default): stop with :class:`UnreadableImageError`, naming the file and the reason;
- ``'skip'`` (training pipelines only): log a warning naming the file, with the running count of skipped
  images, and return ``None``, which makes mmengine's dataset draw another sample of the *same* dataset in
  its place (so the per-source composition of a batch is unchanged). More than ``max_skipped`` skips in one
  process stop the run: a whole missing image folder is a configuration error, not a few bad files.

Test and validation pipelines must keep ``'error'``: skipping there would silently evaluate fewer images
(mmengine refuses ``None`` at test time anyway, with a less helpful message).
"""
import logging

from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS
from mmengine.logging import print_log

POLICIES = ('error', 'skip')


class UnreadableImageError(RuntimeError):
    """An image file is missing or cannot be decoded."""


@TRANSFORMS.register_module()
class SGGLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that stops or skips (with a counted warning) on unreadable images.

    Args:
        on_unreadable (str): ``'error'`` or ``'skip'`` (see the module docstring).
        max_skipped (int): with ``'skip'``, the number of skipped images in one process (the main process
            or one dataloader worker) beyond which loading stops with an error.
        **kwargs: ``LoadImageFromFile`` arguments (``ignore_empty`` is not accepted: use ``on_unreadable``).
    """

    def __init__(self, on_unreadable='error', max_skipped=100, **kwargs):
        if on_unreadable not in POLICIES:
            raise ValueError(f'SGGLoadImageFromFile: on_unreadable must be one of {POLICIES}, got '
                             f'{on_unreadable!r}')
        if 'ignore_empty' in kwargs:
            raise ValueError('SGGLoadImageFromFile: use on_unreadable="skip" instead of ignore_empty, which '
                             'skips without a trace')
        if not isinstance(max_skipped, int) or max_skipped < 0:
            raise ValueError(f'SGGLoadImageFromFile: max_skipped must be an int >= 0, got {max_skipped!r}')
        super().__init__(**kwargs)
        self.on_unreadable = on_unreadable
        self.max_skipped = max_skipped
        self.skipped = 0

    def transform(self, results):
        """Load the image, or apply the policy when it cannot be read."""
        try:
            return super().transform(results)
        except (OSError, AssertionError, ValueError) as err:
            # mmcv raises FileNotFoundError for a missing file and AssertionError('failed to load image')
            # when the decoder returns nothing.
            reason = f'{type(err).__name__}: {err}'
        path = results.get('img_path')
        if self.on_unreadable == 'error':
            raise UnreadableImageError(
                f'cannot read image {path} ({reason}). Fix or remove the file, or set '
                'on_unreadable="skip" on SGGLoadImageFromFile in the training pipeline to skip such images '
                'with a warning')
        self.skipped += 1
        if self.skipped > self.max_skipped:
            raise UnreadableImageError(
                f'{self.skipped} images could not be read in this process, more than max_skipped='
                f'{self.max_skipped} (last: {path}, {reason}); check data_root and data_prefix.img')
        print_log(f'skipped unreadable image {path} ({reason}); another image of the same dataset takes its '
                  f'place. Unreadable images skipped so far in this process: {self.skipped}',
                  logger='current', level=logging.WARNING)
        return None

    def __repr__(self):
        return (f'{self.__class__.__name__}(on_unreadable={self.on_unreadable!r}, max_skipped='
                f'{self.max_skipped}, {super().__repr__().split("(", 1)[1]}')
