"""The images of a scene graph inference run: which files, their names in the output, and reading them robustly.

* :func:`collect_image_paths`: one image, a folder (optionally recursive) or a text file listing images.
* :func:`unique_image_ids`: an output id per file name that ``json_to_vg`` accepts and no other file shares.
* :func:`read_image` / :func:`decode_image`: any image file as an upright (H, W, 3) uint8 BGR array, decoded
  by the backend of the model's test pipeline (mmcv's ``imfrombytes``, so the pixels are the ones
  ``tools/test.py`` feeds the model), or :class:`UnreadableImageError` with a short ``reason`` the run
  summaries count by.

What happens to each kind of file (docs/inference.md, "Which images"):

=====================  ==============================================================================
grey, palette, EXIF    decoded by the pipeline's backend: 3 channels, upright (cv2 and pillow both apply
                       the EXIF orientation for mmcv's ``'color'`` flag)
RGBA, LA, transparent  composited on white (as image viewers show them), then upright
16-bit                 cv2 scales to 8 bits itself; with the pillow backend we scale (pillow would clip)
huge                   decoded when ``width * height <= max_pixels`` (default 200 MP), else skipped
                       (``too large``): one panorama must not take the memory of the whole run
truncated              skipped (``truncated``): every file is decoded once by Pillow first (JPEGs at 1/8
                       scale, which still reads every byte: cheap), because some decoders (OpenCV 4's
                       cv2) fill the missing rows with grey without an error; OpenCV 5 refuses the file
empty / missing /      skipped (``empty file`` / ``missing file`` / ``not an image``)
not an image
=====================  ==============================================================================
"""
import io
import os
import os.path as osp
import re
from typing import List, Sequence, Tuple

import numpy as np

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp')
LIST_SUFFIXES = ('.txt', '.lst')
# 200 megapixels: a 14000 x 14000 scan decodes (600 MB as BGR), anything larger is skipped as "too large".
DEFAULT_MAX_PIXELS = 200_000_000
# The reasons an image is skipped, as the summaries count them.
SKIP_REASONS = ('missing file', 'empty file', 'not an image', 'truncated', 'too large', 'decode failed')
_SIXTEEN_BIT_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')
_ID_UNSAFE = re.compile(r'[^A-Za-z0-9_.-]')


class UnreadableImageError(ValueError):
    """An input image cannot be used; ``reason`` is one of :data:`SKIP_REASONS`."""

    def __init__(self, path: str, reason: str, detail: str = ''):
        self.path, self.reason, self.detail = path, reason, detail
        super().__init__(f'{path}: {reason}' + (f' ({detail})' if detail else ''))

    def __reduce__(self):  # DataLoader workers send it to the main process pickled
        return type(self), (self.path, self.reason, self.detail)


def collect_image_paths(source: str, recursive: bool = False) -> Tuple[str, List[str]]:
    """The images ``source`` names and the folder their output ``file_name`` is relative to.

    Args:
        source (str): an image file; a folder (its images sorted by relative path; subfolders too with
            ``recursive``); or a ``.txt``/``.lst`` file with one image path per line (relative paths are
            relative to the list's folder; empty lines and lines starting with ``#`` are ignored).
        recursive (bool): descend into subfolders of a folder.

    Returns:
        tuple[str, list[str]]: (root folder, image paths).
    """
    if osp.isdir(source):
        root, paths = source, []
        for folder, subfolders, names in os.walk(source):
            subfolders.sort()
            paths += [osp.join(folder, name) for name in names if name.lower().endswith(IMAGE_SUFFIXES)]
            if not recursive:
                break
        paths.sort(key=lambda path: osp.relpath(path, root))
        if not paths:
            raise FileNotFoundError(f'{source}: no images ({", ".join(IMAGE_SUFFIXES)}) in the folder'
                                    + ('' if recursive else ' (pass --recursive for its subfolders)'))
        return root, paths
    if not osp.isfile(source):
        raise FileNotFoundError(f'{source}: no such image, folder or list file')
    if source.lower().endswith(LIST_SUFFIXES):
        root = osp.dirname(osp.abspath(source))
        with open(source, encoding='utf-8') as file:
            lines = [line.strip() for line in file]
        paths = [line if osp.isabs(line) else osp.join(root, line) for line in lines
                 if line and not line.startswith('#')]
        if not paths:
            raise FileNotFoundError(f'{source}: the list names no image')
        return root, paths
    return osp.dirname(source), [source]


def relative_file_name(path: str, root: str) -> str:
    """``path`` relative to ``root`` with ``/`` separators, or absolute when it lies outside ``root``."""
    relative = osp.relpath(osp.abspath(path), osp.abspath(root))
    if relative.startswith('..'):
        return osp.abspath(path)
    return relative.replace(os.sep, '/')


