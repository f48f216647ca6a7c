# The real + synthetic mix that vg_synthetic_mix.py and toy_mix.py build their training dataloader from
# (docs/multi_dataset.md lists every key). Every setting is keyed by the datasets' source names; the mix
# configs add the two datasets. Override the keys of train_dataloader, not this variable, e.g.
#   --cfg-options train_dataloader.batch_sampler.source_ratio.real=0.5
mix_train_dataloader = dict(
    # The Runner requires a sampler; SGGRatioBatchSampler only takes its dataset and seed and orders the batches.
    sampler=dict(type='DefaultSampler', shuffle=True),
    # Every global batch holds exactly these shares (normalised by their sum; largest-remainder rounding).
    # infinite=True suits IterBasedTrainLoop (no dataloader restart at each epoch end); keep False with
    # EpochBasedTrainLoop.
    batch_sampler=dict(type='SGGRatioBatchSampler', source_ratio=dict(real=0.7, synthetic=0.3), infinite=False),
    dataset=dict(
        _delete_=True,  # replaces the single dataset of the base config
        type='SGGConcatDataset',
        # Every loss term of a sample is multiplied by its source's weight.
        sample_weights=dict(real=1.0, synthetic=0.5),
        # Per-relation weights of pseudo-labelled sources (files with relationship_scores): source name -> the
        # map from score to weight, e.g. dict(synthetic=dict(power=1.0, floor=0.2)); empty: every relation 1.
        relation_weights=dict(),
        # Sources whose train statistics (predicate counts, triplets) the model reads for the predicate-loss
        # reweighting and the query groups: ['real'] leaves the synthetic counts out.
        statistics_sources=['real']))
