"""Convert the reference detectron2 checkpoints of SpeaQ / IterativeSG to speaq_mm.

Two kinds of file are recognised from their keys (docs/migration.md, "Checkpoints"):

* a relation model (``IterativeRelationDetr``, e.g. the released SpeaQ checkpoint, or a detector file whose
  decoders were already replicated): renamed to ``SpeaQDetector`` names;
* a plain DETR detector (``Detr``, e.g. a ``vg_objectdetector_pretrained.pth`` without replicated decoders):
  renamed to mmdet ``DETR`` names (``configs/detr_r101_vg150.py``). Loading that file into a SpeaQ model with
  ``load_from`` replicates its decoder into the three SpeaQ decoders (see ``SpeaQDetector``).

Renaming is all there is: the attention tensors keep PyTorch's packing, ResNet names follow the torchvision
layout and every backbone BatchNorm gets the ``num_batches_tracked`` counter that detectron2's FrozenBN lacks.
The criterion's class-weight buffers are not model weights (speaq_mm recomputes them from the dataset) and are
kept in the output's ``meta`` for comparison. Keys the tool does not know are reported, never guessed.

Usage::

    python tools/model_converters/speaq_d2_to_mm.py speaq_model_final.pth checkpoints/speaq_r101_mm.pth
    python tools/model_converters/speaq_d2_to_mm.py vg_objectdetector_pretrained.pth \
        checkpoints/detr_r101_vg150_mm.pth
"""
import argparse
import json
import os.path as osp
import re
import sys
from collections import OrderedDict

import numpy as np
import torch

# Key -> shape lists of the reference R-101 checkpoints (copied from the reference_checkpoints spec).
REFERENCE_KEYS = {
    'SpeaQDetector': osp.join(osp.dirname(osp.abspath(__file__)), 'reference_keys', 'speaq_r101.json'),
    'DETR': osp.join(osp.dirname(osp.abspath(__file__)), 'reference_keys', 'detr_r101.json'),
}
BACKBONE = 'detr.backbone.0.backbone.'
TRANSFORMER = 'detr.transformer.'
RELATION_DECODERS = ('subject_layers', 'object_layers', 'relation_layers')
# Modules of the relation decoder that keep their reference names (see SpeaQIterativeRelationDecoder).
GRAPH_MODULES = tuple(f'{stream}_graph_query_{part}' for stream in ('subject', 'object', 'relation')
                      for part in ('attn', 'residual', 'norm'))
DECODER_MODULES = ('object_pos_attn', 'object_pos_linear', 'relation_pos_attn',
                   'relation_pos_linear') + GRAPH_MODULES
# Reference transformer layer -> mmdet DetrTransformer{Encoder,Decoder}Layer.
_LAYER_PARTS = (
    (r'self_attn\.', 'self_attn.attn.'),
    (r'multihead_attn\.', 'cross_attn.attn.'),
    (r'linear1\.', 'ffn.layers.0.0.'),
    (r'linear2\.', 'ffn.layers.1.'),
    (r'norm(\d)\.', lambda m: f'norms.{int(m.group(1)) - 1}.'),
)
RELATION_RENAMES = {
    TRANSFORMER + 'object_embed.': 'bbox_head.entity_classifier.',
    TRANSFORMER + 'object_bbox_coords.': 'bbox_head.box_regressor.',
    TRANSFORMER + 'relation_embed.': 'bbox_head.predicate_classifier.',
    'detr.query_embed.': 'subject_query_embedding.',
    'detr.object_query_embed.': 'object_query_embedding.',
    'detr.relation_query_embed.': 'relation_query_embedding.',
    'detr.input_proj.': 'neck.convs.0.conv.',
}
DETECTOR_RENAMES = {
    TRANSFORMER + 'decoder.norm.': 'decoder.post_norm.',
    'detr.class_embed.': 'bbox_head.fc_cls.',
    'detr.bbox_embed.layers.0.': 'bbox_head.reg_ffn.layers.0.0.',
    'detr.bbox_embed.layers.1.': 'bbox_head.reg_ffn.layers.1.',
    'detr.bbox_embed.layers.2.': 'bbox_head.fc_reg.',
    'detr.query_embed.': 'query_embedding.',
    'detr.input_proj.': 'neck.convs.0.conv.',
}


def read_reference_state_dict(path):
    """The ``model`` state dict of a detectron2 checkpoint (or a bare state dict), without ``module.``.

    ``.pth`` files are read with ``torch.load(weights_only=True)`` and ``.pkl`` files (detectron2's model zoo
    format) with a restricted unpickler: tensors, numpy arrays and plain containers only, so a downloaded
    file cannot run code (``--trust-pickle FILE`` opts in for one file). numpy arrays become tensors.
    """
    from speaq_mm.utils import load_pickle_file, load_torch_file
    if path.endswith('.pkl'):
        checkpoint = load_pickle_file(path, what='reference checkpoint')
    else:
        checkpoint = load_torch_file(path, map_location='cpu', what='reference checkpoint')
    state = checkpoint.get('model', checkpoint) if isinstance(checkpoint, dict) else None
    if isinstance(state, dict):
        state = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f'{path}: expected a detectron2 checkpoint with a "model" state dict of tensors')
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state.items())


def is_relation_model(state):
    """Whether the keys are those of ``IterativeRelationDetr`` (three decoders) rather than plain DETR."""
    return any(key.startswith(TRANSFORMER + 'decoder.subject_layers.') for key in state)


def _layer_part(rest):
    for pattern, replacement in _LAYER_PARTS:
        if re.match(pattern, rest):
            return re.sub(pattern, replacement, rest, count=1)
    return None