def unique_image_ids(file_names: Sequence[str]) -> List[str]:
    """One id per file name: the path without its suffix, ``/`` and other characters that ``json_to_vg``
    refuses in an id made ``_``; the suffix is kept (``x_jpg``) where two files would share an id, and a
    number added if that is not enough."""
    def clean(text):
        text = _ID_UNSAFE.sub('_', text.lstrip('/'))
        return '_' + text if text.startswith('.') or not text else text

    stems = [clean(osp.splitext(name)[0]) for name in file_names]
    counts = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    ids = [clean(osp.splitext(name)[0] + '_' + osp.splitext(name)[1].lstrip('.')) if counts[stem] > 1 else stem
           for name, stem in zip(file_names, stems)]
    seen, unique = set(), []
    for image_id in ids:
        candidate, number = image_id, 1
        while candidate in seen:
            number += 1
            candidate = f'{image_id}_{number}'
        seen.add(candidate)
        unique.append(candidate)
    return unique


def read_image(path: str, decode_backend: str = 'cv2', max_pixels: int = DEFAULT_MAX_PIXELS,
               backend_args=None) -> np.ndarray:
    """Read an image file (through mmengine's file backends) as an upright (H, W, 3) uint8 BGR array.

    Raises:
        UnreadableImageError: with ``reason`` ``missing file``, ``empty file`` or those of :func:`decode_image`.
    """
    from mmengine.fileio import get
    try:
        content = get(path, backend_args=backend_args)
    except FileNotFoundError as error:
        raise UnreadableImageError(path, 'missing file', str(error)) from error
    except (OSError, ValueError) as error:
        raise UnreadableImageError(path, 'missing file', f'{type(error).__name__}: {error}') from error
    if not content:
        raise UnreadableImageError(path, 'empty file')
    return decode_image(content, path, decode_backend, max_pixels)


def _has_alpha(image) -> bool:
    return image.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or 'transparency' in image.info


def _check_whole_file(content: bytes, path: str, max_pixels: int):
    """Open and fully decode the file with Pillow; return its (mode, has alpha) or raise UnreadableImageError."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise UnreadableImageError(path, 'too large', f'{width}x{height} pixels, more than max_pixels='
                                                              f'{max_pixels}')
            mode, alpha = image.mode, _has_alpha(image)
            if image.format == 'JPEG':
                image.draft(image.mode, (max(width // 8, 1), max(height // 8, 1)))
            try:
                image.load()
            except (OSError, SyntaxError, ValueError) as error:
                raise UnreadableImageError(path, 'truncated', str(error)) from error
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(path, 'too large', str(error)) from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise UnreadableImageError(path, 'not an image', str(error)) from error
    return mode, alpha


def decode_image(content: bytes, path: str = '<bytes>', decode_backend: str = 'cv2',
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image file bytes as an upright (H, W, 3) uint8 BGR array (see the module docstring).

    Args:
        content (bytes): the file.
        path (str): its name, for errors.
        decode_backend (str): mmcv's ``imfrombytes`` backend (the test pipeline's ``imdecode_backend``).
        max_pixels (int): larger images are refused with reason ``too large``.
    """
    import mmcv
    from PIL import Image, ImageOps
    mode, alpha = _check_whole_file(content, path, max_pixels)
    if alpha or (mode in _SIXTEEN_BIT_MODES and decode_backend != 'cv2'):
        with Image.open(io.BytesIO(content)) as image:
            image = ImageOps.exif_transpose(image)
            if alpha:  # transparent pixels on white, as image viewers show them
                background = Image.new('RGBA', image.size, (255, 255, 255, 255))
                rgb = np.asarray(Image.alpha_composite(background, image.convert('RGBA')).convert('RGB'))
            else:  # 16-bit grey: Pillow's convert('RGB') clips at 255, so scale to 8 bits here
                grey = np.asarray(image, dtype=np.float64)
                grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)
                rgb = np.repeat(grey[..., None], 3, axis=2)
        return np.ascontiguousarray(rgb[..., ::-1])
    try:
        image = mmcv.imfrombytes(content, flag='color', channel_order='bgr', backend=decode_backend)
    except Exception as error:  # any decoder failure of one file must not stop a run over many
        raise UnreadableImageError(path, 'decode failed', f'{type(error).__name__}: {error}') from error
    if image is None or image.ndim != 3 or image.shape[2] != 3 or not image.size:
        raise UnreadableImageError(path, 'decode failed', f'{decode_backend} returned no 3-channel image')
    if image.dtype != np.uint8:
        image = np.clip(np.round(image / 257.0), 0, 255).astype(np.uint8)
    return image


def as_bgr_array(array, where: str) -> np.ndarray:
    """An in-memory input as (H, W, 3) uint8 BGR: (H, W, 3) BGR as mmcv reads it, or (H, W) grey."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or not array.size:
        raise ValueError(f'{where}: an array input must be (H, W, 3) BGR or (H, W) grey, got shape {array.shape}')
    if array.dtype != np.uint8:
        raise ValueError(f'{where}: an array input must be uint8, got {array.dtype}')
    return np.ascontiguousarray(array)
