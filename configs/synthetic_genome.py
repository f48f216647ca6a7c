# SpeaQ (ResNet-101, SpeaQ recipe) trained on synthetic images in the VG150 file format only: the "Synthetic
# Dataset Only" command of the original README. Test and validation stay on the synthetic set's splits
# (configs/_base_/datasets/synthetic_genome.py). Global batch 20 = 4 GPUs x 5 images.
_base_ = [
    './_base_/models/speaq_r101.py',
    './_base_/datasets/synthetic_genome.py',
    './_base_/schedules/speaq_150k.py',
]

load_from = 'checkpoints/vg_objectdetector_pretrained_mm.pth'  # the converted reference DETR detector
