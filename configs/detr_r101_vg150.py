# DETR (ResNet-101, 300 queries) trained to detect the 150 VG150 object classes: the detector that initialises
# SpeaQ (the reference's vg_objectdetector_pretrained.pth; IterativeSG issue #3: batch 16, 554,400 iterations,
# lr x0.1 at 369,600). Global batch 16 = 4 GPUs x 4 images. Its checkpoint is the load_from of the SpeaQ
# configs: SpeaQDetector copies its decoder into the subject, object and relation decoders.
_base_ = ['./_base_/models/detr_r101.py', './_base_/datasets/vg150.py', './_base_/schedules/speaq_150k.py']

max_iters = 554400
# The scene graph pipelines of vg150.py, unchanged: DETR reads the boxes and labels of the packed samples and
# ignores their relations, so both detectors see the same augmentation. CocoMetric (box AP without a COCO json)
# builds its ground truth from the packed 'instances', which the test pipeline therefore keeps.
test_pipeline = _base_.test_pipeline[:-1] + [
    dict(type='SGGPackInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                                          'flip_direction', 'source', 'sample_weight', 'instances'))]
train_dataloader = dict(batch_size=4)
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
