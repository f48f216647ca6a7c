"""Scene graphs of a whole folder, list or dataset split into one JSON Lines file: batched, split over ranks,
resumable and safe under kill (``tools/extract_scene_graphs.py``; docs/inference.md).

The output ``graphs.jsonl`` holds one scene graph per line (:mod:`.scene_graph_inferencer`'s dicts, the image
entries ``json_to_vg`` reads), in input order. Beside it:

* ``graphs.jsonl.meta.json`` (the sidecar): the vocabularies, the model's identity (checkpoint hash, model and
  test pipeline config) and the settings that change the graphs (``score_thr``, ``topk``), and the summary of
  the last run. An output whose sidecar differs is refused unless ``overwrite`` (nothing is touched then).
* ``graphs.jsonl.part<rank>`` while a run is going: each rank appends the lines of its images to its own part
  file, flushed and fsync'ed after every batch. At the start and at the end, rank 0 merges the output and all
  part files into the output (ordered by input, one line per image, written atomically) and removes the parts.

A killed run therefore loses at most the batches in flight: a line cut by the kill is the last bytes of a part
file without a newline, and the merge drops it (counted in the summary). A rerun skips every image whose
``file_name`` is in the output already and appends the rest. Unreadable images are skipped, counted by reason
and listed in the summary (and retried by the next run).
"""
import glob
import json
import os
import os.path as osp
import time
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..datasets.scene_graph_json import jsonl_meta_path
from ..utils.atomic_io import atomic_dump, atomic_write
from .image_inputs import relative_file_name, unique_image_ids
from .scene_graph_inferencer import ImageItem, SceneGraphInferencer

FORMAT = 'speaq_mm scene graphs (JSON Lines)'
FORMAT_VERSION = 1
# The sidecar entries an existing output must match to be appended to.
IDENTITY_KEYS = ('format_version', 'checkpoint_sha256', 'model_sha256', 'score_thr', 'topk', 'classes',
                 'predicates')


class SceneGraphLines:
    """The JSON Lines output ``path``, its per-rank part files and its sidecar (module docstring)."""

    def __init__(self, path: str):
        self.path = path
        self.meta_path = jsonl_meta_path(path)

    def part_path(self, rank: int) -> str:
        """The file rank ``rank`` appends to."""
        return f'{self.path}.part{rank}'

    def part_paths(self) -> List[str]:
        """The part files on disk (of any earlier world size), by rank."""
        paths = glob.glob(glob.escape(self.path) + '.part*')
        return sorted((p for p in paths if p[len(self.path) + 5:].isdigit()),
                      key=lambda p: int(p[len(self.path) + 5:]))

    def exists(self) -> bool:
        """Whether any of the output's files exists."""
        return osp.exists(self.path) or osp.exists(self.meta_path) or bool(self.part_paths())

    @staticmethod
    def read_lines(path: str) -> Tuple[List[Tuple[str, bytes]], int]:
        """The complete lines of a file as (file_name, line), and how many broken lines were left out (a last
        line without its newline, cut by a kill, or a line that is not a scene graph)."""
        if not osp.exists(path):
            return [], 0
        with open(path, 'rb') as file:
            lines = file.read().split(b'\n')
        broken = 1 if lines[-1].strip() else 0
        entries = []
        for line in lines[:-1]:
            if not line.strip():
                continue
            try:
                file_name = json.loads(line)['file_name']
            except (ValueError, KeyError, TypeError):
                broken += 1
                continue
            entries.append((file_name, line))
        return entries, broken

    def file_names(self) -> set:
        """The images the output holds."""
        return {file_name for file_name, _ in self.read_lines(self.path)[0]}

    def merge(self, order: Sequence[str]) -> dict:
        """Merge the output and the part files into the output: one line per image (the first one found),
        the images of ``order`` in that order after any others; remove the parts. Returns counts."""
        parts = self.part_paths()
        entries, broken = self.read_lines(self.path)
        for part in parts:
            part_entries, part_broken = self.read_lines(part)
            entries += part_entries
            broken += part_broken
        if not parts and not broken:
            return dict(lines=len(entries), broken_lines=0)
        position = {file_name: k for k, file_name in enumerate(order)}
        unique = {}
        for file_name, line in entries:
            unique.setdefault(file_name, line)
        ranked = sorted(unique.items(), key=lambda entry: position.get(entry[0], -1))  # stable: others first
        atomic_write(b''.join(line + b'\n' for _, line in ranked), self.path)
        for part in parts:
            os.remove(part)
        return dict(lines=len(ranked), broken_lines=broken)

    def read_meta(self) -> Optional[dict]:
        """The sidecar's content, or None."""
        if not osp.isfile(self.meta_path):
            return None
        with open(self.meta_path, encoding='utf-8') as file:
            return json.load(file)

    def prepare(self, meta: dict, overwrite: bool) -> None:
        """Check that an existing output was made with the same model and settings (or remove it when
        ``overwrite``), then write the sidecar."""
        if self.exists() and overwrite:
            for path in [self.path, self.meta_path, *self.part_paths()]:
                if osp.exists(path):
                    os.remove(path)
        elif self.exists():
            old = self.read_meta()
            if old is None or old.get('format') != FORMAT:
                raise FileExistsError(f'{self.path} exists but has no sidecar {self.meta_path} of a scene graph '
                                      'extraction; nothing was written. Choose another --out, or pass --overwrite '
                                      'to replace it')
            differing = [key for key in IDENTITY_KEYS if old.get(key) != meta.get(key)]
            if differing:
                details = '; '.join(f'{key}: {_short(old.get(key))} -> {_short(meta.get(key))}' for key in differing)
                raise FileExistsError(f'{self.path} was made with another model or settings ({details}); nothing '
                                      'was written. Choose another --out, or pass --overwrite to replace it')
            meta = dict(old, **meta)
        atomic_dump(meta, self.meta_path, indent=1)

    def write_summary(self, summary: dict) -> None:
        """Record the summary of the run in the sidecar."""
        atomic_dump(dict(self.read_meta() or {}, summary=summary), self.meta_path, indent=1)

    def append(self, rank: int) -> 'PartWriter':
        """A writer appending to rank ``rank``'s part file."""
        return PartWriter(self.part_path(rank))


