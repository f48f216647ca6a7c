"""Every place where speaq_mm changes or works around mmengine's own behaviour, in one module.

speaq_mm is tested with mmengine 0.10.7 (``TESTED_MMENGINE``). Each workaround below says what it targets, is
guarded by ``digit_version`` where a later mmengine fixes the cause, and says when to remove it. Workarounds
1, 2 and 8-10 act for the whole process and are installed by :func:`install_process_wide_workarounds` when
``speaq_mm`` is imported (README, "What importing speaq_mm changes"):

1. :data:`CHECKPOINT_LOADERS` become mmengine's loaders for every checkpoint source it knows (local paths,
   ``http(s)://``, ``torchvision://``/``modelzoo://``, ``open-mmlab://``/``openmmlab://``, ``mmcls://``,
   ``pavi://``, ``s3://``/``petrel://``). mmengine 0.10.7 calls ``torch.load(filename)``, which on torch >= 2.6
   rejects the ``HistoryBuffer``/numpy objects of mmengine's own checkpoints (fixed on mmengine main,
   mmengine#1670, by switching ``weights_only`` off), and its URL loader goes through
   ``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only`` off (a downloaded or cached
   file runs code). Ours load every source with ``weights_only=True`` and the allow-list of
   ``speaq_mm.utils.safe_loading``, on every version, and check a download against the hash its URL gives
   (:func:`download_checkpoint`). A source mmengine registers that we have not reviewed is refused.
   Remove when mmengine loads every source with an allow-list itself.
2. ``AtomicLocalBackend`` becomes mmengine's backend for local paths: mmengine (0.10.7 and main) writes
   files with a plain ``open(path, 'wb')``, so a killed save leaves a truncated checkpoint under its final
   name (``speaq_mm.utils.atomic_io``). Remove when ``LocalBackend.put`` writes atomically.

8. ``HistoryBuffer.__setstate__`` (0.10.7 and main) merges the statistics table a checkpoint carries into the
   class-wide table of every buffer, so a file could make ``statistics('mean')`` return the max;
   :func:`setstate_checked` refuses a table that re-points a statistic. Remove when mmengine stops
   restoring the table from the file.
9. mmengine's ``BaseInferencer`` (mmdet's ``DetInferencer``) given only ``weights`` and ``Runner.resume``
   (``FlexibleRunner.resume``) of a checkpoint holding ``meta.config`` execute the config text stored in the
   checkpoint (``Config.fromstring``, which runs Python). :func:`init_model_from_given_config` refuses an
   inferencer without a config file, asking for one; :func:`resume_without_stored_config` drops
   ``meta.config`` (mmengine uses it only to compare GPU counts) with a warning. 0.10.7 and main; remove
   when mmengine no longer executes stored configs.
10. :class:`RestrictedPickleHandler` becomes ``mmengine.load``'s handler for ``.pkl``/``.pickle`` files
   (annotation files of mmengine datasets, dumps read by mmdet's tools): mmengine 0.10.7 (and main) calls
   ``pickle.load``. Ours is the restricted unpickler of ``speaq_mm.utils.load_pickle_file``; ``mmengine.load``
   does not pass the file name, so a file that needs more is loaded with ``load_pickle_file`` after
   ``trust_file``. Remove when mmengine's pickle handler restricts what it unpickles.

The others act only where speaq_mm calls them:

3. :func:`prepare_launch`: on mmengine <= 0.10.7 ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` for
   every backend and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]``, so gloo on a machine without
   CUDA fails. Remove when ``init_dist`` skips the CUDA device for gloo.
4. :func:`drop_disabled_default_hooks`: mmengine 0.10.7's ``register_default_hooks`` asserts on a
   ``default_hooks`` name it does not know even when its value is ``None`` (switched off). Remove when it
   skips unknown ``None`` entries.
5. :data:`InfiniteDataloaderIterator`: the iterator ``IterBasedTrainLoop`` uses is private in 0.10.7;
   ``SpeaQIterBasedTrainLoop`` builds one to resume at a batch. Remove together with that loop once
   mmengine resumes without replaying batches.
6. :func:`deferred_removals`: ``CheckpointHook._save_best_checkpoint`` (0.10.7 and main) deletes the old best
   checkpoint before it writes the new one; ``SpeaQCheckpointHook`` defers the deletion. Remove when mmengine
   writes first.
7. ``SpeaQCheckpointHook._save_checkpoint_with_step`` overrides that private method of ``CheckpointHook``
   (0.10.7), which deletes the checkpoint ``max_keep_ckpts`` retires before saving the new one; ours saves
   first. :data:`CHECKPOINT_SAVE_METHOD` names it, and importing this module fails loudly if a newer mmengine
   no longer has it. Remove when mmengine saves before it deletes.
11. :func:`separate_run_instances`: mmengine 0.10.7 names a run's logger, message hub and default scope
   ``<experiment name or config name>_<timestamp to the second>`` and its visualizer by the config's
   ``visualizer.name`` (``'visualizer'`` in ``configs/_base_``), and ``get_instance`` hands back an existing
   instance of that name. A second run of one config in one process (a notebook, a sweep, ``make demo``'s
   train then test) within the same second therefore logs into the first run's file and starts from its
   message hub, and at any time writes its scalars through the first run's visualizer into the first run's
   folder. ``build_runner`` gives every later run its own names. Remove when mmengine names runs uniquely.
12. :func:`close_process_group`: the Runner (0.10.7 and main) initialises the default process group and never
   destroys it. A process that exits with a gloo group alive can abort while the interpreter shuts down
   (gloo's threads still hold work objects; ``terminate called without an active exception``, SIGABRT), so
   a run that finished could end with exit code -6 under torchrun. The tools that take ``--launcher`` call
   it once their work is done. Remove when the Runner destroys the group it created.
"""
import collections
import contextlib
import contextvars
import functools
import hashlib
import logging
import os
import os.path as osp
import re
import tempfile
from urllib.parse import urlsplit, urlunsplit

