# The `make demo` recipe: the tiny SpeaQ on the toy real + synthetic mix, on CPU. Every batch of 16 holds
# 11 real + 5 synthetic scenes (0.7 / 0.3, largest remainder), synthetic samples weigh 0.5 in the loss;
# validation and test use the real test split. tools/demo.py runs it; tools/benchmarks/toy_convergence.py runs
# it longer.
_base_ = ['../_base_/models/speaq_tiny.py', '../_base_/datasets/toy_mix.py', '../_base_/schedules/toy_cpu.py']

# The 128 px toy images are fed at 64 px: a training step costs 2.6x less than at 128 px and the shapes
# (13-44 px after resizing) stay easy to see (docs/benchmarks.md, "Toy convergence").
image_size = 64
train_pipeline = [
    dict(t, scale=(image_size, image_size)) if t['type'] == 'Resize' else t for t in _base_.train_pipeline
]
test_pipeline = [dict(t, scale=(image_size, image_size)) if t['type'] == 'Resize' else t for t in _base_.test_pipeline]
# Redefined with the 64 px pipeline, so that configs inheriting this one (projects/SyntheticMix) get it too.
real_train_dataset = dict(_base_.real_train_dataset, pipeline=train_pipeline)
synthetic_train_dataset = dict(_base_.synthetic_train_dataset, pipeline=train_pipeline)
train_dataloader = dict(dataset=dict(datasets=[real_train_dataset, synthetic_train_dataset]))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
