"""Pseudo-labels: a trained scene graph model's predictions on generated images, read or produced, and
written as the JSON scene-graph file that ``json_to_vg`` converts (docs/synthetic_data.md, "2. Pseudo-label").
"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from ..utils.atomic_io import atomic_write


def predict_scene_graphs(config: str, checkpoint: str, images: str, batch_size: int = 8, device: str = 'cpu',
                         topk: int = 100, trust_pickle: Sequence[str] = ()) -> Tuple[List[dict], tuple, tuple]:
    """Run ``speaq_mm.apis.SceneGraphInferencer`` over ``images`` (a folder, a file or a list).

    Every prediction is kept (``score_thr=0``): the curation filters decide what goes, and the report counts
    it.

    Returns:
        tuple: (one scene graph dict per image, class names, predicate names).
    """
    from ..apis import SceneGraphInferencer  # the inferencer loads the model stack; the filters need none of it
    inferencer = SceneGraphInferencer(config, checkpoint=checkpoint, device=device, trust_pickle=tuple(trust_pickle))
    graphs = inferencer(images, batch_size=batch_size, score_thr=0.0, topk=topk)
    return list(graphs), tuple(inferencer.classes), tuple(inferencer.predicates)


def read_predictions(path: str) -> List[dict]:
    """Scene graphs from JSON Lines (one per line, as ``tools/extract_scene_graphs.py`` writes) or from a JSON
    scene-graph file (its ``images``)."""
    try:
        with open(path, encoding='utf-8') as file:
            text = file.read()
    except OSError as error:
        raise FileNotFoundError(f'--predictions {path}: cannot read ({error})') from error
    try:
        content = json.loads(text)
        if isinstance(content, dict) and isinstance(content.get('images'), list):
            return content['images']
        if isinstance(content, dict):
            return [content]
    except json.JSONDecodeError:
        pass
    graphs = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                graphs.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f'{path} line {number}: not valid JSON ({error})') from error
    return graphs


def relative_file_names(graphs: List[dict], image_dir: Optional[str]) -> List[dict]:
    """Give every graph a ``file_name`` relative to ``image_dir`` (where ``json_to_vg --image-dir`` looks) and
    an ``id`` made of it (path separators -> ``_``, suffix dropped): valid VG image ids that match the plan's."""
    out = []
    for graph in graphs:
        name = str(graph['file_name'])
        # A path given from the working directory (or absolute) becomes relative to the image folder.
        if image_dir is not None and (osp.isabs(name) or (osp.exists(name) and not osp.exists(osp.join(image_dir,
                                                                                                         name)))):
            relative = osp.relpath(osp.abspath(name), osp.abspath(image_dir))
            name = relative if not relative.startswith('..') else name
        out.append(dict(graph, file_name=name, id=osp.splitext(name)[0].replace('\\', '/').strip('/').replace(
            '/', '_')))
    return out


def write_scene_graph_json(graphs: Sequence[dict], classes: Sequence[str], predicates: Sequence[str], path: str,
                           overwrite: bool = False) -> None:
    """Write the graphs as a JSON scene-graph file (``classes``, ``predicates``, ``bbox_format`` xyxy,
    ``images``), atomically; an existing file is refused unless ``overwrite``."""
    if osp.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; nothing was written. Pass --overwrite to replace it')
    atomic_write(json.dumps(dict(classes=list(classes), predicates=list(predicates), bbox_format='xyxy',
                                 images=list(graphs))), path)
