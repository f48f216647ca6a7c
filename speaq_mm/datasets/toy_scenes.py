"""Small, learnable scene-graph datasets in exactly the Visual Genome (VG150) file layout.

Each image shows 2-4 large coloured shapes on a plain background; the predicates are purely geometric and
follow from the box layout, so a tiny model can learn them. ``style='synthetic'`` renders the same kind of
scenes in a second visual domain (other palette, striped textures, noisy dark background) to stand in for
synthetic data. :func:`make_vg150_scale` writes annotations only, with the sizes of the real VG150 h5
(108,073 images, 1,145,398 boxes, 622,705 relations, the 4 corrupted image-data entries), for benchmarks.
The command line is ``tools/misc/make_toy_scenes.py``; the files are the standard VG names
(``VG_FILE_NAMES``) plus ``VG_100K/<image_id>.jpg``. :func:`render_plan` stands in for a text-to-image model:
it renders the intended scenes of a plan (``speaq_mm.synthetic.planning``) as images only, so that the
synthetic-data pipeline of docs/synthetic_data.md runs end to end without a download.
"""
import itertools
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from speaq_mm.datasets.vg_format import VG_CORRUPTED_IMAGE_IDS, VG_FILE_NAMES, write_vg_dataset

# Names are sorted alphabetically, as the VG dicts assign their indices.
TOY_CLASSES = ('circle', 'cross', 'diamond', 'square', 'star', 'triangle')
TOY_PREDICATES = ('above', 'below', 'left of', 'near', 'on', 'right of')
STYLES = ('real', 'synthetic')
# Per-class fill colour of each style; the synthetic palette is deliberately different.
PALETTES = {
    'real': {'circle': (215, 45, 45), 'cross': (135, 60, 190), 'diamond': (240, 140, 20),
             'square': (40, 90, 210), 'star': (190, 160, 0), 'triangle': (40, 160, 70)},
    'synthetic': {'circle': (60, 205, 225), 'cross': (245, 110, 185), 'diamond': (175, 235, 60),
                  'square': (250, 225, 80), 'star': (235, 235, 235), 'triangle': (255, 125, 90)},
}
# Only shapes whose interior holds a centred smaller shape can carry something "on" them.
CONTAINER_CLASSES = ('circle', 'diamond', 'square')

# Layout rules, in fractions of the image side (see docs/dataset_format.md, "Toy scenes").
NEAR_GAP = 0.06        # box gap <= this: "near"
FAR_GAP = 0.14         # box gap >= this: a direction; gaps in between are never generated
MIN_GAP = 0.015        # shapes never touch
DIRECTION_MARGIN = 0.1  # | |dx| - |dy| | of the box centres is at least this, so the direction is clear
ON_PROBABILITY = 0.35  # share of images with a small shape drawn on a large one

VG150_CLASSES = tuple(
    'airplane, animal, arm, bag, banana, basket, beach, bear, bed, bench, bike, bird, board, boat, '
    'book, boot, bottle, bowl, box, boy, branch, building, bus, cabinet, cap, car, cat, chair, child, '
    'clock, coat, counter, cow, cup, curtain, desk, dog, door, drawer, ear, elephant, engine, eye, '
    'face, fence, finger, flag, flower, food, fork, fruit, giraffe, girl, glass, glove, guy, hair, '
    'hand, handle, hat, head, helmet, hill, horse, house, jacket, jean, kid, kite, lady, lamp, '
    'laptop, leaf, leg, letter, light, logo, man, men, motorcycle, mountain, mouth, neck, nose, '
    'number, orange, pant, paper, paw, people, person, phone, pillow, pizza, plane, plant, plate, '
    'player, pole, post, pot, racket, railing, rock, roof, room, screen, seat, sheep, shelf, shirt, '
    'shoe, short, sidewalk, sign, sink, skateboard, ski, skier, sneaker, snow, sock, stand, street, '
    'surfboard, table, tail, tie, tile, tire, toilet, towel, tower, track, train, tree, truck, trunk, '
    'umbrella, vase, vegetable, vehicle, wave, wheel, window, windshield, wing, wire, woman, zebra'.split(
        ', '))
VG150_PREDICATES = tuple(
    'above, across, against, along, and, at, attached to, behind, belonging to, between, carrying, '
    'covered in, covering, eating, flying in, for, from, growing on, hanging from, has, holding, in, '
    'in front of, laying on, looking at, lying on, made of, mounted on, near, of, on, on back of, '
    'over, painted on, parked on, part of, playing, riding, says, sitting on, standing on, to, under, '
    'using, walking in, walking on, watching, wearing, wears, with'.split(', '))
