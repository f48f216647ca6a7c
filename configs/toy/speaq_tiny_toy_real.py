# The tiny SpeaQ (configs/_base_/models/speaq_tiny.py) on the toy "real" scenes only, on CPU, at 64 px like
# speaq_tiny_toy_mix.py.
#   python tools/misc/make_toy_scenes.py data/toy_real
#   python tools/train.py configs/toy/speaq_tiny_toy_real.py
_base_ = [
    '../_base_/models/speaq_tiny.py',
    '../_base_/datasets/toy_real.py',
    '../_base_/schedules/toy_cpu.py',
]

image_size = 64
train_pipeline = [
    dict(t, scale=(image_size, image_size)) if t['type'] == 'Resize' else t for t in _base_.train_pipeline
]
test_pipeline = [dict(t, scale=(image_size, image_size)) if t['type'] == 'Resize' else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

