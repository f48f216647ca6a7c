# Synthetic scene graphs in the VG h5 layout ("Synthetic Genome"): VG150's dataset and pipelines pointed at
# other files (docs/dataset_format.md, "Custom and synthetic data"). The files use the VG150 dicts json, so
# the vocabulary matches vg150.py and the two can be mixed. Train takes every filtered split-0 image (no val
# carve-out); val and test read the split-2 rows. Files with split-1 rows can validate on those instead with
# val_dataloader.dataset.split='val' and use_h5_val_split=True.
_base_ = ['./vg150.py']

data_root = 'data/synthetic_genome/'  # holds the files below and the image folder
num_val_images = 0  # no carve-out: every split-0 image trains
# Dataset settings shared by the three dataloaders.
synthetic_dataset = dict(
    data_root=data_root,
    ann_file='augmented_from_refined.h5',
    image_data_file='image_data_new.json',
    dicts_file='VG-SGG-dicts-with-attri.json',  # a copy of VG150's
    data_prefix=dict(img='images/'),
    num_val_images=num_val_images,
    source='synthetic',  # copied into every sample's metainfo
    loss_weight=0.5)  # per-sample loss weight, copied into every sample's metainfo

train_dataloader = dict(dataset=synthetic_dataset)
val_dataloader = dict(dataset=dict(split='test', **synthetic_dataset))
test_dataloader = dict(dataset=synthetic_dataset)
