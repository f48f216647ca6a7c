# A tiny SpeaQ for CPU and the toy scenes (6 classes, 6 predicates, 2-4 shapes per image): the same model
# and SpeaQ matching as speaq_r101.py, scaled down. ResNet-18 cut after its second stage (stride 8, trained
# from scratch: BatchNorm trainable, nothing frozen), 128-d, 2 encoder + 2 x 3 decoder layers, no dropout,
# 16 subject/object slots with 2 relation queries each. docs/benchmarks.md has its speed and convergence.
model = dict(
    type='SpeaQDetector',
    num_entity_queries=16,  # >= the 12 ordered pairs of a 4-shape scene
    num_relation_queries=32,  # 2 per entity slot, like the recipe's 600 / 300
    feature_stride=8,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=2,  # layer1 + layer2: stride 8, 128 channels
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1, ),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='ChannelMapper', in_channels=[128], kernel_size=1, out_channels=128, act_cfg=None, norm_cfg=None,
        num_outs=1),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=128, num_heads=4, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=128, feedforward_channels=512, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
    decoder=dict(
        num_layers=2,
        num_heads=4,
        dropout=0.0,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=128, num_heads=4, dropout=0.0, batch_first=True),
            cross_attn_cfg=dict(embed_dims=128, num_heads=4, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=128, feedforward_channels=512, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
    positional_encoding=dict(num_feats=64, normalize=True),
    bbox_head=dict(
        type='SpeaQRelationHead',
        num_entity_classes=6,
        num_predicates=6,
        embed_dims=128,
        criterion=dict(
            type='SpeaQRelationCriterion',
            no_object_weight=0.1,
            reweight_predicates=True,
            oversample_param=0.07,
            undersample_param=1.5,
            no_relation_weight=0.1,
            loss_bbox=dict(type='L1Loss', loss_weight=5.0),
            loss_iou=dict(type='SGGGIoULoss', loss_weight=2.0))),
    train_cfg=dict(
        assigner=dict(
            type='SpeaQTripletMatcher',
            one_to_many='dynamic',
            k=4,
            quality_combine='max',
            predicate_score_weight=-0.5,
            use_group_mask=True,
            num_groups=2,  # 6 predicates: the most frequent ones and the rest
            group_counts='train_statistics',
            match_independent=True)),
    test_cfg=dict(nms_iou_threshold=0.5, predicates_per_query=1))
