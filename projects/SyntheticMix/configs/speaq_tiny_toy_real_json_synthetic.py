# The tiny SpeaQ on the toy real scenes mixed with a synthetic set that arrived as scene graph JSON and was
# converted with tools/dataset_converters/json_to_vg.py (see ../README.md). Every batch holds 70 % real and
# 30 % synthetic samples; the synthetic loss weight starts at 0.5 and ramps down to 0.1 over training.
_base_ = ['../../../configs/toy/speaq_tiny_toy_mix.py']

# speaq_mm plus this project's hook.
custom_imports = dict(imports=['speaq_mm', 'projects.SyntheticMix.synthetic_mix'], allow_failed_imports=False)

converted_root = 'data/synthetic_mix/vg/'  # OUT_DIR of json_to_vg.py
# The converted set only trains: no val carve-out (validation and test use the real toy splits).
synthetic_train_dataset = dict(_base_.synthetic_train_dataset, data_root=converted_root, num_val_images=0)
train_dataloader = dict(dataset=dict(datasets=[_base_.real_train_dataset, synthetic_train_dataset]))

# A short schedule: the point is the pipeline, not the accuracy.
max_iters = 400
train_cfg = dict(max_iters=max_iters, val_interval=200)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))

custom_hooks = [
    dict(type='SourceMixHook'),  # per-batch source shares and weights in the log; sampler state on resume
    dict(type='SpeaQTrainStatisticsHook'),  # predicate groups and class weights from the train statistics
    dict(type='SpeaQNonFiniteGuardHook', max_consecutive_bad_steps=10),  # skip non-finite steps
    # Synthetic loss weight x 1.0 at the start, x 0.2 at the end (0.5 -> 0.1 with the base weight 0.5).
    dict(type='SourceLossWeightRampHook', source='synthetic', start_factor=1.0, end_factor=0.2),
]
