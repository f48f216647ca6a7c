"""The reference checkpoint converter on fabricated state dicts with exactly the reference names and shapes,
and the parameter count of the R-101 recipe."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.runner.checkpoint import load_checkpoint, load_state_dict

import tests.models_fixtures  # noqa: F401  (registers speaq_mm; mmdet as the default scope)
from tests.datasets_fixtures import load_tool
from tests.tools_fixtures import fabricate

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
converter = load_tool('tools/model_converters/speaq_d2_to_mm.py')

REFERENCE_PARAMETERS = 93_328_270  # "Number of Parameters" printed by the reference SpeaQ build


def build(config):
    cfg = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'models', config))
    cfg.model.get('backbone', {}).pop('init_cfg', None)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def speaq_r101():
    return build('speaq_r101.py')


def is_reference_buffer(key):
    """detectron2 FrozenBN statistics and affine terms are buffers, as are the criterion's class weights."""
    return '.norm.' in key and key.startswith(converter.BACKBONE) or key.startswith('criterion.')


def test_r101_recipe_has_exactly_the_reference_parameters(speaq_r101):
    layout = converter.reference_layout('SpeaQDetector')
    reference = sum(torch.Size(shape).numel() for key, shape in layout.items() if not is_reference_buffer(key))
    assert reference == REFERENCE_PARAMETERS
    # mmdet's frozen BatchNorm keeps weight and bias as (non-trainable) parameters; detectron2 as buffers.
    ours = {name: p for name, p in speaq_r101.named_parameters()
            if not (name.startswith('backbone.') and ('.bn' in name or '.downsample.1.' in name))}
    assert sum(p.numel() for p in ours.values()) == REFERENCE_PARAMETERS
    assert len(ours) == sum(1 for key in layout if not is_reference_buffer(key))


def test_iterative_sg_baseline_has_the_reference_baseline_parameters():
    # Same code with 300 relation queries: 93,251,470 (docs/model.md, "Pretrained weights and checkpoints").
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'iterative_sg.py'), import_custom_modules=False)
    model = MODELS.build(cfg.model)
    ours = [p for name, p in model.named_parameters()
            if not (name.startswith('backbone.') and ('.bn' in name or '.downsample.1.' in name))]
    assert sum(p.numel() for p in ours) == REFERENCE_PARAMETERS - 300 * 256 == 93_251_470


def test_converted_speaq_checkpoint_loads_without_missing_or_unexpected_keys(speaq_r101, tmp_path):
    reference = fabricate('SpeaQDetector')
    converted, report = converter.convert_state_dict(reference)
    assert report['kind'] == 'SpeaQDetector' and report['unused'] == []
    assert list(report['criterion_buffers']) == ['criterion.empty_weight_obj', 'criterion.empty_rel_weight']
    result = speaq_r101.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    pairs = {
        'detr.transformer.decoder.relation_pos_attn.3.k_proj_weight':
            speaq_r101.decoder.relation_pos_attn[3].k_proj_weight,
        'detr.transformer.decoder.object_layers.5.multihead_attn.in_proj_weight':
            speaq_r101.decoder.object_layers[5].cross_attn.attn.in_proj_weight,
        'detr.transformer.encoder.layers.2.norm2.bias': speaq_r101.encoder.layers[2].norms[1].bias,
        'detr.transformer.object_bbox_coords.layers.2.weight': speaq_r101.bbox_head.box_regressor.layers[2].weight,
        'detr.transformer.relation_embed.bias': speaq_r101.bbox_head.predicate_classifier.bias,
        'detr.query_embed.weight': speaq_r101.subject_query_embedding.weight,
        'detr.relation_query_embed.weight': speaq_r101.relation_query_embedding.weight,
        'detr.input_proj.weight': speaq_r101.neck.convs[0].conv.weight,
        'detr.backbone.0.backbone.res4.22.conv3.norm.running_var': speaq_r101.backbone.layer3[22].bn3.running_var,
        'detr.backbone.0.backbone.res5.0.shortcut.weight': speaq_r101.backbone.layer4[0].downsample[0].weight,
        'detr.backbone.0.backbone.stem.conv1.norm.bias': speaq_r101.backbone.bn1.bias,
    }
    for key, tensor in pairs.items():
        assert torch.equal(reference[key], tensor), key
    # The command line writes an mmengine checkpoint that load_checkpoint reads.
    src, dst = tmp_path / 'speaq_d2.pth', tmp_path / 'speaq_mm.pth'
    torch.save(dict(model=reference, iteration=150000), src)
    converter.main([str(src), str(dst)])
    speaq_r101.relation_query_embedding.weight.data.zero_()
    checkpoint = load_checkpoint(speaq_r101, str(dst), strict=True)
    assert torch.equal(speaq_r101.relation_query_embedding.weight, reference['detr.relation_query_embed.weight'])
    assert checkpoint['meta']['kind'] == 'SpeaQDetector'
    assert len(checkpoint['meta']['reference_criterion_buffers']['criterion.empty_rel_weight']) == 51


