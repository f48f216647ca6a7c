"""Run a scene graph model on your own images: draws each scene graph and writes it as JSON.

    python tools/demo/image_demo.py IMAGE_OR_FOLDER CONFIG CHECKPOINT --out-dir DIR [--topk 20]
        [--score-thr 0.0] [--device cpu]

IMAGE_OR_FOLDER is one image or a folder of them (JPEG, PNG, BMP, GIF, TIFF, WebP; any size, grey, palette,
RGBA or 16-bit; EXIF orientation is applied). No dataset files are needed: the class and predicate names come
from the checkpoint, else from the config (``speaq_mm.apis.SceneGraphInferencer``, docs/inference.md).

For every image the out dir receives ``<id>.png`` (the image with the boxes of the entities of the top
triplets, and the graph beside it) and ``<id>.json``, the scene graph in the format of docs/inference.md
(the one ``tools/dataset_converters/json_to_vg.py`` reads)::

    {"file_name": "rocket.jpg", "id": "rocket", "width": W, "height": H,
     "objects": [{"id": 0, "name": "square", "label": 3, "bbox": [x1, y1, x2, y2], "score": 0.91}, ...],
     "relations": [{"subject": 0, "object": 1, "predicate": "left of", "predicate_label": 2, "score": 0.42,
                    "predicate_score": 0.77, "query_id": 17}, ...]}

``<id>`` is the file name without its extension (with it when two files share a name). ``summary.json``
lists every image processed and every file skipped. For thousands of images, use
``tools/extract_scene_graphs.py`` (batched, resumable, one JSON Lines file).
"""
import argparse
import os
import os.path as osp


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('inputs', metavar='IMAGE_OR_FOLDER', help='an image or a folder of images')
    parser.add_argument('config', help='the model config')
    parser.add_argument('checkpoint', help='the checkpoint (.pth)')
    parser.add_argument('--out-dir', required=True,
                        help='folder for the drawings and JSON files (not the folder of the images)')
    parser.add_argument('--topk', type=int, default=20, help='triplets drawn and written per image (0: all)')
    parser.add_argument('--score-thr', type=float, default=0.0, help='minimum triplet score')
    parser.add_argument('--device', default=None, help='cuda:0, cpu, ... (default: cuda:0 when available)')
    from speaq_mm.utils import add_trust_argument
    add_trust_argument(parser)
    return parser.parse_args(argv)


def build_inferencer(args):
    """The inferencer of the demo's model (the checkpoint loads only when it fills every model tensor)."""
    import torch

    from speaq_mm.apis import SceneGraphInferencer
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    return SceneGraphInferencer(args.config, args.checkpoint, device=device, trust_pickle=args.trust_pickle)


def main(argv=None) -> dict:
    """Run the demo; return the summary written to ``summary.json``."""
    args = parse_args(argv)
    from speaq_mm.utils.atomic_io import atomic_dump
    from speaq_mm.utils.output_guard import refuse_outputs_among_inputs
    inferencer = build_inferencer(args)
    items = inferencer.prepare_inputs(args.inputs)
    refuse_outputs_among_inputs(args.out_dir, [item.path for item in items if item.path])
    os.makedirs(args.out_dir, exist_ok=True)
    summary = dict(names_from=inferencer.names_from, checkpoint=args.checkpoint, images=[], skipped=[])
    print(f'class and predicate names from {inferencer.names_from}; {len(items)} image(s)')
    for prediction in inferencer.predict(items, keep_images=True):
        path = prediction.item.path
        if prediction.error is not None:
            if len(items) == 1:
                raise prediction.error
            print(f'skipped: {prediction.error}')
            summary['skipped'].append(dict(image=path, reason=str(prediction.error)))
            continue
        stem = prediction.item.image_id
        graph = inferencer.to_scene_graph(prediction, args.score_thr, args.topk)
        drawing_path = osp.join(args.out_dir, f'{stem}.png')
        inferencer.draw(prediction, drawing_path, args.score_thr, args.topk)
        json_path = osp.join(args.out_dir, f'{stem}.json')
        atomic_dump(graph, json_path)
        relations, objects = graph['relations'], graph['objects']
        best = (f', best: {objects[relations[0]["subject"]]["name"]} --{relations[0]["predicate"]}--> '
                f'{objects[relations[0]["object"]]["name"]} ({relations[0]["score"]:.3g})') if relations else ''
        print(f'{path}: {graph["width"]}x{graph["height"]}, {len(relations)} triplets{best}')
        summary['images'].append(dict(image=path, drawing=drawing_path, json=json_path, triplets=len(relations)))
    atomic_dump(summary, osp.join(args.out_dir, 'summary.json'))
    print(f'wrote {len(summary["images"])} drawing(s) and JSON file(s) to {args.out_dir}')
    return summary


if __name__ == '__main__':
    main()