import mmengine
import torch
import torch.distributed as torch_dist
from mmengine.dist import barrier, get_dist_info
from mmengine.fileio import get_file_backend
from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.fileio.handlers import PickleHandler, register_handler
from mmengine.hooks import CheckpointHook
from mmengine.infer import BaseInferencer
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import FlexibleRunner, Runner
from mmengine.runner import checkpoint as mm_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.utils import digit_version
from mmengine.visualization import Visualizer

from ..utils.atomic_io import atomic_write
from ..utils.safe_loading import check_history_buffer_state, load_torch_bytes, load_torch_file, restricted_load

TESTED_MMENGINE = '0.10.7'
MMENGINE_VERSION = digit_version(mmengine.__version__)
# Workarounds 3-5 are for this version and older; a newer mmengine gets its own behaviour.
_UP_TO_TESTED = MMENGINE_VERSION <= digit_version(TESTED_MMENGINE)

# The default hooks mmengine itself knows; only these reach register_default_hooks when set to None.
MMENGINE_DEFAULT_HOOKS = frozenset(('runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
                                    'checkpoint'))

CHECKPOINT_SAVE_METHOD = '_save_checkpoint_with_step'
if not hasattr(CheckpointHook, CHECKPOINT_SAVE_METHOD):  # pragma: no cover - only on an untested mmengine
    raise ImportError(f'mmengine {mmengine.__version__}: CheckpointHook has no {CHECKPOINT_SAVE_METHOD}, which '
                      f'SpeaQCheckpointHook overrides (workaround 7 of {__name__}); speaq_mm is tested with '
                      f'mmengine {TESTED_MMENGINE}')

if _UP_TO_TESTED:
    from mmengine.runner.loops import _InfiniteDataloaderIterator as InfiniteDataloaderIterator
else:  # pragma: no cover - a newer mmengine may rename it; resuming then falls back to its replay
    from mmengine.runner import loops as _loops
    InfiniteDataloaderIterator = getattr(_loops, '_InfiniteDataloaderIterator', None)


