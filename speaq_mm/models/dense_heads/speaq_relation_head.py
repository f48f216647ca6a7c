"""The shared prediction heads of IterativeSG/SpeaQ, with deep supervision, matching and post-processing.

One entity classifier serves subjects and objects, one box MLP serves subjects, objects and relations, one
predicate classifier serves relations, and all decoder layers share them (docs/model.md, "Parts"). The head follows
mmdet's DETR head conventions: ``loss`` and ``predict`` take the decoder states and the data samples, the
assigner comes from ``train_cfg`` and the auxiliary layers' losses are prefixed ``d{i}.``.
"""
import torch
from mmdet.models.layers.transformer import MLP
from mmdet.registry import MODELS, TASK_UTILS
from mmengine.logging import MessageHub
from mmengine.model import BaseModule
from torch import nn
from torch.profiler import record_function

from ..task_modules.predicate_groups import validate_predicate_counts
from ..utils.relation_structures import RelationPredictions, build_batch_relation_targets


@MODELS.register_module()
class SpeaQRelationHead(BaseModule):
    """Heads, criterion and post-processing of the SpeaQ detector.

    Args:
        num_entity_classes (int): C object classes.
        num_predicates (int): P predicates.
        embed_dims (int): decoder width.
        num_entity_queries (int): N_so (set by the detector).
        num_relation_queries (int): N_rel, a multiple of N_so (set and checked by the detector).
        criterion (dict, optional): `SpeaQRelationCriterion` config (classes are filled in); default
            ``dict(type='SpeaQRelationCriterion')``.
        min_box_size (float): GT boxes with a side at most this many pixels are unusable (see
            `build_batch_relation_targets`).
        train_cfg (dict): ``assigner``, the `SpeaQTripletMatcher` config.
        test_cfg (dict): the `SpeaQTripletPostProcessor` arguments.
    """

    # The state-dict tensors whose rows follow a vocabulary (one row per name, the no-object / no-relation row
    # last): what default_hooks.checkpoint_check.transfer='by_name' maps by name
    # (speaq_mm.engine.vocabulary_transfer). The criterion's class weights follow the vocabulary too, but are
    # not persistent: they are recomputed from the train statistics.
    vocabulary_rows = {'entity_classifier.weight': 'classes', 'entity_classifier.bias': 'classes',
                       'predicate_classifier.weight': 'predicates', 'predicate_classifier.bias': 'predicates'}

    def __init__(self,
                 num_entity_classes,
                 num_predicates,
                 embed_dims,
                 num_entity_queries,
                 num_relation_queries,
                 criterion=None,
                 min_box_size=1e-5,
                 train_cfg=None,
                 test_cfg=None,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_entity_classes = num_entity_classes
        self.num_predicates = num_predicates
        self.queries_per_entity = num_relation_queries // num_entity_queries
        self.min_box_size = min_box_size
        self.entity_classifier = nn.Linear(embed_dims, num_entity_classes + 1)
        self.box_regressor = MLP(embed_dims, embed_dims, 4, 3)
        self.predicate_classifier = nn.Linear(embed_dims, num_predicates + 1)
        criterion = dict(criterion or dict(type='SpeaQRelationCriterion'))
        self.criterion = MODELS.build(
            dict(criterion, num_entity_classes=num_entity_classes, num_predicates=num_predicates))
        self.matcher = None
        if train_cfg is not None:
            self.matcher = TASK_UTILS.build(train_cfg['assigner'], default_args=dict(
                num_predicates=num_predicates, num_entity_queries=num_entity_queries,
                num_relation_queries=num_relation_queries))
        self.post_processor = TASK_UTILS.build(dict(type='SpeaQTripletPostProcessor', **(test_cfg or {})))
        # The one readiness state of the train statistics: the validated counts, None until they are set.
        self.predicate_counts = None

    def set_train_statistics(self, fg_rel_count, origin='fg_rel_count'):
        """Check the train split's predicate counts once and give them to the criterion (class weights) and
        the matcher (groups). ``origin`` names where they came from in errors."""
        counts = validate_predicate_counts(fg_rel_count, self.num_predicates, origin)
        self.criterion.set_predicate_counts(counts)
        if self.matcher is not None:
            self.matcher.set_predicate_counts(counts)
        self.predicate_counts = counts

    def forward(self, subject_states, object_states, relation_states):
        """Predictions of every layer.

        Args:
            subject_states, object_states (Tensor): (L, B, N_so, D).
            relation_states (Tensor): (L, B, N_rel, D).

        Returns:
            RelationPredictions: fields (L, B, N_rel, ...); entity rows are repeated per relation query.
        """
        def entity(states):
            repeat = self.queries_per_entity
            return (self.entity_classifier(states).repeat_interleave(repeat, dim=2),
                    self.box_regressor(states).sigmoid().repeat_interleave(repeat, dim=2))

        subject_logits, subject_boxes = entity(subject_states)
        object_logits, object_boxes = entity(object_states)
        return RelationPredictions(
            subject_logits=subject_logits, subject_boxes=subject_boxes,
            object_logits=object_logits, object_boxes=object_boxes,
            predicate_logits=self.predicate_classifier(relation_states),
            relation_boxes=self.box_regressor(relation_states).sigmoid())

    def loss(self, subject_states, object_states, relation_states, batch_data_samples):
        """Loss terms of every layer plus detached logging values (mean GT copies per layer and class errors
        of the final layer).

        The final layer's unweighted relation terms per data source (``'<source>.relation_ce'``, ...) go to
        the message hub as ``train/<source>.relation_ce`` and so on, which the logger prints with the losses:
        source names are chosen by users, and a name containing ``loss`` inside the returned dict would be
        summed into the objective by ``parse_losses``.
        """
        if self.matcher is None:
            raise RuntimeError('SpeaQRelationHead was built without train_cfg.assigner; it cannot compute '
                               'losses')
        if self.predicate_counts is None and (self.criterion.uses_predicate_counts
                                              or self.matcher.uses_predicate_counts):
            raise RuntimeError('SpeaQRelationHead needs the train split\'s predicate counts for its predicate '
                               'reweighting or predicate groups: call set_train_statistics (the detector\'s, '
                               'which SpeaQTrainStatisticsHook calls before training)')
        predictions = self(subject_states, object_states, relation_states)
        with record_function('speaq.targets'):
            targets = build_batch_relation_targets(batch_data_samples, self.min_box_size)
        matches, mean_copies = self.matcher(predictions, targets)
        last = predictions.num_layers - 1
        losses = {}
        for layer in range(predictions.num_layers):
            with record_function('speaq.criterion'):
                layer_losses, logs, source_logs = self.criterion(predictions.layer(layer), targets, matches[layer],
                                                                 with_logs=layer == last)
            prefix = '' if layer == last else f'd{layer}.'
            losses.update({prefix + name: value for name, value in layer_losses.items()})
            losses.update(logs)
            losses[f'{prefix}k_mean'] = mean_copies[layer].detach()
        if source_logs:  # one read of all per-source values (a host round trip), not one per value
            message_hub = MessageHub.get_current_instance()
            values = torch.stack([value.float() for value in source_logs.values()]).tolist()
            for name, value in zip(source_logs, values):
                message_hub.update_scalar(f'train/{name}', value)
        return losses

    def predict(self, subject_states, object_states, relation_states, batch_data_samples, rescale=True):
        """Scene graphs of the final layer: per image (pred_instances, pred_relations)."""
        final = [states[-1:] for states in (subject_states, object_states, relation_states)]
        predictions = self(*final).layer(0)
        with record_function('speaq.post_processing'):
            return self.post_processor(predictions, [s.metainfo for s in batch_data_samples], rescale)
