"""The round-trip-free box overlaps and SGGGIoULoss give exactly mmdet's values (degenerate boxes included)."""
import pytest
import torch
from mmdet.models.losses import GIoULoss
from mmdet.structures.bbox import bbox_overlaps as mmdet_bbox_overlaps

from speaq_mm.models.losses import SGGGIoULoss
from speaq_mm.models.utils.box_overlaps import bbox_overlaps


def random_boxes(*shape, seed):
    gen = torch.Generator().manual_seed(seed)
    corner = torch.rand(*shape, 2, generator=gen)
    boxes = torch.cat([corner, corner + torch.rand(*shape, 2, generator=gen) * 0.5], dim=-1)
    boxes[..., 0, 2:] = boxes[..., 0, :2]  # an empty box: the union and enclosing area fall back to eps
    return boxes


@pytest.mark.parametrize('mode', ['iou', 'giou'])
@pytest.mark.parametrize('aligned', [False, True])
def test_overlaps_equal_mmdet(mode, aligned):
    first = random_boxes(3, 7, seed=0)
    second = random_boxes(3, 7 if aligned else 5, seed=1)
    ours = bbox_overlaps(first, second, mode=mode, is_aligned=aligned)
    expected = mmdet_bbox_overlaps(first, second, mode=mode, is_aligned=aligned)
    assert ours.shape == expected.shape
    assert torch.equal(ours, expected)


def test_giou_loss_equals_mmdet():
    pred, target = random_boxes(9, seed=2), random_boxes(9, seed=3)
    for reduction in ('none', 'mean', 'sum'):
        assert torch.equal(SGGGIoULoss(loss_weight=2.0)(pred, target, reduction_override=reduction),
                           GIoULoss(loss_weight=2.0)(pred, target, reduction_override=reduction))
    weight = torch.rand(9)
    assert torch.equal(SGGGIoULoss()(pred, target, weight), GIoULoss()(pred, target, weight))


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="'iou' or 'giou'"):
        bbox_overlaps(random_boxes(2, seed=0), random_boxes(2, seed=1), mode='iof')