# 1. Checkpoint loading ------------------------------------------------------------------------------------
# torch.hub's convention: a file named <name>-<first 8 or more hex digits of its sha256>.<ext>.
HASH_IN_FILE_NAME = re.compile(r'-([0-9a-f]{8,64})\.[^.]+$')
# A URL fragment that gives the whole sha256 (never sent to the server): https://host/model.pth#sha256=<64 hex>.
SHA256_FRAGMENT = re.compile(r'sha256=([0-9a-f]{64})')
_HASH_CHUNK = 1 << 20


class ChecksumError(ValueError):
    """A downloaded or cached checkpoint does not have the sha256 its URL gives."""


def _resuming_drops_stored_config(checkpoint, source):
    """While :func:`resume_without_stored_config` runs, drop ``meta.config`` (workaround 9)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if _RESUMING.get() and isinstance(meta, dict) and 'config' in meta:
        del meta['config']
        print_log(f'{source}: ignored the config text stored in the checkpoint (meta.config); mmengine would '
                  'execute it to compare GPU counts, and a checkpoint from elsewhere could run code through it',
                  logger='current', level=logging.WARNING)
    return checkpoint


def load_local_checkpoint(filename, map_location=None):
    """Load a checkpoint from a local path with the allow-list of :func:`speaq_mm.utils.load_torch_file`."""
    return _resuming_drops_stored_config(load_torch_file(filename, map_location=map_location), filename)


def expected_sha256(url):
    """The sha256 ``url`` pins: ``(full_hex, None)`` from a ``#sha256=...`` fragment, ``(None, prefix)`` from a
    file name like ``resnet101-63fe2227.pth`` (torch.hub), ``(full_hex, prefix)`` when both, else
    ``(None, None)``."""
    parts = urlsplit(url)
    full = SHA256_FRAGMENT.fullmatch(parts.fragment)
    if parts.fragment and not full:
        raise ValueError(f'{url}: the only URL fragment understood is #sha256=<64 lower-case hex digits>')
    prefix = HASH_IN_FILE_NAME.search(osp.basename(parts.path))
    return (full.group(1) if full else None), (prefix.group(1) if prefix else None)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as file:
        for chunk in iter(lambda: file.read(_HASH_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download_checkpoint(url, model_dir=None):
    """Download ``url`` into the torch.hub cache (``$TORCH_HOME/hub/checkpoints``) unless it is there, and
    check its sha256 against the one the URL gives (:func:`expected_sha256`), on every call.

    A download is checked before it enters the cache; a cached file that no longer matches is refused, not
    replaced (delete it to download again). Without a hash in the URL nothing pins the content, but it is
    still loaded with the allow-list only.

    Returns:
        str: the path of the cached file.
    """
    full, prefix = expected_sha256(url)
    if full and prefix and not full.startswith(prefix):
        raise ChecksumError(f'{url}: the #sha256 fragment ({full}) disagrees with the hash in the file name '
                            f'({prefix})')
    parts = urlsplit(url)
    name = osp.basename(parts.path)
    if not name:
        raise ValueError(f'{url}: the URL names no file')
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, name)
    if not osp.exists(cached):
        os.makedirs(model_dir, exist_ok=True)
        # torch writes to a temporary file, checks the hash prefix and only then moves it into place.
        try:
            torch.hub.download_url_to_file(urlunsplit(parts._replace(fragment='')), cached,
                                           hash_prefix=full or prefix, progress=os.isatty(0))
        except RuntimeError as error:
            if 'invalid hash value' not in str(error):
                raise
            raise ChecksumError(f'{url}: the downloaded file does not have the sha256 the URL gives ({error}); '
                                'nothing was cached') from None
    expected = full or prefix
    if expected:
        actual = _sha256(cached)
        if not actual.startswith(expected):
            raise ChecksumError(f'{cached} (cached from {url}): sha256 {actual} does not start with {expected}, '
                                'the hash the URL gives; the file was changed or is not the one published. Delete '
                                'it to download it again.')
    return cached


def load_http_checkpoint(filename, map_location=None):
    """``http(s)://`` checkpoints: :func:`download_checkpoint`, then the allow-list load of the cached file.

    As mmengine does, rank 0 downloads first and the other ranks use its copy (after a barrier). The cached
    file is trusted (``--trust-pickle``) by its path or by the URL.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = download_checkpoint(filename)
    if world_size > 1:
        barrier()
        if rank > 0:
            cached = download_checkpoint(filename)
    checkpoint = load_torch_file(cached, map_location=map_location, what=f'checkpoint downloaded from {filename}',
                                 source=filename)
    return _resuming_drops_stored_config(checkpoint, filename)


