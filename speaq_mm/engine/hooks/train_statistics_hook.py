"""Hand the train split's statistics to the model before the first training step.

The SpeaQ matcher's predicate groups and the criterion's class weights are computed from the train split's
``fg_rel_count``, which the dataset computes when it loads (docs/structures.md). The model is built before the
datasets, so this hook passes them over in ``before_train`` (also after a resume, so the weights always match
the data the run trains on). The reference read them through a lookup wrapped in ``try/except: pass`` and
failed much later with a misleading error; here a missing or invalid statistic stops the run at once.

It is one of the default hooks of every config (configs/_base_/default_runtime.py); for a model that takes no
statistics (mmdet's DETR in the detector pre-training recipe) it does nothing.
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class SpeaQTrainStatisticsHook(Hook):
    """Call ``model.set_train_statistics(train_dataset.metainfo)`` before training, if the model has it."""

    priority = 'VERY_HIGH'

    def before_train(self, runner):
        """Pass the train dataset's metainfo to the model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_train_statistics'):
            return
        dataset = runner.train_dataloader.dataset
        origin = f'train_dataloader.dataset ({type(dataset).__name__})'
        model.set_train_statistics(dataset.metainfo, origin=origin)