def test_converted_detector_loads_into_detr_and_initialises_speaq(speaq_r101):
    reference = fabricate('DETR', seed=1)
    converted, report = converter.convert_state_dict(reference)
    assert report['kind'] == 'DETR' and report['unused'] == []
    detr = build('detr_r101.py')
    result = detr.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(detr.bbox_head.reg_ffn.layers[0][0].weight, reference['detr.bbox_embed.layers.0.weight'])
    # load_from of that file into SpeaQ: the decoder goes to all three stacks; the rest stays fresh.
    torch_result = speaq_r101.load_state_dict(dict(converted), strict=False)
    missing, unexpected = torch_result.missing_keys, torch_result.unexpected_keys
    decoder_key = 'detr.transformer.decoder.layers.4.linear1.weight'
    for stream in ('subject', 'object', 'relation'):
        layer = getattr(speaq_r101.decoder, f'{stream}_layers')[4]
        assert torch.equal(layer.ffn.layers[0][0].weight, reference[decoder_key])
    assert torch.equal(speaq_r101.subject_query_embedding.weight, reference['detr.query_embed.weight'])
    fresh = {'object_query_embedding.weight', 'relation_query_embedding.weight'}
    assert set(missing) - fresh == {k for k in speaq_r101.state_dict() if k.startswith(
        ('bbox_head.', 'decoder.subject_norm', 'decoder.relation_norm', 'decoder.object_pos', 'decoder.relation_pos',
         'decoder.subject_graph', 'decoder.object_graph', 'decoder.relation_graph'))}
    assert fresh <= set(missing)
    assert set(unexpected) == {'decoder.post_norm.weight', 'decoder.post_norm.bias', 'bbox_head.fc_cls.weight',
                               'bbox_head.fc_cls.bias', 'bbox_head.reg_ffn.layers.0.0.weight',
                               'bbox_head.reg_ffn.layers.0.0.bias', 'bbox_head.reg_ffn.layers.1.weight',
                               'bbox_head.reg_ffn.layers.1.bias', 'bbox_head.fc_reg.weight', 'bbox_head.fc_reg.bias'}
    load_state_dict(speaq_r101, dict(converted), strict=False)  # mmengine's loader (load_from) agrees


def test_replicated_release_and_odd_files(tmp_path):
    # A detector file whose decoders were already replicated, with its plain-DETR keys still present and
    # a DDP prefix: relation names are taken, the plain ones reported.
    state = {
        'module.detr.transformer.decoder.subject_layers.0.norm3.weight': torch.ones(4),
        'module.detr.transformer.decoder.layers.0.norm3.weight': torch.ones(4),
        'module.detr.class_embed.weight': torch.ones(3, 4),
        'module.detr.transformer.decoder.norm.bias': torch.zeros(4),
        'module.detr.something_new.weight': torch.zeros(1),
    }
    path = tmp_path / 'release.pth'
    torch.save(state, path)  # a bare state dict is accepted too
    converted, report = converter.convert_state_dict(converter.read_reference_state_dict(str(path)))
    assert report['kind'] == 'SpeaQDetector'
    assert list(converted) == ['decoder.subject_layers.0.norms.2.weight']
    assert report['unused'] == ['detr.transformer.decoder.layers.0.norm3.weight', 'detr.class_embed.weight',
                                'detr.transformer.decoder.norm.bias', 'detr.something_new.weight']
    missing, extra, reshaped = converter.compare_with_reference(
        converter.read_reference_state_dict(str(path)), 'SpeaQDetector')
    assert 'detr.class_embed.weight' in extra and reshaped == ['detr.transformer.decoder.subject_layers.0.norm3.weight']
    assert len(missing) == 1170


def test_unreadable_file_is_rejected(tmp_path):
    path = tmp_path / 'not_a_checkpoint.pth'
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match='not_a_checkpoint.pth: expected a detectron2 checkpoint'):
        converter.read_reference_state_dict(str(path))
