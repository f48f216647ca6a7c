# Visual Genome (VG150) mixed with synthetic scene graphs in every batch at a fixed ratio
# (real_synthetic_mix.py; docs/multi_dataset.md lists every mix key). Training draws from vg150.py's train split
# and the files of synthetic_genome_files.py; validation and test stay on VG150's real val/test splits.
_base_ = ['./vg150.py', './synthetic_genome_files.py', './real_synthetic_mix.py']

real_train_dataset = dict(_base_.train_dataloader.dataset, source='real')
synthetic_train_dataset = dict(real_train_dataset, **_base_.synthetic_genome_files)
# 5 per GPU x 4 GPUs = the recipe's global batch of 20, i.e. 14 VG + 6 synthetic images at 0.7 / 0.3; the
# batch sampler replaces vg150.py's AspectRatioBatchSampler, so the batches keep their exact composition.
train_dataloader = dict(
    _base_.mix_train_dataloader,
    batch_size=5,
    dataset=dict(_base_.mix_train_dataloader.dataset, datasets=[real_train_dataset, synthetic_train_dataset]))
