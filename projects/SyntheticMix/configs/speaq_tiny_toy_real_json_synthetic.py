# The tiny SpeaQ on the toy real scenes mixed with a synthetic set that arrived as scene graph JSON and was
# converted with tools/dataset_converters/json_to_vg.py (see ../README.md). Every batch holds 70 % real and
# 30 % synthetic samples; the synthetic sample weight starts at 0.5 and ramps down to 0.1 over training.
_base_ = ['../../../configs/toy/speaq_tiny_toy_mix.py']

# speaq_mm plus this project's hook.
custom_imports = dict(imports=['speaq_mm', 'projects.SyntheticMix.synthetic_mix'], allow_failed_imports=False)

# The converted set (OUT_DIR of json_to_vg.py) only trains: no val carve-out (validation and test use the real
# toy splits). It keeps the recipe's 64 px training pipeline.
synthetic_train_dataset = dict(_base_.synthetic_train_dataset, data_root='data/synthetic_mix/vg/', num_val_images=0)
train_dataloader = dict(dataset=dict(datasets=[_base_.real_train_dataset, synthetic_train_dataset]))

# A short schedule: the point is the pipeline, not the accuracy.
train_cfg = dict(max_iters=400, val_interval=200)
param_scheduler = [dict(type='MultiStepLR', begin=0, end=400, by_epoch=False, milestones=[320], gamma=0.1)]
default_hooks = dict(checkpoint=dict(interval=400))

# Synthetic sample weight x 1.0 at the start, x 0.2 at the end (0.5 -> 0.1 with the mix's weight 0.5).
custom_hooks = [dict(type='SGGSampleWeightRampHook', source='synthetic', start_factor=1.0, end_factor=0.2)]
