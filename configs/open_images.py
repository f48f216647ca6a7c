# SpeaQ (ResNet-101, SpeaQ recipe) on Open Images V6 (PySGG's relation subset), scored with the Open Images
# protocol (SGGMetric(protocol='open_images'): micro R@50, wmAP_rel, wmAP_phr, score_wtd). docs/open_images.md
# shows the data preparation (oi_to_json.py, then json_to_vg.py into data/openimages_v6/) and how to test.
#
# Sources of the settings. What the SpeaQ paper (Kim et al., CVPR 2024) and IterativeSG (Khandelwal and
# Sigal, ECCV 2022) state for their Open Images runs -- schedule, batch, query groups, detector pre-training --
# we could not verify: the public SpeaQ code and README cover Visual Genome only. This config therefore keeps
# the published VG recipe (configs/visual_genome.py: model, loss weights, one-to-many assignment, 150k
# iterations of a global batch of 20, AdamW 1e-4) and changes only what the data forces. Treat it as a
# starting point, not as the paper's OI recipe.
_base_ = ['./_base_/models/speaq_r101.py', './_base_/datasets/vg150.py', './_base_/schedules/speaq_150k.py']

data_root = 'data/openimages_v6/'  # the OUT_DIR of json_to_vg.py
# Set both to the lengths of categories_dict.json "obj" and "rel" of the copy you converted. 601 is the class
# count commonly quoted for PySGG's OI V6 release (not verified here); 30 predicates = OI V6's relations
# without the attribute-like "is" (BGNN-SGG issue #3). The vocabulary check (default_hooks.vocabulary_check)
# refuses a model whose counts differ from the converted data before training or testing starts.
num_entity_classes = 601
num_predicates = 30

model = dict(
    bbox_head=dict(num_entity_classes=num_entity_classes, num_predicates=num_predicates),
    # The reference's query groups are a table of VG predicates; on OI the groups come from the train
    # split's predicate counts (fg_rel_count), in the same 4 groups.
    train_cfg=dict(assigner=dict(group_counts='train_statistics')))

# The converted files keep OI's own val split (use_h5_val_split) and name images <img_fn>.jpg.
oi_dataset = dict(data_root=data_root, use_h5_val_split=True, img_suffix='.jpg')
train_dataloader = dict(dataset=oi_dataset)
val_dataloader = dict(dataset=oi_dataset)
test_dataloader = dict(dataset=dict(oi_dataset, split='test'))

# topk (20, 50, 100): the 100 best (pair, predicate) cells per image, as PySGG; R@50 enters the score.
val_evaluator = dict(_delete_=True, type='SGGMetric', protocol='open_images', topk=(20, 50, 100))
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='sgg/score_wtd'))

# No OI-pretrained DETR is published with SpeaQ: pre-train the detector on the converted data
# (configs/detr_r101_vg150.py with this data_root and 601 classes) and convert it, then set load_from.
load_from = None
