"""mmdet's ``GIoULoss`` computed with the round-trip-free `bbox_overlaps` of ``models/utils/box_overlaps.py``."""
from mmdet.models.losses import GIoULoss
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

from ..utils.box_overlaps import bbox_overlaps


@MODELS.register_module()
class SGGGIoULoss(GIoULoss):
    """mmdet's ``GIoULoss`` (same arguments and values) computed with the round-trip-free
    ``speaq_mm.models.utils.box_overlaps.bbox_overlaps``."""

    def forward(self, pred, target, weight=None, avg_factor=None, reduction_override=None, **kwargs):
        """As mmdet's; calls with a ``weight`` go to mmdet's own implementation (its weight checks read the
        weights back to the host anyway)."""
        if weight is not None:
            return super().forward(pred, target, weight, avg_factor, reduction_override, **kwargs)
        reduction = reduction_override or self.reduction
        loss = 1 - bbox_overlaps(pred, target, mode='giou', is_aligned=True, eps=self.eps)
        return self.loss_weight * weight_reduce_loss(loss, None, reduction, avg_factor)
