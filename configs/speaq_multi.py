# SpeaQ (ResNet-101) on Visual Genome mixed with synthetic scene graphs: the multi-dataset command of the
# original README. Every global batch of 20 (4 GPUs x 5) holds 14 VG + 6 synthetic images
# (train_dataloader.batch_sampler.source_ratio), synthetic samples weigh 0.5 in the loss
# (train_dataloader.dataset.sample_weights; configs/_base_/datasets/vg_synthetic_mix.py), and
# the model uses the README's SpeaQ settings: dynamic one-to-many (k 4, max, predicate score weight -0.5),
# 600 relation queries for 300 subject/object slots (MULTIPLY_QUERY 2 with ONLY_PREDICATE_MULTIPLY), group
# mask with 4 groups, independent matching per layer (configs/_base_/models/speaq_r101.py). The query groups
# use the reference's VG predicate table (group_counts='reference'), as the reference code did for this command
# whatever the data: the synthetic counts could not move them there either. With group_counts=
# 'train_statistics' they follow the counts of statistics_sources (['real']: VG150's train split) instead.
_base_ = [
    './_base_/models/speaq_r101.py',
    './_base_/datasets/vg_synthetic_mix.py',
    './_base_/schedules/speaq_150k.py',
]

load_from = 'checkpoints/vg_objectdetector_pretrained_mm.pth'  # the converted reference DETR detector
