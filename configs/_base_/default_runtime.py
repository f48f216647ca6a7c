# Runtime settings every speaq_mm config inherits.
# speaq_mm registers its modules in mmdet's registries, so the scope stays 'mmdet' and importing the
# package (custom_imports) is all that is needed to use them beside mmdet's own.
default_scope = 'mmdet'
custom_imports = dict(imports=['speaq_mm'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Writes, then points last_checkpoint at, then retires: a crash mid-save never leaves no checkpoint.
    checkpoint=dict(type='SpeaQCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # score_thr applies to triplet scores with SGGLocalVisualizer; 0 keeps every top-K triplet.
    visualization=dict(type='DetVisualizationHook', score_thr=0.0),
    # The safeguards every recipe needs, here so that no config has to list them (and none can lose them by
    # setting its own custom_hooks). mmengine merges default_hooks by name: change one with
    # default_hooks=dict(empty_relations_guard=dict(max_consecutive_empty_batches=20)), or switch it off with
    # --cfg-options default_hooks.<name>=None. Each does nothing where it does not apply (docs/model.md).
    # Hands the train split's predicate counts to the model (query groups, class weights) before training.
    train_statistics=dict(type='SpeaQTrainStatisticsHook'),
    # Skips an update whose loss or gradient is not finite; stops after max_consecutive_bad_steps in a row.
    non_finite_guard=dict(type='SpeaQNonFiniteGuardHook', max_consecutive_bad_steps=10),
    # With several sources: logs source_frac_<name> / source_weight_<name>; keeps the sampler state on resume.
    source_mix=dict(type='SGGSourceMixHook'),
    # Refuses a checkpoint whose tensors do not fit the model, or that shares too few keys with it.
    checkpoint_check=dict(type='SpeaQCheckpointCompatibilityHook', min_matched_share=0.5),
    # Refuses a model whose class or predicate count differs from the dataset's vocabulary.
    vocabulary_check=dict(type='SpeaQVocabularyCheckHook'),
    # Stops a run whose pipeline leaves max_consecutive_empty_batches batches in a row without a relation.
    empty_relations_guard=dict(type='SpeaQEmptyRelationsGuardHook', max_consecutive_empty_batches=10),
    # Seeds every iteration from (seed, rank, iteration) and keeps the batch sampler's state in checkpoints, so
    # that a resumed run equals the run never stopped (with SpeaQIterBasedTrainLoop, docs/distributed.md).
    exact_resume=dict(type='SpeaQExactResumeHook'))

# dist_cfg.backend is replaced by gloo on machines without CUDA (speaq_mm.engine.prepare_launch).
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
# Draws the boxes and the top triplets as a graph (tools/test.py --show-dir, docs/tools.md).
visualizer = dict(type='SGGLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'

# A fixed seed makes samplers and augmentation reproducible, which resuming relies on.
randomness = dict(seed=42, deterministic=False, diff_rank_seed=False)
load_from = None
resume = False