# The 20 most frequent VG predicates, most frequent first (the long tail of VG150's predicate counts).
VG150_HEAD_PREDICATES = ('on', 'has', 'in', 'of', 'wearing', 'near', 'with', 'above', 'holding', 'behind',
                         'under', 'sitting on', 'wears', 'standing on', 'in front of', 'attached to', 'at',
                         'hanging from', 'over', 'for')
# Sizes of the real VG150 h5 and of its filtered splits (docs/dataset_format.md, "Toy scenes").
VG150_SIZES = dict(images=108073, train_rows=75651, boxes=1145398, relations=622705,
                   train_val_with_rels=62723, test_with_rels=26446)


# ----------------------------------------------------------------------------------------------------------
# Toy scenes
# ----------------------------------------------------------------------------------------------------------
def _box_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two boxes along the axis where they are furthest apart (< 0 when they overlap)."""
    return max(b[0] - a[2], a[0] - b[2], b[1] - a[3], a[1] - b[3])


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _direction(subject: np.ndarray, obj: np.ndarray) -> str:
    """The predicate of the dominant axis between the box centres (image y grows downwards)."""
    dx = (subject[0] + subject[2] - obj[0] - obj[2]) / 2
    dy = (subject[1] + subject[3] - obj[1] - obj[3]) / 2
    if abs(dx) >= abs(dy):
        return 'left of' if dx < 0 else 'right of'
    return 'above' if dy < 0 else 'below'


def scene_relations(boxes: np.ndarray, size: int, duplicate: np.ndarray) -> List[Tuple[int, int, str]]:
    """Every geometric relation between the boxes of one scene, for each ordered pair of boxes.

    A box inside another is "on" it (the reverse pair has no relation); boxes at most ``NEAR_GAP`` apart
    are "near"; any other pair gets the direction of the dominant centre offset. ``duplicate[s, o]`` adds
    the direction as a second predicate to a "near" pair (VG has such duplicate pairs).

    Args:
        boxes (np.ndarray): (K, 4) pixel boxes x1y1x2y2.
        size (int): image side.
        duplicate (np.ndarray): (K, K) bool.

    Returns:
        list: (subject, object, predicate name) in subject-major order.
    """
    relations = []
    for s, subject in enumerate(boxes):
        for o, obj in enumerate(boxes):
            if s == o or _contains(subject, obj):
                continue
            if _contains(obj, subject):
                relations.append((s, o, 'on'))
            elif _box_gap(subject, obj) <= NEAR_GAP * size:
                relations.append((s, o, 'near'))
                if duplicate[s, o]:
                    relations.append((s, o, _direction(subject, obj)))
            else:
                relations.append((s, o, _direction(subject, obj)))
    return relations


def _pair_is_clear(a: np.ndarray, b: np.ndarray, size: int) -> bool:
    """Whether two side-by-side boxes are unambiguous for the predicate rules."""
    gap = _box_gap(a, b)
    if gap < MIN_GAP * size or NEAR_GAP * size < gap < FAR_GAP * size:
        return False
    dx = abs(a[0] + a[2] - b[0] - b[2]) / 2
    dy = abs(a[1] + a[3] - b[1] - b[3]) / 2
    return abs(dx - dy) >= DIRECTION_MARGIN * size


def _random_box(rng: np.random.Generator, size: int, lower: float, upper: float) -> np.ndarray:
    """An integer pixel box of side lower..upper (fraction of the image side), aspect 0.8..1.25, inside
    the image."""
    side = rng.uniform(lower, upper) * size
    w, h = min(round(side * rng.uniform(0.8, 1.25)), size - 2), min(round(side), size - 2)
    x1, y1 = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
    return np.array([x1, y1, x1 + w, y1 + h], np.float64)


def sample_scene(rng: np.random.Generator, size: int, num_objects: int,
                 max_tries: int = 100) -> Tuple[np.ndarray, np.ndarray]:
    """Sample classes and integer pixel boxes of one scene whose relations are all unambiguous.

    Boxes are placed one at a time, each retried until it is clear of the boxes already placed; with some
    probability the first box is a large container holding a smaller centred box ("on"). Falls back to
    fewer objects when no clear layout is found.

    Returns:
        tuple: (labels (K,) int64 0-based, boxes (K, 4) float64 x1y1x2y2).
    """
    for count in range(num_objects, 1, -1):
        for _ in range(max_tries):
            boxes = []
            nested = rng.random() < ON_PROBABILITY
            if nested:
                outer = _random_box(rng, size, 0.45, 0.6)
                side = (outer[2] - outer[0]) * rng.uniform(0.38, 0.5)
                # Centred on its container with a little jitter: stays inside circles and diamonds too.
                centre = (outer[:2] + outer[2:]) / 2 + rng.uniform(-0.05, 0.05, 2) * (outer[2] - outer[0])
                corner = np.round(centre - side / 2)
                boxes = [outer, np.concatenate([corner, corner + round(side)])]
            while len(boxes) < count:
                for _ in range(max_tries):
                    box = _random_box(rng, size, 0.2, 0.34)
                    if all(_pair_is_clear(box, placed, size) for placed in boxes):
                        boxes.append(box)
                        break
                else:
                    break
            if len(boxes) == count:
                labels = rng.integers(0, len(TOY_CLASSES), count)
                if nested:
                    labels[0] = TOY_CLASSES.index(CONTAINER_CLASSES[rng.integers(len(CONTAINER_CLASSES))])
                    while labels[1] == labels[0]:
                        labels[1] = rng.integers(0, len(TOY_CLASSES))
                order = rng.permutation(count)
                return labels[order].astype(np.int64), np.stack(boxes)[order]
    raise RuntimeError(f'no clear layout of 2 objects fits a {size}px image; use a larger --image-size')


def _shape_polygon(name: str, box: np.ndarray) -> Optional[List[Tuple[float, float]]]:
    """Polygon of a shape stretched to fill the box exactly (None for the ellipse)."""
    if name == 'circle':
        return None
    unit = {
        'square': [(0, 0), (1, 0), (1, 1), (0, 1)],
        'triangle': [(0.5, 0), (1, 1), (0, 1)],
        'diamond': [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)],
        'cross': [(1 / 3, 0), (2 / 3, 0), (2 / 3, 1 / 3), (1, 1 / 3), (1, 2 / 3), (2 / 3, 2 / 3), (2 / 3, 1),
                  (1 / 3, 1), (1 / 3, 2 / 3), (0, 2 / 3), (0, 1 / 3), (1 / 3, 1 / 3)],
    }.get(name)
    if unit is None:  # star: 5 outer and 5 inner points, normalised to the unit square
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        points = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
        points = (points - points.min(0)) / (points.max(0) - points.min(0))
        unit = [tuple(p) for p in points]
    x1, y1, x2, y2 = box
    # PIL fills pixel centres up to the last coordinate inclusive, so the far edge is x2 - 1.
    return [(x1 + u * (x2 - 1 - x1), y1 + v * (y2 - 1 - y1)) for u, v in unit]


def render_scene(rng: np.random.Generator, size: int, labels: np.ndarray, boxes: np.ndarray,
                 style: str) -> Image.Image:
    """Draw one scene: containers first, so a shape "on" another is painted over it."""
    if style == 'real':
        background = np.full((size, size, 3), rng.integers(220, 246), np.float64)
        background += rng.integers(-8, 9, 3)
    else:
        ramp = np.linspace(0, 1, size)[:, None, None]
        top, bottom = rng.integers(20, 60, 3), rng.integers(40, 90, 3)
        background = np.broadcast_to(top + ramp * (bottom - top), (size, size, 3)).copy()
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = ((xx + yy) // 4) % 2 == 0
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for k in np.argsort(-areas, kind='stable'):
        name = TOY_CLASSES[labels[k]]
        colour = tuple(
            int(c) for c in np.clip(np.array(PALETTES[style][name]) + rng.integers(-12, 13, 3), 0, 255))
        polygon = _shape_polygon(name, boxes[k])
        x1, y1, x2, y2 = boxes[k]
        if polygon is None:
            draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=colour)
        else:
            draw.polygon(polygon, fill=colour)
        if style == 'synthetic':
            # Diagonal stripes inside the shape: the texture is the second domain's signature.
            mask = Image.new('L', image.size, 0)
            mask_draw = ImageDraw.Draw(mask)
            if polygon is None:
                mask_draw.ellipse((x1, y1, x2 - 1, y2 - 1), fill=255)
            else:
                mask_draw.polygon(polygon, fill=255)
            pixels = np.asarray(image).astype(np.int16)
            inside = (np.asarray(mask) > 0) & stripes
            pixels[inside] = pixels[inside] * 0.6
            image = Image.fromarray(pixels.astype(np.uint8))
            draw = ImageDraw.Draw(image)
    if style == 'synthetic':
        noisy = np.asarray(image).astype(np.float64) + rng.normal(0, 10, (size, size, 3))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return image


def image_ids_with_gaps(count: int, skipped: Sequence[int]) -> List[int]:
    """The first ``count`` positive integers that are not in ``skipped``."""
    skipped = set(skipped)
    ids, candidate = [], 1
    while len(ids) < count:
        if candidate not in skipped:
            ids.append(candidate)
        candidate += 1
    return ids


def corrupted_entries(image_ids: Sequence[int]) -> List[Tuple[int, dict]]:
    """Image-data entries of the 4 corrupted VG ids at the positions that keep the ids sorted."""
    sorted_ids = np.asarray(image_ids)
    entries = []
    for rank, image_id in enumerate(sorted(VG_CORRUPTED_IMAGE_IDS)):
        position = int(np.searchsorted(sorted_ids, image_id)) + rank
        entries.append((position, dict(width=800, height=600, image_id=image_id, url=f'file://{image_id}.jpg',
                                       coco_id=None, flickr_id=None, anti_prop=0.0)))
    return entries


def remove_vg_dataset(out_dir: str) -> int:
    """Delete the files a generator of this module writes into ``out_dir`` (the VG files and the ``.jpg``
    images of the image folder) and return how many there were; other files are left alone.

    ``tools/misc/make_toy_scenes.py --overwrite`` calls it first, so that a new set never mixes with the
    images of an earlier, larger one.
    """
    img_dir = osp.join(out_dir, VG_FILE_NAMES['img_dir'])
    paths = [osp.join(out_dir, VG_FILE_NAMES[key]) for key in ('ann_file', 'image_data_file', 'dicts_file')]
    if osp.isdir(img_dir):
        paths += [osp.join(img_dir, name) for name in os.listdir(img_dir) if name.endswith('.jpg')]
    removed = 0
    for path in paths:
        if osp.isfile(path) or osp.islink(path):
            os.remove(path)
            removed += 1
    return removed


def make_toy_scenes(out_dir: str, num_train: int = 2000, num_val: int = 0, num_test: int = 300,
                    image_size: int = 128, min_objects: int = 2, max_objects: int = 4, style: str = 'real',
                    seed: int = 0, duplicate_rate: float = 0.1, write_images: bool = True,
                    vg_corrupt_ids: bool = False, jpeg_quality: int = 95) -> dict:
    """Generate a toy scene-graph dataset (see the module docstring).

    Rows are ordered train (split 0), val (split 1, only when ``num_val`` > 0), test (split 2). The random
    stream depends on (seed, style), so a real and a synthetic set made with the same seed differ.

    Returns:
        dict: the written paths (``ann_file``, ``image_data_file``, ``dicts_file``, ``img_dir``) and counts.
    """
    if style not in STYLES:
        raise ValueError(f'--style must be one of {STYLES}, got {style!r}')
    if not 2 <= min_objects <= max_objects:
        raise ValueError(f'need 2 <= --min-objects <= --max-objects, got {min_objects}, {max_objects}')
    rng = np.random.default_rng([seed, STYLES.index(style)])
    split = np.repeat([0, 1, 2], [num_train, num_val, num_test])
    image_ids = image_ids_with_gaps(len(split), VG_CORRUPTED_IMAGE_IDS if vg_corrupt_ids else ())
    img_dir = osp.join(out_dir, VG_FILE_NAMES['img_dir'])
    os.makedirs(img_dir, exist_ok=True)
    labels, boxes, relations, box_counts, rel_counts = [], [], [], [], []
    for image_id in image_ids:
        scene_labels, scene_boxes = sample_scene(rng, image_size,
                                                 int(rng.integers(min_objects, max_objects + 1)))
        duplicate = rng.random((len(scene_boxes), len(scene_boxes))) < duplicate_rate
        scene = [(s, o, TOY_PREDICATES.index(p))
                 for s, o, p in scene_relations(scene_boxes, image_size, duplicate)]
        if write_images:
            image = render_scene(rng, image_size, scene_labels, scene_boxes, style)
            image.save(osp.join(img_dir, f'{image_id}.jpg'), quality=jpeg_quality)
        labels.append(scene_labels)
        boxes.append(scene_boxes)
        relations.extend(scene)
        box_counts.append(len(scene_boxes))
        rel_counts.append(len(scene))
    sizes = np.full(len(split), image_size)
    paths = write_vg_dataset(
        out_dir, TOY_CLASSES, TOY_PREDICATES, split, sizes, sizes, image_ids, np.array(box_counts),
        np.concatenate(boxes), np.concatenate(labels), np.array(rel_counts), np.array(relations),
        extra_image_entries=corrupted_entries(image_ids) if vg_corrupt_ids else ())
    return dict(paths, images=len(split), boxes=int(sum(box_counts)), relations=len(relations))


# ----------------------------------------------------------------------------------------------------------
# Rendering a plan (the stand-in for a text-to-image model)
# ----------------------------------------------------------------------------------------------------------
def layout_for_plan(rng: np.random.Generator, size: int, num_objects: int,
                    relations: Sequence[Tuple[int, int, str]], max_tries: int = 60) -> Optional[np.ndarray]:
    """Pixel boxes (one per planned entity, in plan order) whose geometric relations include every planned
    (subject, object, predicate), found by sampling clear layouts and trying every assignment of entities to
    boxes; None when ``max_tries`` layouts do not realise the plan, or when it has more than 4 entities (toy
    scenes hold 2-4 shapes)."""
    if not 2 <= num_objects <= 4:
        return None
    no_duplicates = np.zeros((num_objects, num_objects), bool)
    for _ in range(max_tries):
        _, boxes = sample_scene(rng, size, num_objects)
        if len(boxes) != num_objects:
            continue
        present = set(scene_relations(boxes, size, no_duplicates))
        for order in itertools.permutations(range(num_objects)):
            if all((order[s], order[o], p) in present for s, o, p in relations):
                return boxes[list(order)]
    return None


def render_plan(plans: Sequence[dict], out_dir: str, image_size: int = 128, style: str = 'synthetic',
                seed: int = 0, miss_rate: float = 0.1, overwrite: bool = False, progress: bool = False) -> dict:
    """Render the planned scenes as ``out_dir/<file_name>`` (images only, no annotations).

    Each image shows the plan's entities with a layout that realises its intended relations. Like a
    text-to-image model, the renderer sometimes ignores the prompt: a share ``miss_rate`` of the images (and
    every plan no layout realises) shows a random scene instead, which the plan-agreement filter of the
    pseudo-labelling step should drop.

    Returns:
        dict: counts ``rendered`` (as planned), ``missed`` (random on purpose) and ``unrealisable``, and the
        file names of the images that do not show their plan (``off_plan``).
    """
    if style not in STYLES:
        raise ValueError(f'style must be one of {STYLES}, got {style!r}')
    if not 0 <= miss_rate <= 1:
        raise ValueError(f'miss_rate must lie in [0, 1], got {miss_rate}')
    targets = [osp.join(out_dir, plan['file_name']) for plan in plans]
    existing = [path for path in targets if osp.exists(path)]
    if existing and not overwrite:
        raise FileExistsError(f'{len(existing)} planned images already exist in {out_dir} (e.g. {existing[0]}); '
                              'nothing was written. Pass overwrite=True (--overwrite) to replace them')
    for plan in plans:
        unknown = sorted({obj['name'] for obj in plan['objects']} - set(TOY_CLASSES)) + sorted(
            {r['predicate'] for r in plan['relations']} - set(TOY_PREDICATES))
        if unknown:
            raise ValueError(f'plan {plan["file_name"]}: {unknown} are not toy classes/predicates; the toy renderer '
                             f'draws {TOY_CLASSES} with {TOY_PREDICATES}')
    rng = np.random.default_rng([seed, STYLES.index(style), 7])
    counts = dict(rendered=0, missed=0, unrealisable=0)
    off_plan = []
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(plans))
    for plan, target in zip(plans, targets):
        ids = [obj['id'] for obj in plan['objects']]
        labels = np.array([TOY_CLASSES.index(obj['name']) for obj in plan['objects']], np.int64)
        relations = [(ids.index(r['subject']), ids.index(r['object']), r['predicate']) for r in plan['relations']]
        boxes = None
        if rng.random() >= miss_rate:
            boxes = layout_for_plan(rng, image_size, len(labels), relations)
            counts['rendered' if boxes is not None else 'unrealisable'] += 1
        else:
            counts['missed'] += 1
        if boxes is None:
            off_plan.append(plan['file_name'])
            labels, boxes = sample_scene(rng, image_size, int(rng.integers(2, 5)))
        os.makedirs(osp.dirname(target) or '.', exist_ok=True)
        render_scene(rng, image_size, labels, boxes, style).save(target)
        if bar is not None:
            bar.update()
    return dict(counts, off_plan=off_plan)


# ----------------------------------------------------------------------------------------------------------
# VG150-scale annotations (no images)
# ----------------------------------------------------------------------------------------------------------
def _spread(rng: np.random.Generator, total: int, minimum: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Integer counts >= ``minimum`` summing to ``total``, the surplus drawn in proportion to ``weights``."""
    surplus = total - int(minimum.sum())
    if surplus < 0:
        raise ValueError(f'cannot spread {total} items over minimum counts summing to {int(minimum.sum())}')
    return minimum + rng.multinomial(surplus, weights / weights.sum())


