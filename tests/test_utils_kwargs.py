"""reject_unknown_kwargs names the class the user configured, not the base it forwards to."""
import pytest
from mmdet.datasets import BaseDetDataset

from speaq_mm.utils import reject_unknown_kwargs


def test_accepts_names_of_every_base_in_the_chain():
    reject_unknown_kwargs('VGH5Dataset', BaseDetDataset, dict(data_root='x', pipeline=[], backend_args=None))


def test_refuses_a_typo_naming_the_owner():
    with pytest.raises(TypeError, match="VGH5Dataset.__init__\\(\\) got an unexpected keyword argument 'pipline'"):
        reject_unknown_kwargs('VGH5Dataset', BaseDetDataset, dict(pipline=[]))


def test_open_ended_chain_accepts_anything():
    class Open:
        def __init__(self, **kwargs):
            pass

    class Child(Open):
        def __init__(self, a=1, **kwargs):
            super().__init__(**kwargs)

    reject_unknown_kwargs('Child', Open, dict(anything=1))
