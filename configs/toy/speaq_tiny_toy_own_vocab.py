# Fine-tuning into one's own vocabulary, on CPU (docs/own_data.md): the tiny SpeaQ of speaq_tiny_toy_real.py
# on a converted dataset with 8 classes and 5 predicates, started from a toy checkpoint (6 classes,
# 6 predicates) whose rows of the shared names are copied:
#   python tools/train.py configs/toy/speaq_tiny_toy_own_vocab.py \
#       --cfg-options load_from=TOY_CHECKPOINT default_hooks.checkpoint_check.transfer=by_name
_base_ = ['./speaq_tiny_toy_real.py']

data_root = 'data/toy_own_vocab/'  # written by tools/dataset_converters/json_to_vg.py (docs/own_data.md)
# The head follows the dataset's vocabulary (the dicts json of data_root); the query groups come from its train
# statistics (the tiny model's group_counts='train_statistics'), two groups as for the toy scenes.
model = dict(bbox_head=dict(num_entity_classes=8, num_predicates=5))
# This vocabulary has no predicate pair that a horizontal flip swaps ('beside' is symmetric).
train_pipeline = [t for t in _base_.train_pipeline if t['type'] != 'SGGSwapPredicatesOnFlip']
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
