"""Draw the ground-truth boxes and relations of dataset samples, as the model sees them after the pipeline.

Each PNG is drawn by ``SGGLocalVisualizer`` (the visualizer of training, testing and the image demo): the
(augmented) image with numbered, class-labelled boxes beside the scene graph of its relations, every relation
of the sample included.

Example::

    python tools/analysis/browse_dataset.py configs/_base_/datasets/toy_real.py --num 8 \\
        --output-dir work_dirs/browse_toy
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np


def annotations_in_original_frame(pipeline: Sequence[dict]) -> bool:
    """Whether a pipeline loads the annotations after resizing (test pipelines), leaving boxes in
    original-image pixels while the image is resized."""
    types = [str(step.get('type', '')) for step in pipeline]
    if 'SGGLoadAnnotations' not in types:
        return False
    position = types.index('SGGLoadAnnotations')
    return any('Resize' in name for name in types[:position])


def browse(cfg, split: str, output_dir: str, num: int, shuffle: bool = False, seed: int = 0) -> List[str]:
    """Build ``<split>_dataloader.dataset`` of a config and draw ``num`` samples after its pipeline.

    Returns:
        list: the written PNG paths.
    """
    from mmdet.registry import DATASETS
    from mmdet.structures.bbox import get_box_tensor
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    from speaq_mm.visualization import SGGLocalVisualizer

    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    else:
        import speaq_mm  # noqa: F401  (registers the dataset and transforms)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset_cfg = cfg[f'{split}_dataloader'].dataset
    dataset = DATASETS.build(dataset_cfg)
    meta = dataset.metainfo
    parts = dataset_cfg.get('datasets', [dataset_cfg])
    original_frame = [annotations_in_original_frame(part.get('pipeline', [])) for part in parts]
    offsets = np.cumsum([0] + [len(d) for d in getattr(dataset, 'datasets', [dataset])])
    rng = np.random.default_rng(seed)
    np.random.seed(seed)  # the augmentations draw from numpy's global generator
    indices = rng.permutation(len(dataset))[:num] if shuffle else np.arange(min(num, len(dataset)))
    visualizer = SGGLocalVisualizer(name=f'browse_dataset_{split}', topk=10 ** 9)
    visualizer.dataset_meta = meta
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for index in indices:
        packed = dataset[int(index)]
        sample = packed['data_samples']
        image = packed['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB
        if original_frame[int(np.searchsorted(offsets, index, side='right')) - 1]:
            boxes = get_box_tensor(sample.gt_instances.bboxes)
            sample.gt_instances.bboxes = boxes * boxes.new_tensor(np.tile(sample.metainfo['scale_factor'], 2))
        info = sample.metainfo
        path = osp.join(output_dir, f'{int(index):05d}_{info.get("img_id")}.png')
        visualizer.add_datasample(path, np.ascontiguousarray(image), sample, draw_pred=False, out_file=path)
        paths.append(path)
    return paths


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file with <split>_dataloader')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train', help='which dataloader')
    parser.add_argument('--num', type=int, default=8, help='number of samples to draw')
    parser.add_argument('--shuffle', action='store_true',
                        help='draw random samples instead of the first ones')
    parser.add_argument('--seed', type=int, default=0, help='seed of the sample choice and the augmentations')
    parser.add_argument('--output-dir', default='work_dirs/browse_dataset', help='folder for the PNGs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    """Run the tool from the command line."""
    from speaq_mm.engine import read_config
    args = parse_args(argv)
    cfg = read_config(args.config, args.cfg_options)
    paths = browse(cfg, args.split, args.output_dir, args.num, args.shuffle, args.seed)
    print(f'wrote {len(paths)} images to {args.output_dir}')
    return paths


if __name__ == '__main__':
    main()