def _catalogue_url(catalogue, name, filename):
    if name not in catalogue:
        raise KeyError(f'{filename}: no model named {name!r} in mmengine\'s list for this scheme')
    return catalogue[name]


def load_torchvision_checkpoint(filename, map_location=None):
    """``torchvision://NAME`` (and the deprecated ``modelzoo://NAME``): torchvision's published URL for NAME,
    whose file name carries the hash prefix that :func:`download_checkpoint` checks."""
    name = filename.split('://', 1)[1]
    url = _catalogue_url(mm_checkpoint.get_torchvision_models(), name, filename)
    return load_http_checkpoint(url, map_location)


def load_openmmlab_checkpoint(filename, map_location=None):
    """``open-mmlab://NAME``/``openmmlab://NAME``: mmengine's model list (plus ``$MMENGINE_HOME/open_mmlab.json``)
    maps NAME to a URL or to a file under ``$MMENGINE_HOME``."""
    name = filename.split('://', 1)[1]
    name = mm_checkpoint.get_deprecated_model_names().get(name, name)
    location = _catalogue_url(mm_checkpoint.get_external_models(), name, filename)
    if location.startswith(('http://', 'https://')):
        return load_http_checkpoint(location, map_location)
    return load_local_checkpoint(osp.join(mm_checkpoint._get_mmengine_home(), location), map_location)


def load_mmcls_checkpoint(filename, map_location=None):
    """``mmcls://NAME``: mmcls's published URL for NAME, keeping the backbone weights as mmengine does."""
    name = filename.split('://', 1)[1]
    url = _catalogue_url(mm_checkpoint.get_mmcls_models(), name, filename)
    return mm_checkpoint._process_mmcls_checkpoint(load_http_checkpoint(url, map_location))


def load_pavi_checkpoint(filename, map_location=None):
    """``pavi://PATH``: downloaded by the ``pavi`` client into a temporary folder, then the allow-list load.
    Trusted (``--trust-pickle``) by the ``pavi://`` address only."""
    try:
        from pavi import modelcloud
    except ImportError:
        raise ImportError(f'{filename}: install pavi to load checkpoints from its model cloud') from None
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as folder:
        # A fixed name: the model's own name could hold '../'.
        path = osp.join(folder, 'checkpoint.pth')
        model.download(path)
        checkpoint = load_torch_file(path, map_location=map_location, what=f'checkpoint from {filename}',
                                     source=filename)
    return _resuming_drops_stored_config(checkpoint, filename)


def load_petrel_checkpoint(filename, map_location=None, backend='petrel'):
    """``s3://``, ``petrel://`` (optionally ``cluster:s3://``): the bytes from mmengine's file backend, then the
    allow-list load. Trusted by the address only."""
    data = get_file_backend(filename, backend_args={'backend': backend}).get(filename)
    checkpoint = load_torch_bytes(data, filename, map_location=map_location)
    return _resuming_drops_stored_config(checkpoint, filename)


# Every prefix mmengine 0.10.7 registers, with our loader for it.
CHECKPOINT_LOADERS = {
    '': load_local_checkpoint,
    'http://': load_http_checkpoint,
    'https://': load_http_checkpoint,
    'torchvision://': load_torchvision_checkpoint,
    'modelzoo://': load_torchvision_checkpoint,
    'open-mmlab://': load_openmmlab_checkpoint,
    'openmmlab://': load_openmmlab_checkpoint,
    'mmcls://': load_mmcls_checkpoint,
    'pavi://': load_pavi_checkpoint,
    r'(\S+\:)?s3://': load_petrel_checkpoint,
    r'(\S+\:)?petrel://': load_petrel_checkpoint,
}


