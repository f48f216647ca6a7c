# The DETR object detector that initialises SpeaQ (reference: Detr / DETR / Transformer, 300 queries, R-101).
# It is mmdet's own DETR; its backbone, input projection, encoder and queries carry the same names as in
# SpeaQDetector, and its decoder is replicated into SpeaQ's three decoders when a SpeaQ config loads it
# (load_from). Converted reference detector files (tools/model_converters/speaq_d2_to_mm.py) load here
# without missing or unexpected keys.
model = dict(
    type='DETR',
    num_queries=300,  # reference NUM_OBJECT_QUERIES
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,  # the reference reads RGB
        pad_size_divisor=1),  # pad to the batch's largest image only
    backbone=dict(
        type='ResNet',
        depth=101,
        num_stages=4,
        out_indices=(3, ),  # only res5 (2048 channels, stride 32)
        frozen_stages=1,  # detectron2 FREEZE_AT=2
        norm_cfg=dict(type='BN', requires_grad=False),  # FrozenBN
        norm_eval=True,
        style='pytorch',  # STRIDE_IN_1X1 False: the stride sits on the 3x3 conv
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),  # ImageNet weights
    neck=dict(  # the 1x1 input projection (reference input_proj)
        type='ChannelMapper', in_channels=[2048], kernel_size=1, out_channels=256, act_cfg=None,
        norm_cfg=None, num_outs=1),
    # mmcv MultiheadAttention: 'dropout' sets both the attention and the residual dropout, as the reference.
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2, ffn_drop=0.1,
                         act_cfg=dict(type='ReLU', inplace=True)))),
    decoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2, ffn_drop=0.1,
                         act_cfg=dict(type='ReLU', inplace=True))),
        return_intermediate=True),
    positional_encoding=dict(num_feats=128, normalize=True),
    bbox_head=dict(
        type='DETRHead',
        num_classes=150,  # VG150 object classes
        embed_dims=256,
        loss_cls=dict(type='CrossEntropyLoss', bg_cls_weight=0.1, use_sigmoid=False, loss_weight=1.0,
                      class_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=1.),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=100))
