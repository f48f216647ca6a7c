"""The non-finite guard (SpeaQNonFiniteGuardOptimWrapper + SpeaQNonFiniteGuardHook) in a real mmengine Runner:
injected NaN losses and gradients skip the update, and a normal run warns about nothing."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import tests.models_fixtures  # noqa: F401  (registers the hooks)

NAN_LOSS = -1.0  # an input with this value makes the loss NaN
NAN_GRAD = -2.0  # an input with this value keeps the loss finite but makes a gradient infinite


class ScalarModel(BaseModel):
    """Fits y = 2x with one weight."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs)
        loss = ((self.weight * x - 2 * x) ** 2).mean()
        if (x == NAN_LOSS).any():
            loss = loss * float('nan')
        if (x == NAN_GRAD).any():
            loss = loss + torch.sqrt(self.weight - self.weight.detach()).sum()  # value 0, gradient inf
        return dict(loss=loss)


def run(values, tmp_path, max_bad=3, name='run', wrapper='SpeaQNonFiniteGuardOptimWrapper'):
    dataset = [dict(inputs=torch.tensor([v]), data_samples=BaseDataElement(metainfo=dict(img_path=f'img{i}.jpg')))
               for i, v in enumerate(values)]
    model = ScalarModel()
    runner = Runner(
        model=model, work_dir=str(tmp_path / name), experiment_name=name,
        train_dataloader=dict(dataset=dataset, sampler=dict(type='DefaultSampler', shuffle=False), batch_size=1,
                              collate_fn=pseudo_collate, num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=len(values)),
        optim_wrapper=dict(type=wrapper, optimizer=dict(type='SGD', lr=0.05)),
        param_scheduler=dict(type='ConstantLR', factor=1.0, by_epoch=False),
        custom_hooks=[dict(type='SpeaQNonFiniteGuardHook', max_consecutive_bad_steps=max_bad)],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmdet', log_level='WARNING')
    runner.train()
    return model.weight.item(), runner


def test_bad_steps_are_skipped_like_absent_samples(tmp_path, caplog):
    clean, _ = run([1.0, 0.5, 2.0, 1.5], tmp_path, name='clean')
    guarded, runner = run([1.0, NAN_LOSS, 0.5, NAN_GRAD, 2.0, 1.5], tmp_path, name='guarded')
    assert guarded == pytest.approx(clean, abs=1e-7)
    hook = next(h for h in runner.hooks if type(h).__name__ == 'SpeaQNonFiniteGuardHook')
    assert hook.skipped_steps == 2 and hook.consecutive_bad_steps == 0


def test_the_log_names_terms_parameters_and_images(tmp_path):
    run([1.0, NAN_GRAD, NAN_LOSS, 0.5], tmp_path, name='logged')
    log_text = '\n'.join(path.read_text() for path in (tmp_path / 'logged').rglob('*.log'))
    messages = [line for line in log_text.splitlines() if 'weight update skipped' in line]
    assert len(messages) == 2
    assert "parameters with non-finite gradients: ['weight']" in messages[0] and 'img1.jpg' in messages[0]
    assert "Non-finite logged terms: ['loss']" in messages[1] and 'img2.jpg' in messages[1]


def test_training_stops_after_too_many_consecutive_bad_steps(tmp_path):
    with pytest.raises(RuntimeError, match='3 consecutive training steps') as error:
        run([1.0, NAN_LOSS, NAN_GRAD, NAN_LOSS, 1.0], tmp_path, name='stopped')
    assert 'img3.jpg' in str(error.value)


def test_bad_argument():
    from speaq_mm.engine.hooks import SpeaQNonFiniteGuardHook
    with pytest.raises(ValueError, match='max_consecutive_bad_steps'):
        SpeaQNonFiniteGuardHook(max_consecutive_bad_steps=0)


def test_a_normal_run_warns_about_nothing(tmp_path, recwarn):
    """The guard is an OptimWrapper subclass, so mmengine's scheduler still sees the optimizer step it wrapped."""
    run([1.0, 0.5, 2.0], tmp_path, name='quiet')
    assert [str(w.message) for w in recwarn if 'optimizer.step()' in str(w.message)] == []


def test_a_wrapper_without_the_guard_is_refused(tmp_path):
    with pytest.raises(TypeError, match="optim_wrapper.type='SpeaQNonFiniteGuardOptimWrapper'"):
        run([1.0], tmp_path, name='plain', wrapper='OptimWrapper')
