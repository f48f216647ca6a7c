# The SpeaQ training schedule (docs/migration.md, "Config keys"): 150k iterations of a global batch of 20 images,
# AdamW 1e-4 (backbone x0.1), gradient clipping at 0.01, AMP, lr x0.1 at 96k, validation every 6000
# iterations.
# The global batch is train_dataloader.batch_size (per GPU) x the number of GPUs: 5 x 4 here. With another
# number of GPUs keep 20 or pass --auto-scale-lr, which scales the lr by (actual global batch) / 20.
_base_ = ['../default_runtime.py']  # so that the logger/checkpoint hooks below override the runtime's

max_iters = 150000
val_interval = 6000  # reference TEST.EVAL_PERIOD

optim_wrapper = dict(
    # mmengine's AmpOptimWrapper that skips non-finite steps (default_hooks.non_finite_guard needs one).
    # AMP needs a GPU; on CPU: --cfg-options optim_wrapper.type=SpeaQNonFiniteGuardOptimWrapper
    type='SpeaQNonFiniteGuardAmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.01, norm_type=2),  # full-model L2 norm, reference CLIP_GRADIENTS 0.01
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}))  # BACKBONE_MULTIPLIER

# mmengine's IterBasedTrainLoop, resuming without loading the batches already trained on.
train_cfg = dict(type='SpeaQIterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[96000], gamma=0.1),
]

# base_batch_size is the recipe's global batch; enable with tools/train.py --auto-scale-lr.
auto_scale_lr = dict(enable=False, base_batch_size=20)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    # Keeps the 2 latest checkpoints and the best one by save_best, a validation metric key of
    # SGGMetric (e.g. --cfg-options default_hooks.checkpoint.save_best=sgg/R@100).
    checkpoint=dict(type='SpeaQCheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=2,
                    save_best='sgg/mR@100', rule='greater'))
log_processor = dict(by_epoch=False)
