# SpeaQ (ResNet-101, SpeaQ recipe) trained on Visual Genome VG150 only: the "Visual Genome Only" command of
# the original README (docs/migration.md), the reproduction of the published model: the reference's pixels
# (PIL resizes), its query groups (model.train_cfg.assigner.group_counts='reference', the published
# layout) and its evaluation ground truth (clipped to the image). Global batch 20 = 4 GPUs x 5 images
# (train_dataloader.batch_size).
_base_ = ['./_base_/models/speaq_r101.py', './_base_/datasets/vg150.py', './_base_/schedules/speaq_150k.py']

# The reference's DETR detector, converted with tools/model_converters/speaq_d2_to_mm.py; its decoder
# initialises the subject, object and relation decoders (docs/model.md).
load_from = 'checkpoints/vg_objectdetector_pretrained_mm.pth'
