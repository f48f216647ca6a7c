"""Small hand-built inputs for the model tests: data samples following docs/structures.md, random head
outputs, and a tiny SpeaQ config that runs in a fraction of a second on CPU."""
import copy

import torch
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

import speaq_mm.engine.hooks  # noqa: F401  (registers the hooks)
from speaq_mm.models.utils import RelationPredictions, build_relation_targets

# Builds nested parts (data preprocessor, losses) from mmdet's registries, as configs do with
# default_scope='mmdet'.
register_all_modules(init_default_scope=True)

NUM_CLASSES = 6
NUM_PREDICATES = 6


def make_sample(boxes, labels, pairs, predicates, img_shape=(64, 64), sample_weight=1.0, source=None,
                img_path='img.jpg', batch_input_shape=None):
    """A packed training/test DetDataSample with gt_instances and gt_relations (``sample_weight=None`` leaves
    the weight out)."""
    sample = DetDataSample()
    meta = dict(img_path=img_path, img_id=img_path, img_shape=img_shape, ori_shape=img_shape,
                batch_input_shape=batch_input_shape or img_shape, scale_factor=(1.0, 1.0))
    if sample_weight is not None:
        meta['sample_weight'] = sample_weight
    if source is not None:
        meta['source'] = source
    sample.set_metainfo(meta)
    sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                                       labels=torch.tensor(labels, dtype=torch.long))
    sample.gt_relations = InstanceData(pairs=torch.tensor(pairs, dtype=torch.long).reshape(-1, 2),
                                       labels=torch.tensor(predicates, dtype=torch.long))
    return sample


def two_object_sample(**kwargs):
    """64x64 image, a box on the left and one on the right, relations 0->1 (pred 2) and 1->0 (pred 5)."""
    return make_sample([[4, 8, 24, 40], [36, 20, 60, 52]], [1, 3], [[0, 1], [1, 0]], [2, 5], **kwargs)


def three_object_sample(**kwargs):
    """64x64 image with three boxes and three relations."""
    return make_sample([[2, 2, 20, 20], [40, 4, 62, 30], [10, 36, 50, 62]], [0, 4, 5],
                       [[0, 1], [2, 0], [1, 2]], [1, 3, 0], **kwargs)


def targets_of(samples):
    """RelationTargets of packed samples."""
    return [build_relation_targets(sample) for sample in samples]


def random_predictions(num_layers, batch, queries, seed=0, num_classes=NUM_CLASSES, num_predicates=NUM_PREDICATES):
    """Random head outputs (L, B, Q, ...) with boxes well inside the image."""
    gen = torch.Generator().manual_seed(seed)

    def boxes():
        centre = torch.rand(num_layers, batch, queries, 2, generator=gen) * 0.6 + 0.2
        size = torch.rand(num_layers, batch, queries, 2, generator=gen) * 0.3 + 0.1
        return torch.cat([centre, size], dim=-1)

    return RelationPredictions(
        subject_logits=torch.randn(num_layers, batch, queries, num_classes + 1, generator=gen),
        subject_boxes=boxes(),
        object_logits=torch.randn(num_layers, batch, queries, num_classes + 1, generator=gen),
        object_boxes=boxes(),
        predicate_logits=torch.randn(num_layers, batch, queries, num_predicates + 1, generator=gen),
        relation_boxes=boxes())


def _attention_cfg(dims, heads, dropout):
    return dict(embed_dims=dims, num_heads=heads, dropout=dropout, batch_first=True)


def tiny_speaq_cfg(dims=32, heads=4, layers=2, entity_queries=4, relation_queries=8, dropout=0.0,
                   assigner=None, criterion=None):
    """A SpeaQ detector config: ResNet-18 cut after stage 2 (stride 8), a narrow transformer."""
    ffn = dict(embed_dims=dims, feedforward_channels=2 * dims, num_fcs=2, ffn_drop=dropout,
               act_cfg=dict(type='ReLU', inplace=True))
    return copy.deepcopy(dict(
        type='SpeaQDetector',
        num_entity_queries=entity_queries,
        num_relation_queries=relation_queries,
        feature_stride=8,
        data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=1),
        backbone=dict(type='ResNet', depth=18, num_stages=2, strides=(1, 2), dilations=(1, 1),
                      out_indices=(1, ), frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                      norm_eval=False, style='pytorch'),
        neck=dict(type='ChannelMapper', in_channels=[128], kernel_size=1, out_channels=dims, act_cfg=None,
                  norm_cfg=None, num_outs=1),
        encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=_attention_cfg(dims, heads, dropout), ffn_cfg=ffn)),
        decoder=dict(num_layers=layers, num_heads=heads, dropout=dropout,
                     layer_cfg=dict(self_attn_cfg=_attention_cfg(dims, heads, dropout),
                                    cross_attn_cfg=_attention_cfg(dims, heads, dropout), ffn_cfg=ffn)),
        positional_encoding=dict(num_feats=dims // 2, normalize=True),
        bbox_head=dict(type='SpeaQRelationHead', num_entity_classes=NUM_CLASSES, num_predicates=NUM_PREDICATES,
                       embed_dims=dims, criterion=criterion or dict(type='SpeaQRelationCriterion')),
        train_cfg=dict(assigner=assigner or dict(type='SpeaQTripletMatcher')),
        test_cfg=dict(nms_iou_threshold=0.5, predicates_per_query=1)))


def image_batch(samples, seed=0):
    """A data batch as the dataloader yields it (uint8 CHW images + samples)."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, *s.metainfo['img_shape'][:2]), generator=gen, dtype=torch.uint8)
              for s in samples]
    return dict(inputs=inputs, data_samples=samples)
