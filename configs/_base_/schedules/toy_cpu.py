# A short CPU schedule for the tiny model on the toy scenes (configs/toy/). AdamW like the recipe, but a
# from-scratch backbone at the full learning rate, a looser gradient clip and a higher lr, because the tiny
# model starts without any pretrained weights and must learn in minutes.
_base_ = ['../default_runtime.py']

max_iters = 1500
val_interval = 500

optim_wrapper = dict(
    type='SpeaQNonFiniteGuardOptimWrapper',  # OptimWrapper that skips non-finite steps (default_hooks.non_finite_guard)
    optimizer=dict(type='AdamW', lr=4e-4, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2))

# mmengine's IterBasedTrainLoop, resuming without loading the batches already trained on.
train_cfg = dict(type='SpeaQIterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.8)],
         gamma=0.1),
]

default_hooks = dict(
    # log_metric_by_epoch=False: validation metrics are logged at their iteration, not at step 0.
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='SpeaQCheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1,
                    save_best='sgg/R@50', rule='greater'),
    visualization=dict(type='DetVisualizationHook', draw=False, score_thr=0.0))
log_processor = dict(by_epoch=False, window_size=20)
