"""Images per second of scene graph extraction (``SceneGraphInferencer.predict``: reading the files, the test
pipeline, the model and the post-processing) at several batch sizes.

    # the tiny toy model on 128 x 128 images (the toy scenes' size)
    python tools/benchmarks/bench_extract.py --images 64 --batch-sizes 1 8
    # the R-101 recipe (configs/visual_genome.py) at 800 x 1333, one CPU thread
    python tools/benchmarks/bench_extract.py --config configs/visual_genome.py --width 1333 --height 800 \
        --images 8 --batch-sizes 1 8 --threads 1

The images are JPEGs of random shapes on a plain background, all of one size (as the images of one camera or
dataset mostly are: batches then hold one input size, docs/inference.md). Without ``--checkpoint`` the model
has random weights (names are generated to match its heads), which costs the same. One batch is run first as
a warm-up. Prints one markdown row per batch size, ready for docs/benchmarks.md.
"""
import argparse
import os.path as osp
import platform
import tempfile
import time

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', default=osp.join(REPO, 'configs', 'toy', 'speaq_tiny_toy_mix.py'))
    parser.add_argument('--checkpoint', default=None, help='default: random weights')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--images', type=int, default=64, help='timed images per batch size')
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--num-workers', type=int, default=0)
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    return parser.parse_args(argv)


def make_images(folder, count, width, height, seed=0):
    """``count`` JPEGs with a few random rectangles and ellipses."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        image = Image.new('RGB', (width, height), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x0, y0 = rng.integers(0, width - 4), rng.integers(0, height - 4)
            box = (int(x0), int(y0), int(rng.integers(x0 + 2, width)), int(rng.integers(y0 + 2, height)))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.rectangle if rng.random() < 0.5 else draw.ellipse)(box, fill=colour)
        path = osp.join(folder, f'{k:05d}.jpg')
        image.save(path, quality=90)
        paths.append(path)
    return paths


def build_inferencer(args):
    """The inferencer; without a checkpoint the config gets generated names of its heads' sizes."""
    from mmengine.config import Config

    from speaq_mm.apis import SceneGraphInferencer
    cfg = Config.fromfile(args.config)
    if args.checkpoint is None:
        head = cfg.model.bbox_head
        dataset = cfg.test_dataloader.dataset
        dataset = dataset.datasets[0] if 'datasets' in dataset else dataset
        dataset.metainfo = dict(classes=[f'class_{k}' for k in range(head.num_entity_classes)],
                                predicates=[f'predicate_{k}' for k in range(head.num_predicates)])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "no checkpoint: random weights" is what this benchmark wants
        return SceneGraphInferencer(cfg, args.checkpoint, device=args.device)


def main(argv=None):
    """Measure and print the rows."""
    args = parse_args(argv)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    inferencer = build_inferencer(args)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        largest = max(args.batch_sizes)
        paths = make_images(folder, args.images + largest, args.width, args.height)
        for batch_size in args.batch_sizes:
            warm_up = inferencer.prepare_inputs(paths[:batch_size])
            for _ in inferencer.predict(warm_up, batch_size, args.num_workers):
                pass
            items = inferencer.prepare_inputs(paths[largest:])
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            start = time.perf_counter()
            relations = sum(len(p.sample.pred_relations) for p in inferencer.predict(items, batch_size,
                                                                                    args.num_workers))
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            rows.append((batch_size, len(items) / seconds, seconds / len(items), relations / len(items)))
    print(f'config {osp.relpath(args.config, REPO)}, {args.width}x{args.height} images, device {args.device}, '
          f'torch threads {torch.get_num_threads()}, num_workers {args.num_workers}, {platform.machine()}, '
          f'torch {torch.__version__}')
    print('| batch size | images/s | s per image | triplets per image |')
    print('|---|---|---|---|')
    for batch_size, rate, per_image, relations in rows:
        print(f'| {batch_size} | {rate:.2f} | {per_image:.3f} | {relations:.0f} |')
    return rows


if __name__ == '__main__':
    main()