def make_vg150_scale(out_dir: str, seed: int = 0) -> dict:
    """Annotations with the sizes of the real VG150 files: 108,073 h5 rows (75,651 train + 32,422 test),
    1,145,398 boxes, 622,705 relations, 57,723 / 5,000 / 26,446 images after the standard filtering, the
    VG150 vocabulary with a long-tailed predicate distribution, and the 4 corrupted image-data entries.

    Returns:
        dict: the written paths and counts.
    """
    rng = np.random.default_rng(seed)
    sizes = VG150_SIZES
    num_images = sizes['images']
    split = np.where(np.arange(num_images) < sizes['train_rows'], 0, 2)
    train_rows, test_rows = np.flatnonzero(split == 0), np.flatnonzero(split == 2)
    has_rels = np.zeros(num_images, bool)
    has_rels[rng.choice(train_rows, sizes['train_val_with_rels'], replace=False)] = True
    has_rels[rng.choice(test_rows, sizes['test_with_rels'], replace=False)] = True
    # A few images without any box, as in VG; images with relations need two boxes at least.
    no_boxes = np.zeros(num_images, bool)
    no_boxes[rng.choice(np.flatnonzero(~has_rels), 1000, replace=False)] = True
    minimum = np.where(has_rels, 2, np.where(no_boxes, 0, 1))
    box_counts = _spread(rng, sizes['boxes'], minimum, np.where(no_boxes, 0.0,
                                                                rng.gamma(2.0, 1.0, num_images)))
    rel_counts = _spread(rng, sizes['relations'], has_rels.astype(np.int64),
                         np.where(has_rels, box_counts.astype(np.float64), 0.0))
    # Image sizes like VG's: the longer side 500 or 800, the other between 300 and that.
    longer = rng.choice([500, 800], num_images, p=[0.7, 0.3])
    shorter = (longer * rng.uniform(0.6, 1.0, num_images)).astype(np.int64)
    landscape = rng.random(num_images) < 0.6
    width, height = np.where(landscape, longer, shorter), np.where(landscape, shorter, longer)
    box_image = np.repeat(np.arange(num_images), box_counts)
    image_wh = np.column_stack([width, height])[box_image].astype(np.float64)
    box_wh = rng.uniform(0.03, 0.8, (len(box_image), 2)) * image_wh
    corner = rng.uniform(0, 1, (len(box_image), 2)) * (image_wh - box_wh)
    boxes = np.concatenate([corner, corner + box_wh], axis=1)
    label_weights = 1.0 / (np.arange(len(VG150_CLASSES)) + 5.0) ** 1.2
    labels = rng.choice(len(VG150_CLASSES), len(box_image), p=label_weights / label_weights.sum())
    # Predicates: the VG head in frequency order, the rest alphabetically, with a Zipf-like tail.
    ranked = list(VG150_HEAD_PREDICATES) + [p for p in VG150_PREDICATES if p not in VG150_HEAD_PREDICATES]
    rank_weights = 1.0 / np.arange(1, len(ranked) + 1) ** 1.3
    rank = rng.choice(len(ranked), int(rel_counts.sum()), p=rank_weights / rank_weights.sum())
    predicate = np.array([VG150_PREDICATES.index(name) for name in ranked])[rank]
    rel_boxes = np.repeat(box_counts, rel_counts)
    subject = rng.integers(0, rel_boxes)
    obj = (subject + rng.integers(1, rel_boxes)) % rel_boxes
    image_ids = image_ids_with_gaps(num_images, VG_CORRUPTED_IMAGE_IDS)
    paths = write_vg_dataset(out_dir, VG150_CLASSES, VG150_PREDICATES, split, width, height,
                             image_ids, box_counts, boxes, labels, rel_counts,
                             np.column_stack([subject, obj,
                                              predicate]), extra_image_entries=corrupted_entries(image_ids))
    return dict(paths, images=num_images, boxes=int(box_counts.sum()), relations=int(rel_counts.sum()))
