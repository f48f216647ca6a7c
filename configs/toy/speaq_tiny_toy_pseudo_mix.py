# The toy mix of `make demo` with its synthetic source replaced by pseudo-labelled toy scenes: planned towards
# the predicate tail, rendered, labelled by the demo model and curated (docs/synthetic_data.md, `make
# synthetic-demo`). Every batch stays 70 % real / 30 % synthetic at sample weight 0.5; on top, each pseudo-label
# weighs its own confidence: weight = max(floor, score ** power) (speaq_mm/datasets/relation_weights.py).
_base_ = ['./speaq_tiny_toy_mix.py']

# What json_to_vg writes for docs/synthetic_data.md (PNG images; every image is training data).
pseudo_train_dataset = dict(_base_.synthetic_train_dataset, data_root='work_dirs/synthetic/vg/', img_suffix='.png',
                            num_val_images=0)
train_dataloader = dict(
    dataset=dict(
        datasets=[_base_.real_train_dataset, pseudo_train_dataset],
        # Source name -> the map from relation score to loss weight: dict() is the identity, power sharpens,
        # floor keeps doubtful relations at a minimum weight. Sources left out weigh every relation 1.
        relation_weights=dict(synthetic=dict(power=1.0, floor=0.2))))
