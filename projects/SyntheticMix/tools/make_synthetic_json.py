"""Make a synthetic scene graph set as an image-generation pipeline would hand it over: rendered images plus
one JSON file of scene graphs (the format of docs/tools.md), with the usual
defects of such output mixed in, so that the conversion report has something to show.

    python projects/SyntheticMix/tools/make_synthetic_json.py data/synthetic_mix [--num-images 400]
        [--seed 1] [--defects 4]

The scenes come from the toy generator (``speaq_mm.datasets.toy_scenes``, synthetic style). OUT_DIR receives
``images/gen_<n>.jpg`` and ``scene_graphs.json``: string image ids, COCO-style ``xywh`` boxes, no vocabulary
lists (the converter takes the real set's with ``--vocab``), and ``--defects`` of each kind of defect:
an object of an unknown class (``blob``), a relation with an unknown predicate (``touching``), a relation to
an object id that does not exist, and a box reaching past the image border (clipped, not dropped).
"""
import argparse
import json
import os
import os.path as osp
import shutil
import tempfile

from speaq_mm.datasets.scene_graph_json import vg_to_json
from speaq_mm.datasets.toy_scenes import make_toy_scenes

DEFECT_KINDS = ('unknown class', 'unknown predicate', 'missing object id', 'box past the border')


def make_synthetic_json(out_dir: str, num_images: int = 400, seed: int = 1, defects: int = 4) -> dict:
    """Render the scenes and write ``images/`` and ``scene_graphs.json`` under ``out_dir``.

    Returns:
        dict: ``json_file``, ``image_dir``, ``images`` and ``defects`` (kind -> count injected).
    """
    image_dir = osp.join(out_dir, 'images')
    os.makedirs(image_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        make_toy_scenes(scratch, num_train=num_images, num_test=0, style='synthetic', seed=seed)
        exported = osp.join(scratch, 'scene_graphs.json')
        vg_to_json(scratch, exported)
        with open(exported) as file:
            images = json.load(file)['images']
        for image in images:
            new_name = f'gen_{int(image["id"]):06d}.jpg'
            shutil.copyfile(osp.join(scratch, 'VG_100K', image['file_name']), osp.join(image_dir, new_name))
            image.update(file_name=new_name, id=osp.splitext(new_name)[0])
            image.pop('split')  # the converter's --default-split (train) applies
            for obj in image['objects']:
                x1, y1, x2, y2 = obj['bbox']
                obj['bbox'] = [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]
    injected = dict.fromkeys(DEFECT_KINDS, 0)
    # Defects go to distinct images from the end of the list, one kind after the other.
    victims = iter(reversed(images))
    for kind in DEFECT_KINDS:
        for _ in range(defects):
            image = next(victims, None)
            if image is None:
                break
            if kind == 'unknown class':
                image['objects'].append(dict(id=len(image['objects']), name='blob', bbox=[2, 2, 10, 10]))
            elif kind == 'unknown predicate':
                image['relations'].append(dict(subject=0, object=1, predicate='touching'))
            elif kind == 'missing object id':
                image['relations'].append(dict(subject=0, object=99, predicate='near'))
            else:
                box = image['objects'][0]['bbox']
                box[2] = image['width'] - box[0] + 10  # 10 px past the right border
            injected[kind] += 1
    json_file = osp.join(out_dir, 'scene_graphs.json')
    with open(json_file, 'w') as file:
        json.dump(dict(info=dict(generator='toy scenes, synthetic style', seed=seed), bbox_format='xywh',
                       images=images), file)
    return dict(json_file=json_file, image_dir=image_dir, images=len(images), defects=injected)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out_dir', help='output folder')
    parser.add_argument('--num-images', type=int, default=400)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--defects', type=int, default=4, help='images given each kind of defect')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    """Make the set and print what was written."""
    args = parse_args(argv)
    result = make_synthetic_json(args.out_dir, args.num_images, args.seed, args.defects)
    print(f'wrote {result["images"]} images to {result["image_dir"]} and {result["json_file"]}; defects injected: '
          f'{result["defects"]}')
    return result


if __name__ == '__main__':
    main()