def _unreviewed_source(prefix):
    def refuse(filename, map_location=None):
        raise RuntimeError(f'{filename}: mmengine {mmengine.__version__} loads checkpoints of the source {prefix!r} '
                           f'with a loader speaq_mm has not reviewed (it could unpickle anything); '
                           f'download the file and give its local path')
    refuse.__name__ = 'load_from_unreviewed_source'
    return refuse


def install_checkpoint_loaders():
    """Register :data:`CHECKPOINT_LOADERS` with mmengine, and a refusal for any other prefix it knows."""
    for prefix in list(CheckpointLoader._schemes):
        if prefix not in CHECKPOINT_LOADERS:
            CheckpointLoader.register_scheme(prefix, _unreviewed_source(prefix), force=True)
    for prefix, loader in CHECKPOINT_LOADERS.items():
        CheckpointLoader.register_scheme(prefix, loader, force=True)


# 2. Atomic local writes -----------------------------------------------------------------------------------
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic ``put`` and ``put_text`` (``speaq_mm.utils.atomic_io``)."""

    def put(self, obj: bytes, filepath) -> None:
        """Write bytes to ``filepath`` atomically."""
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        """Write text to ``filepath`` atomically."""
        atomic_write(obj, str(filepath), encoding=encoding)


def install_process_wide_workarounds():
    """Install workarounds 1, 2, 8 and 9 (the module docstring); ``import speaq_mm`` calls this once."""
    install_checkpoint_loaders()
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    if not getattr(HistoryBuffer.__setstate__, 'speaq_mm_checked', False):
        HistoryBuffer.__setstate__ = setstate_checked(HistoryBuffer.__setstate__)
    if not getattr(BaseInferencer._init_model, 'speaq_mm_checked', False):
        BaseInferencer._init_model = init_model_from_given_config(BaseInferencer._init_model)
    for runner in (Runner, FlexibleRunner):
        if not getattr(runner.resume, 'speaq_mm_checked', False):
            runner.resume = resume_without_stored_config(runner.resume)
    register_handler(['pkl', 'pickle'])(RestrictedPickleHandler)


def _checked(wrapper):
    wrapper.speaq_mm_checked = True
    return wrapper


# 8. HistoryBuffer states that rewrite the statistics table ------------------------------------------------
def setstate_checked(setstate):
    """``HistoryBuffer.__setstate__`` that first refuses a statistics table other than mmengine's defaults."""
    @functools.wraps(setstate)
    def __setstate__(self, state):
        check_history_buffer_state(state)
        setstate(self, state)
    return _checked(__setstate__)


# 9. Configs stored in checkpoints are never executed ------------------------------------------------------
_RESUMING = contextvars.ContextVar('speaq_mm_resuming', default=False)


def init_model_from_given_config(init_model):
    """``BaseInferencer._init_model`` that refuses to take the model's config from the checkpoint."""
    @functools.wraps(init_model)
    def _init_model(self, cfg, weights, device='cpu'):
        if not cfg:
            name = type(self).__name__
            raise ValueError(
                f'{name}(weights={weights!r}) was given no config: mmengine would execute the config text stored '
                f'in the checkpoint, which is Python that whoever made the file controls. Pass the config file '
                f'the checkpoint was trained with: {name}(model=CONFIG_FILE, weights={weights!r}).')
        return init_model(self, cfg, weights, device)
    return _checked(_init_model)


def resume_without_stored_config(resume):
    """``Runner.resume`` during which the checkpoint loaders drop ``meta.config`` instead of letting mmengine
    execute it."""
    @functools.wraps(resume)
    def wrapped(self, *args, **kwargs):
        token = _RESUMING.set(True)
        try:
            return resume(self, *args, **kwargs)
        finally:
            _RESUMING.reset(token)
    return _checked(wrapped)


