# The multi-dataset recipe (speaq_multi.py) on 1 GPU: 4 accumulated micro-batches of 5 images per optimizer
# step, the recipe's global batch of 20 (4 GPUs x 5). docs/distributed.md, "Gradient accumulation".
#   python tools/train.py configs/speaq_multi_accumulate.py                       # 1 GPU x 4 micro-batches
# optim_wrapper.accumulative_counts is the one option: the run config hands it to the ratio sampler
# (train_dataloader.batch_sampler.accumulative_counts), which then holds the exact 14 + 6 over the 4
# micro-batches of every step (4 + 1, 4 + 1, 3 + 2, 3 + 2) rather than per micro-batch. The box losses divide
# by each micro-batch's own matched pairs (match_normaliser='per_micro_batch'), so these steps equal those of
# 4 GPUs x 5 run with the same normaliser; the reference's mean over GPUs needs micro-batches not yet run.
# mmengine's iterations count micro-batches: train_cfg.max_iters, the validation, checkpoint and log intervals
# and the learning-rate milestone of speaq_150k.py are in iterations, so this config multiplies them by 4 to
# keep the recipe's 150k optimizer steps (with 2 GPUs x 2, set them for 2). --auto-scale-lr does not know
# about accumulation (it scales by GPUs x batch_size): leave it off, the global batch is already 20.
_base_ = ['./speaq_multi.py']

accumulation = 4
optim_wrapper = dict(accumulative_counts=accumulation)
model = dict(bbox_head=dict(criterion=dict(match_normaliser='per_micro_batch')))
train_cfg = dict(max_iters=150000 * accumulation, val_interval=6000 * accumulation)
param_scheduler = [
    dict(type='MultiStepLR', begin=0, end=150000 * accumulation, by_epoch=False, milestones=[96000 * accumulation],
         gamma=0.1),
]
default_hooks = dict(logger=dict(interval=50 * accumulation), checkpoint=dict(interval=1000 * accumulation))
