"""SpeaQ / IterativeSG scene graph detector on mmdet's DETR conventions (docs/model.md).

Backbone (mmdet ``ResNet``, last stage) -> 1x1 input projection (``ChannelMapper``) -> sine positional
encoding -> DETR encoder -> the iterative relation decoder -> the shared heads. Subject, object and relation
queries are learned positional embeddings; the decoders' content inputs start at zero.
"""
import math

import torch
from mmdet.models.detectors import DetectionTransformer
from mmdet.models.layers import DetrTransformerEncoder, SinePositionalEncoding
from mmdet.registry import MODELS
from mmengine.logging import print_log
from torch import nn
from torch.profiler import record_function

from ...utils import reject_unknown_kwargs
from ..layers.iterative_relation_decoder import STREAMS, SpeaQIterativeRelationDecoder
from ..utils.relation_structures import check_query_counts


@MODELS.register_module()
class SpeaQDetector(DetectionTransformer):
    """The SpeaQ detector.

    Args:
        num_entity_queries (int): N_so subject/object queries (reference ``NUM_OBJECT_QUERIES``, times
            ``MULTIPLY_QUERY`` unless ``ONLY_PREDICATE_MULTIPLY``).
        num_relation_queries (int): N_rel relation queries (reference ``NUM_RELATION_QUERIES`` times
            ``MULTIPLY_QUERY``), a multiple of N_so; relation query r pairs with entity slot
            r // (N_rel / N_so).
        feature_stride (int): the backbone output stride. The padding mask of an image of h x w input
            pixels marks everything outside ceil(h / stride) x ceil(w / stride) as padding, as detectron2
            does (mmdet's DETR interpolates the pixel mask, which differs at odd sizes).
        backbone, neck, encoder, positional_encoding, data_preprocessor, init_cfg: as in mmdet's DETR.
        decoder (dict): `SpeaQIterativeRelationDecoder` arguments.
        bbox_head (dict): `SpeaQRelationHead` config (the query counts are filled in).
        train_cfg, test_cfg (dict): passed to the head (matcher and post-processing).

    Loading a plain DETR detector checkpoint (``load_from`` of an mmdet ``DETR`` trained with
    ``configs/detr_r101_vg150.py`` or converted by ``tools/model_converters/speaq_d2_to_mm.py``): its single
    decoder ``decoder.layers.*`` is replicated into the subject, object and relation decoders and its
    ``query_embedding`` becomes the subject queries, as the reference release did offline. Everything else
    without a counterpart (object/relation queries, conditioning and graph attentions, heads) keeps its
    fresh initialisation; see docs/model.md.
    """

    def __init__(self, *args, num_entity_queries=300, num_relation_queries=600, feature_stride=32,
                 bbox_head=None, **kwargs):
        reject_unknown_kwargs(type(self).__name__, DetectionTransformer, kwargs)
        check_query_counts(num_entity_queries, num_relation_queries)
        self.num_entity_queries = num_entity_queries
        self.num_relation_queries = num_relation_queries
        self.feature_stride = feature_stride
        bbox_head = dict(bbox_head, num_entity_queries=num_entity_queries,
                         num_relation_queries=num_relation_queries)
        super().__init__(*args, bbox_head=bbox_head, num_queries=num_relation_queries, **kwargs)
        self.register_load_state_dict_pre_hook(_replicate_detector_decoder)

    def _init_layers(self):
        """Positional encoding, encoder, iterative decoder and the three query tables."""
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = DetrTransformerEncoder(**self.encoder)
        self.decoder = SpeaQIterativeRelationDecoder(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        if self.positional_encoding.num_feats * 2 != self.embed_dims:
            raise ValueError(f'positional_encoding.num_feats ({self.positional_encoding.num_feats}) must be '
                             f'half of the encoder width ({self.embed_dims})')
        self.subject_query_embedding = nn.Embedding(self.num_entity_queries, self.embed_dims)
        self.object_query_embedding = nn.Embedding(self.num_entity_queries, self.embed_dims)
        self.relation_query_embedding = nn.Embedding(self.num_relation_queries, self.embed_dims)

    def init_weights(self):
        """Reference initialisation: Xavier-uniform for every matrix of the transformer and the heads,
        then zero conditioning and graph residual branches."""
        super().init_weights()
        for module in (self.encoder, self.decoder, self.bbox_head):
            for parameter in module.parameters():
                if parameter.dim() > 1:
                    nn.init.xavier_uniform_(parameter)
        self.decoder.zero_init_residual_branches()

    def set_train_statistics(self, metainfo, origin='train dataset metainfo'):
        """Take the train split's statistics (``fg_rel_count``) from a dataset metainfo dict; ``origin`` names
        the dataset in errors. (Whether the model's class and predicate counts fit the dataset is
        ``SpeaQVocabularyCheckHook``'s check, before training, validation and testing.)"""
        if 'fg_rel_count' not in metainfo:
            raise KeyError(f'{origin} has no fg_rel_count (per-predicate counts of the train split, '
                           'docs/structures.md)')
        self.bbox_head.set_train_statistics(metainfo['fg_rel_count'], f"{origin} ['fg_rel_count']")

    def pre_transformer(self, img_feats, batch_data_samples):
        """Flatten the last feature map and build its padding mask and sine positional encoding."""
        feat = img_feats[-1]
        batch, dims, height, width = feat.shape
        masks = feat.new_ones((batch, height, width), dtype=torch.bool)
        for index, sample in enumerate(batch_data_samples):
            img_h, img_w = sample.img_shape[:2]
            valid_h, valid_w = math.ceil(img_h / self.feature_stride), math.ceil(img_w / self.feature_stride)
            masks[index, :valid_h, :valid_w] = False
        pos = self.positional_encoding(masks)
        feat = feat.flatten(2).permute(0, 2, 1)
        pos = pos.flatten(2).permute(0, 2, 1)
        masks = masks.flatten(1)
        return dict(feat=feat, feat_mask=masks, feat_pos=pos), dict(memory_mask=masks, memory_pos=pos)

    def extract_feat(self, batch_inputs):
        """Backbone and input projection (labelled for tools/benchmarks/bench_model.py --profile)."""
        with record_function('speaq.backbone'):
            return super().extract_feat(batch_inputs)

    def forward_encoder(self, feat, feat_mask, feat_pos):
        """DETR encoder over the flattened features."""
        with record_function('speaq.encoder'):
            return dict(memory=self.encoder(query=feat, query_pos=feat_pos, key_padding_mask=feat_mask))

    def pre_decoder(self, memory):
        """The three positional query tables, expanded to the batch."""
        batch = memory.shape[0]
        queries = dict(
            subject_pos=self.subject_query_embedding.weight,
            object_pos=self.object_query_embedding.weight,
            relation_pos=self.relation_query_embedding.weight)
        decoder_inputs = {name: table[None].expand(batch, -1, -1) for name, table in queries.items()}
        decoder_inputs['memory'] = memory
        return decoder_inputs, {}

    def forward_decoder(self, subject_pos, object_pos, relation_pos, memory, memory_mask, memory_pos):
        """The iterative relation decoder; returns the head inputs (normed states of every layer)."""
        subject_states, object_states, relation_states = self.decoder(
            subject_pos, object_pos, relation_pos, memory, memory_pos, memory_mask)
        return dict(subject_states=subject_states, object_states=object_states,
                    relation_states=relation_states)

    def add_pred_to_datasample(self, data_samples, results_list):
        """Attach ``pred_instances`` and ``pred_relations`` (docs/structures.md)."""
        for data_sample, (instances, relations) in zip(data_samples, results_list):
            data_sample.pred_instances = instances
            data_sample.pred_relations = relations
        return data_samples


def _replicate_detector_decoder(module, state_dict, prefix, *args):
    """Load pre-hook: a plain DETR checkpoint's decoder initialises all three decoders (see SpeaQDetector)."""
    source = f'{prefix}decoder.layers.'
    if any(key.startswith(f'{prefix}decoder.subject_layers.') for key in state_dict):
        return
    keys = [key for key in state_dict if key.startswith(source)]
    if not keys:
        return
    for key in keys:
        value = state_dict.pop(key)
        for stream in STREAMS:
            state_dict[f'{prefix}decoder.{stream}_layers.{key[len(source):]}'] = value
    queries = f'{prefix}query_embedding.weight'
    if queries in state_dict and f'{prefix}subject_query_embedding.weight' not in state_dict:
        state_dict[f'{prefix}subject_query_embedding.weight'] = state_dict.pop(queries)
    print_log(f'SpeaQDetector: replicated the DETR decoder ({len(keys)} tensors) into the subject, object '
              'and relation decoders; its query_embedding initialises the subject queries', logger='current')