def _short(value, limit: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + '...'


class PartWriter:
    """Appends scene graph lines to one file; :meth:`flush` makes them durable (after every batch)."""

    def __init__(self, path: str):
        self.file = open(path, 'ab', buffering=0)
        self.pending: List[bytes] = []

    def add(self, graph: dict) -> None:
        """Queue one scene graph line."""
        self.pending.append(json.dumps(graph, separators=(',', ':'), ensure_ascii=False).encode('utf-8') + b'\n')

    def flush(self) -> None:
        """Write the queued lines and fsync them."""
        data = memoryview(b''.join(self.pending))
        while data:
            data = data[self.file.write(data):]
        os.fsync(self.file.fileno())
        self.pending = []

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        self.file.close()


def dataset_split_items(cfg, split: str) -> List[ImageItem]:
    """The images of the config's ``<split>_dataloader`` dataset (``INPUT`` ``split:<name>``), in dataset
    order, with the dataset's image ids and file names relative to its image folder."""
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    key = f'{split}_dataloader'
    if not (cfg.get(key) or {}).get('dataset'):
        raise KeyError(f'{cfg.filename}: no {key}.dataset for INPUT split:{split}')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg[key]['dataset'])
    paths, ids = [], []
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        paths.append(info['img_path'])
        ids.append(str(info.get('img_id', index)))
    root = osp.commonpath([osp.dirname(osp.abspath(p)) for p in paths]) if paths else ''
    file_names = [relative_file_name(path, root) for path in paths]
    if len(set(ids)) != len(ids) or ids != unique_image_ids(ids):
        ids = unique_image_ids(file_names)
    return [ImageItem(index=k, file_name=name, image_id=image_id, path=path)
            for k, (name, image_id, path) in enumerate(zip(file_names, ids, paths))]


