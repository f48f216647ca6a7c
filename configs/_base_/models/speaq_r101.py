# SpeaQ on ResNet-101: the model of the SpeaQ README recipe (docs/model.md).
# Sizes: 150 object classes, 50 predicates, 256-d, 6 encoder + 3 x 6 decoder layers, 300 subject/object
# queries, 600 relation queries in 4 predicate groups. 93,328,270 parameters, as the reference.
# The preprocessor, backbone, input projection, encoder and positional encoding are those of the DETR detector
# (detr_r101.py) whose checkpoint initialises SpeaQ (load_from): inherited, so that the two cannot drift apart.
_base_ = ['./detr_r101.py']

model = dict(
    _delete_=True,  # DETR's own decoder, head and queries do not carry over
    type='SpeaQDetector',
    num_entity_queries=300,  # reference NUM_OBJECT_QUERIES (ONLY_PREDICATE_MULTIPLY keeps it at 300)
    num_relation_queries=600,  # reference NUM_RELATION_QUERIES (300) x MULTIPLY_QUERY (2)
    feature_stride=32,  # ResNet res5
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=dict(_base_.model.backbone, init_cfg=None),  # weights come from load_from (the DETR detector)
    neck=_base_.model.neck,  # the 1x1 input projection (reference input_proj)
    encoder=_base_.model.encoder,
    positional_encoding=_base_.model.positional_encoding,  # DETR PositionEmbeddingSine
    decoder=dict(  # SpeaQIterativeRelationDecoder: each of its three streams uses DETR's decoder layer
        num_layers=6,
        num_heads=8,  # heads of the conditioning and graph attentions
        dropout=0.1,  # their dropout
        layer_cfg=_base_.model.decoder.layer_cfg),
    bbox_head=dict(
        type='SpeaQRelationHead',
        num_entity_classes=150,  # VG150 object classes (no-object is an extra output)
        num_predicates=50,  # VG150 predicates (no-relation is an extra output)
        embed_dims=256,
        criterion=dict(
            type='SpeaQRelationCriterion',
            entity_cls_weight=1.0,  # COST_CLASS as loss weight of the subject/object cross-entropy
            predicate_cls_weight=1.0,
            no_object_weight=0.1,  # NO_OBJECT_WEIGHT
            reweight_predicates=True,  # REWEIGHT_RELATIONS
            oversample_param=0.07,  # OVERSAMPLE_PARAM (alpha)
            undersample_param=1.5,  # UNDERSAMPLE_PARAM (2 x beta)
            no_relation_weight=0.1,  # REWEIGHT_REL_EOS_COEF
            class_weight_range=(0.01, 1000.0),  # clamp of the predicate class weights (recipe: 1..768)
            loss_bbox=dict(type='L1Loss', loss_weight=5.0),  # L1_WEIGHT
            loss_iou=dict(type='SGGGIoULoss', loss_weight=2.0))),  # GIOU_WEIGHT; mmdet's GIoULoss, sync-free
    train_cfg=dict(
        assigner=dict(
            type='SpeaQTripletMatcher',
            class_weight=1.0,  # COST_CLASS
            bbox_weight=5.0,  # L1_WEIGHT
            giou_weight=2.0,  # GIOU_WEIGHT
            one_to_many='dynamic',  # ONE2MANY_SCHEME
            k=4,  # ONE2MANY_K
            quality_combine='max',  # ONE2MANY_DYNAMIC_SCHEME
            predicate_score_weight=-0.5,  # ONE2MANY_PREDICATE_SCORE True + ONE2MANY_PREDICATE_WEIGHT
            use_group_mask=True,  # USE_GROUP_MASK
            num_groups=4,  # NUM_GROUPS
            # The query groups come from the reference's hard-coded VG predicate table, as in every run of the
            # reference code (it ignores the dataset's statistics): relation queries 0-289 / 290-405 / 406-493 /
            # 494-599 for {has, on} / {in, of} / {near, wearing, with} / the 43 others, the published model's
            # layout. 'train_statistics' derives them from the train split's fg_rel_count instead (on VG150's
            # own counts: 0-281 / 282-437 / 438-503 / 504-599, another model). docs/model.md has the table.
            group_counts='reference',
            match_independent=True)),  # MATCH_INDEPENDENT
    test_cfg=dict(
        nms_iou_threshold=0.5,  # MODEL.ROI_HEADS.NMS_THRESH_TEST
        predicates_per_query=1))  # TEST.NUM_REL

