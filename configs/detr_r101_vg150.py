# DETR (ResNet-101, 300 queries) trained to detect the 150 VG150 object classes: the detector that initialises
# SpeaQ (the reference's vg_objectdetector_pretrained.pth; IterativeSG issue #3: batch 16, 554,400 iterations,
# lr x0.1 at 369,600). Global batch 16 = 4 GPUs x 4 images. Its checkpoint is the load_from of the SpeaQ
# configs: SpeaQDetector copies its decoder into the subject, object and relation decoders.
_base_ = ['./_base_/models/detr_r101.py', './_base_/datasets/vg150.py', './_base_/schedules/speaq_150k.py']

max_iters = 554400
# Images only need boxes and labels here; relations are ignored. Same DETR augmentation as the scene graph
# pipeline (flip, then multi-scale resize or resize + crop + multi-scale resize).
train_scales = [(1333, short) for short in range(480, 801, 32)]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',
        transforms=[
            [dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True)],
            [
                dict(type='RandomChoiceResize', scales=[(100000, 400), (100000, 500), (100000, 600)],
                     keep_ratio=True),
                dict(type='RandomCrop', crop_type='absolute_range', crop_size=(384, 600),
                     allow_negative_crop=True),
                dict(type='RandomChoiceResize', scales=train_scales, keep_ratio=True),
            ],
        ]),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5)),
    dict(type='PackDetInputs'),
]
# COCO-style box AP without a COCO json: CocoMetric builds its ground truth from the packed 'instances'.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'instances')),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(_delete_=True, type='CocoMetric', metric='bbox', ann_file=None)
test_evaluator = val_evaluator

optim_wrapper = dict(clip_grad=dict(max_norm=0.1, norm_type=2))  # mmdet's DETR clip
train_cfg = dict(max_iters=max_iters, val_interval=20000)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[369600], gamma=0.1),
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(checkpoint=dict(save_best='coco/bbox_mAP50'))
