"""Scene graphs of a folder, an image list or a dataset split into one JSON Lines file (docs/inference.md).

    python tools/extract_scene_graphs.py CONFIG CHECKPOINT INPUT --out graphs.jsonl [--batch-size 8]
        [--num-workers 2] [--score-thr 0.0] [--topk 100] [--recursive] [--device cpu] [--overwrite]
    tools/dist_extract.sh CONFIG CHECKPOINT INPUT N --out graphs.jsonl ...     (N processes, torchrun)

INPUT is an image, a folder of images (``--recursive``: with its subfolders), a ``.txt``/``.lst`` file with one
image path per line, or ``split:NAME`` for the images of the config's ``NAME_dataloader`` dataset (e.g.
``split:test``). Each line of the output is one image's scene graph in the format
``tools/dataset_converters/json_to_vg.py`` reads, so ``json_to_vg.py graphs.jsonl OUT_DIR --image-dir DIR``
turns it into a training set. ``graphs.jsonl.meta.json`` records the vocabularies, the model, the settings and
the summary of the last run.

A rerun with the same ``--out`` skips the images already written; a killed run loses at most the batches in
flight. An output made with another checkpoint, model config, ``--score-thr`` or ``--topk`` is refused unless
``--overwrite``. Unreadable, empty, truncated and too large images are skipped and listed in the summary.
"""
import argparse
import os

from mmengine.config import DictAction

from speaq_mm.utils.command_line import tool_parser


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = tool_parser(__doc__, config='the model config', checkpoint='the checkpoint (.pth)',
                         input='an image, a folder, a .txt/.lst list of images, or split:NAME')
    parser.add_argument('--out', required=True, help='the JSON Lines file to write (e.g. graphs.jsonl)')
    parser.add_argument('--batch-size', type=int, default=8, help='images per batch (default 8)')
    parser.add_argument('--num-workers', type=int, default=2, help='DataLoader processes reading images (0: none)')
    parser.add_argument('--score-thr', type=float, default=0.0, help='minimum triplet score of a relation')
    parser.add_argument('--topk', type=int, default=100, help='relations per image at most (0: all)')
    parser.add_argument('--recursive', action='store_true', help='also the images in subfolders of a folder INPUT')
    parser.add_argument('--max-pixels', type=int, default=None,
                        help='skip images with more pixels (default 200 million)')
    parser.add_argument('--device', default=None, help='cuda:0, cpu, ... (default: the local GPU when there is one)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an --out made with another model or settings (or not by this tool)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config keys (e.g. test_dataloader.dataset.data_root=... for split:)')
    parser.add_argument('--launcher', choices=['none', 'pytorch'], default='none',
                        help='pytorch: started by torchrun (tools/dist_extract.sh)')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None) -> dict:
    """Extract; return the summary (on rank 0; a rank's own counts elsewhere)."""
    args = parse_args(argv)
    import torch

    from speaq_mm.apis import SceneGraphInferencer
    from speaq_mm.apis.image_inputs import DEFAULT_MAX_PIXELS
    from speaq_mm.apis.scene_graph_extraction import dataset_split_items, extract_scene_graphs
    from speaq_mm.engine import close_process_group, prepare_launch, read_config

    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = read_config(args.config, args.cfg_options)
    device = args.device
    if args.launcher == 'pytorch':
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist('pytorch')
            device = device or f'cuda:{int(os.environ["LOCAL_RANK"])}'
        else:
            prepare_launch(cfg, args.launcher)  # gloo, without the CUDA calls of mmengine's init_dist
    device = device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    inferencer = SceneGraphInferencer(cfg, args.checkpoint, device=device, trust_pickle=args.trust_pickle,
                                      max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS)
    if args.input.startswith('split:'):
        items = dataset_split_items(cfg, args.input[len('split:'):])
    else:
        items = inferencer.prepare_inputs(args.input, recursive=args.recursive)
    summary = extract_scene_graphs(inferencer, items, args.out, args.batch_size, args.num_workers,
                                   args.score_thr, args.topk, args.overwrite)
    close_process_group()
    return summary


if __name__ == '__main__':
    main()
