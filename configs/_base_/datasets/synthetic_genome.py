# Synthetic scene graphs in the VG h5 layout ("Synthetic Genome") on their own: VG150's dataset and pipelines
# pointed at the files of synthetic_genome_files.py (docs/dataset_format.md, "Custom and synthetic data"). Train
# takes every filtered split-0 image (no val carve-out); val and test read the split-2 rows. Files with split-1
# rows can validate on those instead with val_dataloader.dataset.split='val' and use_h5_val_split=True.
# Samples train at the default sample_weight 1.0: there is no other source to weigh them against.
_base_ = ['./vg150.py', './synthetic_genome_files.py']

train_dataloader = dict(dataset=_base_.synthetic_genome_files)
val_dataloader = dict(dataset=dict(split='test', **_base_.synthetic_genome_files))
test_dataloader = val_dataloader
