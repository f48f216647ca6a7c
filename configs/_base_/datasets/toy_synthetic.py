# Toy scenes in the second visual domain (striped shapes, other palette, noisy dark background) standing in
# for synthetic data: the same vocabulary and pipelines as toy_real.py. Generate them with
#   python tools/misc/make_toy_scenes.py data/toy_synthetic --style synthetic --seed 1
_base_ = ['./toy_real.py']

data_root = 'data/toy_synthetic/'
# Dataset settings that differ from toy_real.py, applied to the three dataloaders.
synthetic_dataset = dict(
    data_root=data_root,
    source='synthetic')  # copied into every sample's metainfo; samples train at the default sample_weight 1.0

train_dataloader = dict(dataset=synthetic_dataset)
val_dataloader = dict(dataset=synthetic_dataset)
test_dataloader = dict(dataset=synthetic_dataset)
