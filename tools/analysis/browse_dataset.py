"""Draw the ground-truth boxes and relations of dataset samples, as the model sees them after the pipeline.

Each PNG shows the (augmented) image with numbered, class-labelled boxes and one arrow per relation from the
subject to the object, labelled with the predicate, and lists the triplets beside it.

Example::

    python tools/analysis/browse_dataset.py configs/_base_/datasets/toy_real.py --num 8 \\
        --output-dir work_dirs/browse_toy
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

MAX_LISTED = 30  # triplets listed beside the image; the arrows show all of them
ARC = 0.25  # bend of the relation arrows (matplotlib arc3 rad)


def annotations_in_original_frame(pipeline: Sequence[dict]) -> bool:
    """Whether a pipeline loads the annotations after resizing (test pipelines), leaving boxes in
    original-image pixels while the image is resized."""
    types = [str(step.get('type', '')) for step in pipeline]
    if 'LoadSGGAnnotations' not in types:
        return False
    position = types.index('LoadSGGAnnotations')
    return any('Resize' in name for name in types[:position])


def draw_scene_graph(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, pairs: np.ndarray,
                     predicates: np.ndarray, class_names: Sequence[str], predicate_names: Sequence[str],
                     title: str, path: str) -> None:
    """Write one PNG: the image with boxes and relation arrows, and the list of triplets.

    Args:
        image (np.ndarray): (H, W, 3) uint8 RGB.
        boxes (np.ndarray): (N, 4) x1y1x2y2 in the image's pixels.
        labels (np.ndarray): (N,) 0-based classes.
        pairs (np.ndarray): (R, 2) subject/object indices into ``boxes``.
        predicates (np.ndarray): (R,) 0-based predicates.
        class_names, predicate_names (Sequence[str]): vocabularies.
        title (str): figure title.
        path (str): output PNG.
    """
    height, width = image.shape[:2]
    colours = plt.get_cmap('tab10')
    fig, (ax, text_ax) = plt.subplots(1, 2, figsize=(11, 5.5), gridspec_kw=dict(width_ratios=[1.4, 1]))
    ax.imshow(image)
    font = max(6.0, min(10.0, 600 / max(len(boxes), 1) / 8))
    for k, (box, label) in enumerate(zip(boxes, labels)):
        colour = colours(k % 10)
        ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor=colour,
                               linewidth=2))
        ax.text(box[0], box[1], f'{k}:{class_names[label]}', color='white', fontsize=font, va='bottom',
                bbox=dict(facecolor=colour, alpha=0.8, pad=1, edgecolor='none'))
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2 if len(boxes) else np.zeros((0, 2))
    for (s, o), predicate in zip(pairs, predicates):
        start, end = centres[s], centres[o]
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle='-|>', mutation_scale=12, color=colours(s % 10),
                                     linewidth=1.5, connectionstyle=f'arc3,rad={ARC}'))
        # The label sits on the arc's apex, so the two directions of a pair do not overprint each other.
        # (matplotlib bends arc3 in display space; the image axes flip y, hence (-dy, dx).)
        dx, dy = end - start
        apex = (start + end) / 2 + ARC / 2 * np.array([-dy, dx])
        ax.text(apex[0], apex[1], predicate_names[predicate], fontsize=font - 1, ha='center', va='center',
                color=colours(s % 10), bbox=dict(facecolor='white', alpha=0.8, pad=0.5, edgecolor='none'))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(title, fontsize=9)
    ax.axis('off')
    lines = [f'{s}:{class_names[labels[s]]} --{predicate_names[p]}--> {o}:{class_names[labels[o]]}'
             for (s, o), p in zip(pairs, predicates)]
    if len(lines) > MAX_LISTED:
        lines = lines[:MAX_LISTED] + [f'... and {len(lines) - MAX_LISTED} more']
    text_ax.text(0, 1, f'{len(boxes)} objects, {len(pairs)} relations\n\n' + '\n'.join(lines), va='top',
                 family='monospace', fontsize=8, transform=text_ax.transAxes)
    text_ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def browse(cfg, split: str, output_dir: str, num: int, shuffle: bool = False, seed: int = 0) -> List[str]:
    """Build ``<split>_dataloader.dataset`` of a config and draw ``num`` samples after its pipeline.

    Returns:
        list: the written PNG paths.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

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
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for index in indices:
        packed = dataset[int(index)]
        sample = packed['data_samples']
        image = packed['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB
        boxes = sample.gt_instances.bboxes
        boxes = (boxes.tensor if hasattr(boxes, 'tensor') else boxes).numpy().astype(np.float64)
        if original_frame[int(np.searchsorted(offsets, index, side='right')) - 1]:
            boxes = boxes * np.tile(np.asarray(sample.metainfo['scale_factor'], np.float64), 2)
        relations = sample.get('gt_relations')
        pairs = relations.pairs.numpy() if relations is not None else np.zeros((0, 2), np.int64)
        predicates = relations.labels.numpy() if relations is not None else np.zeros(0, np.int64)
        info = sample.metainfo
        title = (f'{split} #{int(index)}  img_id={info.get("img_id")}  source={info.get("source")}  '
                 f'flip={info.get("flip")}  shape={tuple(info.get("img_shape", image.shape[:2]))}')
        path = osp.join(output_dir, f'{int(index):05d}_{info.get("img_id")}.png')
        draw_scene_graph(np.ascontiguousarray(image), boxes, sample.gt_instances.labels.numpy(), pairs,
                         predicates, meta['classes'], meta['predicates'], title, path)
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
