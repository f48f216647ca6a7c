"""mmdet's ``bbox_overlaps`` without its host round trip.

mmdet's ``bbox_overlaps`` makes its ``eps`` a tensor with ``new_tensor([eps])`` at every call: a copy from host
memory to the device, which waits for the device (a host round trip; docs/benchmarks.md). The matcher calls it
four times per decoder layer and the criterion's GIoU loss twice per branch and layer, about 80 stalls per
training step of the recipe. This version computes the same values (``clamp(min=eps)`` equals ``torch.max``
with a one-element ``eps``) for the float32 boxes the model uses. Remove it once mmdet passes ``eps`` as a
Python number (mmdet 3.3.0 does not).
"""
import torch


def bbox_overlaps(bboxes1, bboxes2, mode='iou', is_aligned=False, eps=1e-6):
    """IoU or GIoU of xyxy boxes, as mmdet's ``bbox_overlaps`` (``mode`` 'iou' or 'giou').

    Args:
        bboxes1 (Tensor): (..., M, 4).
        bboxes2 (Tensor): (..., N, 4), N = M when ``is_aligned``.

    Returns:
        Tensor: (..., M, N), or (..., M) when ``is_aligned``.
    """
    if mode not in ('iou', 'giou'):
        raise ValueError(f"mode must be 'iou' or 'giou', got {mode!r}")
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    if is_aligned:
        first, second, area_sum = bboxes1, bboxes2, area1 + area2
    else:
        first, second = bboxes1[..., :, None, :], bboxes2[..., None, :, :]
        area_sum = area1[..., :, None] + area2[..., None, :]
    top_left = torch.max(first[..., :2], second[..., :2])
    bottom_right = torch.min(first[..., 2:], second[..., 2:])
    size = (bottom_right - top_left).clamp(min=0)
    overlap = size[..., 0] * size[..., 1]
    union = (area_sum - overlap).clamp(min=eps)
    ious = overlap / union
    if mode == 'iou':
        return ious
    enclosed = (torch.max(first[..., 2:], second[..., 2:]) - torch.min(first[..., :2], second[..., :2])).clamp(min=0)
    enclose_area = (enclosed[..., 0] * enclosed[..., 1]).clamp(min=eps)
    return ious - (enclose_area - union) / enclose_area