def extract_scene_graphs(inferencer: SceneGraphInferencer, items: Sequence[ImageItem], out: str,
                         batch_size: int = 8, num_workers: int = 0, score_thr: float = 0.0,
                         topk: Optional[int] = 100, overwrite: bool = False, log: Callable = print) -> dict:
    """Write the scene graphs of ``items`` to the JSON Lines file ``out`` (module docstring) on every rank of
    the process group (or alone); return the summary (rank 0: of all ranks).

    Images are split over ranks by mmengine's ``DefaultSampler`` (no shuffle, no padding: every image once).
    """
    from mmengine.dataset import DefaultSampler
    from mmengine.dist import all_gather_object, barrier, broadcast_object_list, get_dist_info
    from mmengine.utils import ProgressBar

    rank, world_size = get_dist_info()
    store = SceneGraphLines(out)
    order = [item.file_name for item in items]
    if len(set(order)) != len(order):
        raise ValueError('two inputs have the same file_name; the output could not tell them apart')
    meta = dict(format=FORMAT, format_version=FORMAT_VERSION, bbox_format='xyxy',
                classes=list(inferencer.classes), predicates=list(inferencer.predicates),
                score_thr=score_thr, topk=topk or None, names_from=inferencer.names_from,
                **inferencer.model_identity())
    started = [None]
    if rank == 0:
        try:
            os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
            store.prepare(meta, overwrite)
            started = [store.merge(order)]
        except (OSError, ValueError) as error:  # every rank stops with the same message
            started = [f'{type(error).__name__}: {error}']
    if world_size > 1:
        broadcast_object_list(started)
    if isinstance(started[0], str):
        raise FileExistsError(started[0]) if started[0].startswith('FileExistsError') else RuntimeError(started[0])
    done = store.file_names()
    remaining = [item for item in items if item.file_name not in done]
    sampler = DefaultSampler(remaining, shuffle=False, round_up=False)
    mine = len(sampler)
    if rank == 0:
        log(f'{len(items)} image(s); {len(items) - len(remaining)} already in {out}; {len(remaining)} to do'
            + (f' over {world_size} processes' if world_size > 1 else '') + f'; names from {inferencer.names_from}')
    bar = ProgressBar(mine) if rank == 0 and mine else None
    writer = store.append(rank)
    written, skipped, start = 0, [], time.perf_counter()
    try:
        for count, prediction in enumerate(inferencer.predict(remaining, batch_size, num_workers, sampler), 1):
            if prediction.error is None:
                writer.add(inferencer.to_scene_graph(prediction, score_thr, topk))
                written += 1
            else:
                skipped.append(dict(file_name=prediction.item.file_name, reason=prediction.error.reason,
                                    detail=prediction.error.detail))
            if count % batch_size == 0:
                writer.flush()
            if bar is not None:
                bar.update()
    finally:
        writer.close()
    seconds = time.perf_counter() - start
    local = dict(rank=rank, written=written, skipped=skipped, seconds=seconds)
    everyone = all_gather_object(local) if world_size > 1 else [local]
    if world_size > 1:
        barrier()  # every part file is complete
    if rank != 0:
        return local
    merged = store.merge(order)
    all_skipped = [entry for summary in everyone for entry in summary['skipped']]
    position = {file_name: k for k, file_name in enumerate(order)}
    all_skipped.sort(key=lambda entry: position[entry['file_name']])
    wall = max(summary['seconds'] for summary in everyone)
    summary = dict(inputs=len(items), already_done=len(items) - len(remaining),
                   written=sum(summary['written'] for summary in everyone), skipped=len(all_skipped),
                   skipped_by_reason=dict(Counter(entry['reason'] for entry in all_skipped)),
                   skipped_images=all_skipped, lines_in_output=merged['lines'],
                   broken_lines_dropped=started[0]['broken_lines'] + merged['broken_lines'],
                   processes=world_size, batch_size=batch_size, seconds=round(wall, 2),
                   images_per_second=round(len(remaining) / wall, 3) if wall > 0 else None)
    store.write_summary(summary)
    log(format_summary(summary, out))
    return summary


def format_summary(summary: Dict, out: str) -> str:
    """The end-of-run summary as text."""
    lines = [f'{out}: {summary["lines_in_output"]} scene graph(s); this run wrote {summary["written"]} '
             f'({summary["images_per_second"]} images/s over {summary["processes"]} process(es)), '
             f'{summary["already_done"]} were already there']
    if summary['skipped']:
        lines.append(f'skipped {summary["skipped"]} image(s): ' + ', '.join(
            f'{reason}: {count}' for reason, count in summary['skipped_by_reason'].items()))
        lines += [f'  {entry["file_name"]}: {entry["reason"]}' + (f' ({entry["detail"]})' if entry['detail'] else '')
                  for entry in summary['skipped_images'][:20]]
        if summary['skipped'] > 20:
            lines.append(f'  ... all of them in {out}.meta.json')
    if summary['broken_lines_dropped']:
        lines.append(f'dropped {summary["broken_lines_dropped"]} incomplete line(s) left by a killed run '
                     '(their images were done again)')
    return '\n'.join(lines)
