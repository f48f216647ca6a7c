"""Training hooks; each registers into mmdet's HOOKS on import."""
from .checkpoint_compatibility_hook import SpeaQCheckpointCompatibilityHook
from .empty_relations_guard_hook import SpeaQEmptyRelationsGuardHook
from .evaluation_progress_hook import SGGEvaluationProgressHook
from .exact_resume_hook import SpeaQExactResumeHook
from .non_finite_guard_hook import SpeaQNonFiniteGuardHook
from .source_mix_hook import SGGSourceMixHook
from .speaq_checkpoint_hook import SpeaQCheckpointHook
from .train_statistics_hook import SpeaQTrainStatisticsHook
from .vocabulary_check_hook import SpeaQVocabularyCheckHook

__all__ = [
    'SpeaQCheckpointCompatibilityHook', 'SpeaQEmptyRelationsGuardHook', 'SpeaQExactResumeHook',
    'SGGEvaluationProgressHook', 'SpeaQNonFiniteGuardHook', 'SGGSourceMixHook', 'SpeaQCheckpointHook',
    'SpeaQTrainStatisticsHook', 'SpeaQVocabularyCheckHook'
]