# 3. Distributed launch without CUDA -----------------------------------------------------------------------
def prepare_launch(cfg, launcher):
    """Adjust ``cfg`` (and the process group) so ``Runner.from_cfg(cfg)`` works for ``launcher``.

    Args:
        cfg (mmengine.Config): the run's config; ``cfg.launcher`` is set, and on CPU
            ``env_cfg.dist_cfg.backend`` and ``model_wrapper_cfg.device_ids`` too.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.
    """
    cfg.launcher = launcher
    if launcher == 'none' or torch.cuda.is_available() or not _UP_TO_TESTED:
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA on this version of mmengine; on a machine without GPUs '
            'start the processes with torchrun (tools/dist_train.sh), which uses --launcher pytorch.')
    cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if not torch_dist.is_initialized():  # the Runner then skips init_dist
        torch_dist.init_process_group(
            backend='gloo', rank=int(os.environ['RANK']), world_size=int(os.environ['WORLD_SIZE']))


# 12. Closing the process group ---------------------------------------------------------------------------
def close_process_group():
    """Destroy the default process group once every rank has got here; do nothing without one.

    Call it only after the work completed: after an exception on one rank a barrier would wait for ranks that
    never come (torchrun ends the others instead).
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        barrier()  # no rank tears gloo down while another still talks to it
        torch_dist.destroy_process_group()


# 4. Switched-off default hooks ----------------------------------------------------------------------------
def drop_disabled_default_hooks(cfg):
    """Remove ``default_hooks.<name>=None`` entries that mmengine's ``register_default_hooks`` would reject."""
    if not _UP_TO_TESTED:
        return
    for name, hook in list((cfg.get('default_hooks') or {}).items()):
        if hook is None and name not in MMENGINE_DEFAULT_HOOKS:
            del cfg.default_hooks[name]


# 6. Deleting the old best checkpoint last -----------------------------------------------------------------
@contextlib.contextmanager
def deferred_removals(file_backend):
    """Collect the paths ``file_backend.remove`` is asked to delete in the body instead of deleting them.

    Yields the list; the caller deletes them once the new files are complete. An instance attribute shadows
    the method only while the body runs.
    """
    deferred = []
    file_backend.remove = deferred.append
    try:
        yield deferred
    finally:
        del file_backend.remove


# 11. Runs built one after another in one process ----------------------------------------------------------
_RUNS_BUILT = collections.Counter()  # runs this process built, by experiment name


def separate_run_instances(cfg):
    """Give the Runner about to be built from ``cfg`` a logger, message hub and visualizer of its own.

    The first run of an experiment name (``cfg.experiment_name``, else the config file's name) in this process
    keeps mmengine's names; the n-th gets ``experiment_name = <name>_run<n>``. A ``visualizer.name`` an earlier
    run already took gets the first free ``<name>_<k>``. Every rank builds the same runs, so the names agree.
    """
    name = cfg.get('experiment_name') or (osp.splitext(osp.basename(cfg.filename))[0] if cfg.filename else 'run')
    _RUNS_BUILT[name] += 1
    if _RUNS_BUILT[name] > 1:
        cfg.experiment_name = f'{name}_run{_RUNS_BUILT[name]}'
    visualizer = cfg.get('visualizer')
    if isinstance(visualizer, dict) and visualizer.get('name') and \
            Visualizer.check_instance_created(visualizer['name']):
        taken, suffix = visualizer['name'], 2
        while Visualizer.check_instance_created(f'{taken}_{suffix}'):
            suffix += 1
        visualizer['name'] = f'{taken}_{suffix}'


# 10. mmengine.load of pickles -----------------------------------------------------------------------------
class RestrictedPickleHandler(PickleHandler):
    """mmengine's pickle handler, loading with :func:`speaq_mm.utils.safe_loading.restricted_load`."""

    def load_from_fileobj(self, file, **kwargs):
        """Unpickle ``file``: containers, numpy arrays and torch tensors only."""
        name = getattr(file, 'name', None) or 'a pickle read with mmengine.load'
        return restricted_load(file, name, 'pickle file')
