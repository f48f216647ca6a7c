"""Hand the train split's statistics to the model before the first training step.

The SpeaQ matcher's predicate groups and the criterion's class weights are computed from the train split's
``fg_rel_count``, which the dataset computes when it loads (docs/structures.md). The model is built before the
datasets, so this hook passes them over in ``before_train`` (also after a resume, so the weights always match
the data the run trains on). The reference read them through a lookup wrapped in ``try/except: pass`` and
failed much later with a misleading error; here a missing or invalid statistic stops the run at once.
"""
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class SpeaQTrainStatisticsHook(Hook):
    """Call ``model.set_train_statistics(train_dataset.metainfo)`` before training."""

    priority = 'VERY_HIGH'

    def before_train(self, runner):
        """Pass the train dataset's metainfo to the model."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_train_statistics'):
            raise TypeError(f'SpeaQTrainStatisticsHook needs a model with set_train_statistics, got '
                            f'{type(model).__name__}')
        dataset = runner.train_dataloader.dataset
        origin = f'train_dataloader.dataset ({type(dataset).__name__})'
        model.set_train_statistics(dataset.metainfo, origin=origin)
