# Toy "real" and toy "synthetic" scenes mixed in every batch at a fixed ratio (real_synthetic_mix.py;
# docs/multi_dataset.md lists every mix key): the toy stand-in for vg_synthetic_mix.py, with the same keys.
# Generate the two sets with
#   python tools/misc/make_toy_scenes.py data/toy_real
#   python tools/misc/make_toy_scenes.py data/toy_synthetic --style synthetic --seed 1
# Validation and test read toy_real.py's real val/test splits.
_base_ = ['./toy_real.py', './real_synthetic_mix.py']

real_train_dataset = dict(_base_.train_dataloader.dataset, source='real')
# The files of toy_synthetic.py.
synthetic_train_dataset = dict(real_train_dataset, data_root='data/toy_synthetic/', source='synthetic')
train_dataloader = dict(
    _base_.mix_train_dataloader,
    dataset=dict(_base_.mix_train_dataloader.dataset, datasets=[real_train_dataset, synthetic_train_dataset]))
