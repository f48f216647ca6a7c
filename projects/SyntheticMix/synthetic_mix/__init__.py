"""The SyntheticMix project's modules; ``custom_imports=dict(imports=['projects.SyntheticMix.synthetic_mix'])``
registers them into mmdet's registries."""
from .sample_weight_ramp_hook import SGGSampleWeightRampHook

__all__ = ['SGGSampleWeightRampHook']