def _backbone_key(rest):
    """detectron2 ResNet name -> mmdet/torchvision ResNet name (None if unknown)."""
    if rest.startswith('stem.conv1.'):
        tail = rest[len('stem.conv1.'):]
        return 'backbone.conv1.weight' if tail == 'weight' else f'backbone.bn1.{tail[len("norm."):]}'
    match = re.match(r'res(\d)\.(\d+)\.(conv\d|shortcut)\.(.+)$', rest)
    if match is None:
        return None
    stage, block, conv, tail = match.groups()
    prefix = f'backbone.layer{int(stage) - 1}.{block}.'
    if conv == 'shortcut':
        return prefix + ('downsample.0.weight' if tail == 'weight' else f'downsample.1.{tail[len("norm."):]}')
    return prefix + (f'{conv}.weight' if tail == 'weight' else f'bn{conv[-1]}.{tail[len("norm."):]}')


def _rename(key, relation):
    """Our name for a reference key, or None when it has no counterpart."""
    if key.startswith(BACKBONE):
        return _backbone_key(key[len(BACKBONE):])
    match = re.match(re.escape(TRANSFORMER) + r'(encoder\.layers|decoder\.\w+)\.(\d+)\.(.+)$', key)
    if match is not None:
        stack, index, rest = match.groups()
        stack_name = stack.split('.')[-1]
        if relation and stack_name in DECODER_MODULES:
            return f'{stack}.{index}.{rest}'
        transformer_layer = (stack == 'encoder.layers' or (relation and stack_name in RELATION_DECODERS)
                             or (not relation and stack == 'decoder.layers'))
        part = _layer_part(rest) if transformer_layer else None
        return None if part is None else f'{stack}.{index}.{part}'
    if relation and re.match(re.escape(TRANSFORMER) + r'decoder\.(subject|relation)_norm\.', key):
        return key[len(TRANSFORMER):]
    renames = RELATION_RENAMES if relation else DETECTOR_RENAMES
    for source, target in renames.items():
        if key.startswith(source):
            return target + key[len(source):]
    return None


def convert_state_dict(state):
    """Rename a reference state dict.

    Returns:
        tuple: (converted OrderedDict, report dict with ``kind``, ``criterion_buffers`` (name -> tensor) and
        ``unused`` (reference keys without a counterpart, e.g. plain-DETR heads left in a relation file)).
    """
    relation = is_relation_model(state)
    converted = OrderedDict()
    criterion, unused = OrderedDict(), []
    for key, value in state.items():
        if key.startswith('criterion.'):
            criterion[key] = value
            continue
        name = _rename(key, relation)
        if name is None:
            unused.append(key)
            continue
        converted[name] = value
        if name.startswith('backbone.') and re.search(r'\.(bn\d|downsample\.1)\.running_var$', name):
            converted[name[:-len('running_var')] + 'num_batches_tracked'] = torch.tensor(0, dtype=torch.long)
    report = dict(kind='SpeaQDetector' if relation else 'DETR', criterion_buffers=criterion, unused=unused)
    return converted, report


def reference_layout(kind):
    """The reference R-101 key -> shape list of a file kind (``SpeaQDetector`` or ``DETR``)."""
    with open(REFERENCE_KEYS[kind]) as f:
        return {key: tuple(shape) for key, shape in json.load(f).items()}


def compare_with_reference(state, kind):
    """How a file differs from the reference R-101 layout of its kind: (missing keys, extra keys, keys with
    another shape). Other recipes (class counts, query counts) legitimately differ in shapes only."""
    layout = reference_layout(kind)
    missing = [key for key in layout if key not in state]
    extra = [key for key in state if key not in layout]
    reshaped = [key for key in layout if key in state and tuple(state[key].shape) != layout[key]]
    return missing, extra, reshaped


def parse_args(argv=None):
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description='Convert a SpeaQ/IterativeSG detectron2 checkpoint.')
    parser.add_argument('src', help='detectron2 checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint for speaq_mm (load_from / tools/test.py)')
    parser.add_argument('--overwrite', action='store_true', help='replace dst if it exists')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def main(argv=None):
    """Convert ``src`` to ``dst`` and print what was done."""
    args = parse_args(argv)
    from speaq_mm.utils import trust_files_from_args
    from speaq_mm.utils.atomic_io import atomic_dump
    trust_files_from_args(args)
    if osp.exists(args.dst) and osp.exists(args.src) and osp.samefile(args.src, args.dst):
        raise ValueError(f'dst {args.dst} is the source file itself; write the converted checkpoint elsewhere')
    if osp.exists(args.dst) and not args.overwrite:
        raise FileExistsError(f'dst {args.dst} exists; pass --overwrite to replace it')
    state = read_reference_state_dict(args.src)
    converted, report = convert_state_dict(state)
    meta = dict(converted_from=args.src, kind=report['kind'], unused_reference_keys=report['unused'],
                reference_criterion_buffers={k: v.tolist() for k, v in report['criterion_buffers'].items()})
    atomic_dump(dict(state_dict=converted, meta=meta), args.dst, file_format='pth')
    print(f'{args.src}: {len(state)} reference tensors -> {len(converted)} {report["kind"]} tensors in '
          f'{args.dst}')
    if report['criterion_buffers']:
        print(f'kept in meta, not loaded: {list(report["criterion_buffers"])} (speaq_mm recomputes class '
              'weights from the dataset statistics)')
    if report['unused']:
        print(f'{len(report["unused"])} reference keys have no counterpart and were left out: '
              f'{report["unused"]}')
    missing, extra, reshaped = compare_with_reference(state, report['kind'])
    for what, keys in (('absent from the file', missing), ('not in the reference layout', extra),
                       ('shaped differently from the reference R-101 recipe', reshaped)):
        if keys:
            print(f'{len(keys)} keys {what}: {keys}')
    return report


if __name__ == '__main__':
    main(sys.argv[1:])
