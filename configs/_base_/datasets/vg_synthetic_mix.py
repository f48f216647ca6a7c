# Visual Genome (VG150) mixed with synthetic scene graphs in every batch at a fixed ratio
# (docs/multi_dataset.md). Training draws from vg150.py's train split and synthetic_genome.py's files;
# validation and test stay on VG150's real val/test splits.
_base_ = ['./vg150.py']

# Mix settings. tools/train.py --cfg-options real_ratio=0.5 synthetic_ratio=0.5 changes them everywhere they
# are used (the keys listed in variable_targets at the end of this file).
real_ratio = 0.7  # share of VG samples in every global batch (the ratios are normalised by their sum)
synthetic_ratio = 0.3  # share of synthetic samples
real_loss_weight = 1.0  # loss weight of every VG sample (its metainfo loss_weight)
synthetic_loss_weight = 0.5  # loss weight of every synthetic sample
# Sources whose train statistics (fg_rel_count, obj_count, triplets) the model reads for the predicate-loss
# reweighting and the query groups: ['real'] leaves the synthetic counts out; ['real', 'synthetic'] adds them.
statistics_sources = ['real']

real_train_dataset = dict(_base_.train_dataloader.dataset, source='real', loss_weight=real_loss_weight)
# The files of synthetic_genome.py (tests/test_sampler_config.py checks the two stay the same).
synthetic_train_dataset = dict(
    real_train_dataset,
    data_root='data/synthetic_genome/',
    ann_file='augmented_from_refined.h5',
    image_data_file='image_data_new.json',
    dicts_file='VG-SGG-dicts-with-attri.json',  # a copy of VG150's
    data_prefix=dict(img='images/'),
    num_val_images=0,  # no carve-out: every split-0 image trains
    source='synthetic',
    loss_weight=synthetic_loss_weight)

train_dataloader = dict(
    # 5 per GPU x 4 GPUs = the recipe's global batch of 20, i.e. 14 VG + 6 synthetic images at 0.7 / 0.3.
    batch_size=5,
    # The Runner requires a sampler; RatioBatchSampler only takes its dataset and seed and orders the batches.
    sampler=dict(type='DefaultSampler', shuffle=True),
    # Replaces vg150.py's AspectRatioBatchSampler: the batches keep their exact composition instead of being
    # regrouped by aspect ratio. infinite=True suits IterBasedTrainLoop (no dataloader restart at each epoch
    # end); keep False with EpochBasedTrainLoop.
    batch_sampler=dict(type='RatioBatchSampler', source_ratio=[real_ratio, synthetic_ratio], infinite=False),
    dataset=dict(
        _delete_=True,
        type='SGGConcatDataset',
        datasets=[real_train_dataset, synthetic_train_dataset],
        statistics_sources=statistics_sources))

# Logs source_frac_<source> and source_weight_<source> per batch and keeps the sampler's state in checkpoints.
# A config that sets its own custom_hooks replaces this list and must include SourceMixHook again.
custom_hooks = [dict(type='SourceMixHook')]

# Where each mix setting above is used, so that --cfg-options reaches them all
# (speaq_mm.engine.apply_variable_overrides).
variable_targets = dict(
    real_ratio=['train_dataloader.batch_sampler.source_ratio.0'],
    synthetic_ratio=['train_dataloader.batch_sampler.source_ratio.1'],
    real_loss_weight=['train_dataloader.dataset.datasets.0.loss_weight', 'real_train_dataset.loss_weight'],
    synthetic_loss_weight=['train_dataloader.dataset.datasets.1.loss_weight',
                           'synthetic_train_dataset.loss_weight'],
    statistics_sources=['train_dataloader.dataset.statistics_sources'])
