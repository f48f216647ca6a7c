"""mmengine's CheckpointHook, made safe against a job killed or a disk filling up while it saves.

mmengine 0.10.7's ``CheckpointHook`` deletes the checkpoint that ``max_keep_ckpts`` retires, and the previous
best checkpoint, *before* writing the new one, and writes ``last_checkpoint`` with a plain ``open``. A run
killed (or out of disk space) during the save is left with no complete checkpoint, or with a
``last_checkpoint`` pointing at a truncated file. This subclass keeps every behaviour and argument of
``CheckpointHook`` but orders the steps so that a complete checkpoint is always on disk:

1. the new checkpoint is written atomically (``speaq_mm.utils.atomic_io``: temporary file, fsync, rename);
2. ``last_checkpoint`` is then rewritten atomically;
3. only then are the retired checkpoint and the replaced best checkpoint deleted.

The paths it records in a checkpoint (the best checkpoint, the last checkpoint) are relative to the folder the
checkpoints are saved in, and a resumed run reads them relative to its own folder: a copied or moved work dir,
or ``--resume OTHER_RUN/iter_N.pth`` into a new work dir, never deletes the source run's best checkpoint (a
record naming a file outside this run's folder is dropped, with a warning).

Before training it removes the temporary files an interrupted save of this run left behind (only files named
like its own checkpoints, and only those no live process is still writing: a concurrent run's are kept), and
after a resume it checks that the best-checkpoint record restored from the checkpoint (mmengine keeps it in
the message hub's runtime info) names a file that exists.
"""
import glob
import os.path as osp
import re

from mmdet.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook

from ...utils.atomic_io import atomic_write, remove_stale_partial_files
from ..mmengine_compat import deferred_removals


@HOOKS.register_module()
class SpeaQCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) whose saves never leave the run without a complete checkpoint."""

    def before_train(self, runner) -> None:
        """Set up as ``CheckpointHook`` does; clean up after an interrupted save; check the best record."""
        super().before_train(runner)
        self._adopt_best_record(runner)
        if not is_main_process() or not isinstance(self.file_backend, LocalBackend):
            return
        partial = remove_stale_partial_files(self.out_dir, self._writes)
        if partial:
            runner.logger.warning(
                f'removed {len(partial)} incomplete file(s) that an interrupted save left in {self.out_dir}: '
                f'{[osp.basename(path) for path in partial]}; the complete checkpoints are untouched')
        if self.save_best is not None and runner.iter > 0:
            self._check_best_record(runner)

    def _best_record_keys(self):
        """(message hub key, attribute setter) of every best-checkpoint path the hook keeps."""
        if self.save_best is None:
            return []
        if len(self.key_indicators) == 1:
            return [('best_ckpt', lambda path: setattr(self, 'best_ckpt_path', path))]
        return [(f'best_ckpt_{key}', lambda path, key=key: self.best_ckpt_path_dict.__setitem__(key, path))
                for key in self.key_indicators]

    def _adopt_best_record(self, runner) -> None:
        """Resolve the best-checkpoint paths of a resumed run against this run's folder (see the module)."""
        out_dir = osp.realpath(self.out_dir)
        for info_key, set_path in self._best_record_keys():
            path = runner.message_hub.get_info(info_key)
            if path is None:
                continue
            if not osp.isabs(path):
                path = osp.join(self.out_dir, path)
            if osp.dirname(osp.realpath(path)) != out_dir:
                runner.logger.warning(
                    f'the resumed best-checkpoint record names {path}, outside this run\'s checkpoint folder '
                    f'{self.out_dir}; that file is left alone, and the next best checkpoint is written here')
                path = None
            set_path(path)
            runner.message_hub.update_info(info_key, path)

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        """Record the checkpoint paths relative to the checkpoint folder (the live message hub keeps them)."""
        hub = checkpoint.get('message_hub') or {}
        info = dict(hub.get('runtime_info') or {})
        out_dir = osp.realpath(self.out_dir)
        for key, path in info.items():
            if (key == 'last_ckpt' or key.startswith('best_ckpt')) and isinstance(path, str) and osp.isabs(path) \
                    and osp.dirname(osp.realpath(path)) == out_dir:
                info[key] = osp.basename(path)
        if hub:
            checkpoint['message_hub'] = dict(hub, runtime_info=info)

    def _writes(self, name) -> bool:
        """Whether this hook writes files called ``name``: its checkpoints, best checkpoints, the pointer."""
        pattern = re.escape(self.filename_tmpl).replace(re.escape('{}'), r'\d+')
        return bool(re.fullmatch(pattern, name) or re.fullmatch(r'best_.+_\d+\.pth', name)
                    or name == 'last_checkpoint')

    def _check_best_record(self, runner) -> None:
        """Log the best-checkpoint record a resumed run continues from, and any mismatch with the disk."""
        records = ([self.best_ckpt_path] if len(self.key_indicators) == 1
                   else list(self.best_ckpt_path_dict.values()))
        for key, path in zip(self.key_indicators, records):
            score_key = 'best_score' if len(self.key_indicators) == 1 else f'best_score_{key}'
            score = runner.message_hub.get_info(score_key)
            on_disk = sorted(glob.glob(osp.join(glob.escape(self.out_dir),
                                                f'best_{key.replace("/", "_")}_*.pth')))
            if path is None:
                if on_disk:
                    runner.logger.warning(
                        f'the resumed checkpoint has no best-checkpoint record for {key}, but '
                        f'{[osp.basename(p) for p in on_disk]} exist (left by an interrupted run); the next '
                        'validation starts a new record')
                continue
            if not self.file_backend.isfile(path):
                runner.logger.warning(
                    f'the resumed best-checkpoint record for {key} ({score}) names {path}, which does not '
                    f'exist; best files present: {[osp.basename(p) for p in on_disk]}. A better score will '
                    'write a new best checkpoint.')
            elif len(on_disk) > 1:
                runner.logger.warning(
                    f'several best checkpoints for {key} are on disk ({[osp.basename(p) for p in on_disk]}); '
                    f'the record restored from the checkpoint is {osp.basename(path)} ({score}). The others '
                    'were left by an interrupted run.')
            else:
                runner.logger.info(f'resumed best-checkpoint record for {key}: {score} in {osp.basename(path)}')

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """Save checkpoint ``step``, then point ``last_checkpoint`` at it, then retire old checkpoints.

        Overrides a private method of mmengine 0.10.7 (workaround 7 of ``speaq_mm.engine.mmengine_compat``).
        """
        retired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            # The list is updated before saving because the checkpoint stores it (message hub runtime info).
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                retired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write(self.last_ckpt, osp.join(runner.work_dir, 'last_checkpoint'))
        for old_step in retired:
            self._remove(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """``CheckpointHook``'s best-checkpoint logic, with the old best deleted only after the new one and
        the re-saved last checkpoint (which records the new best) are complete."""
        # mmengine updates the record before it writes the file; a failed write must not leave a record
        # naming a file that does not exist.
        record = {key: value for key, value in runner.message_hub.runtime_info.items()
                  if key.startswith(('best_score', 'best_ckpt'))}
        paths = (getattr(self, 'best_ckpt_path', None), dict(getattr(self, 'best_ckpt_path_dict', {})))
        try:
            with deferred_removals(self.file_backend) as deferred:
                super()._save_best_checkpoint(runner, metrics)
        except BaseException:
            for key in [key for key in runner.message_hub.runtime_info
                        if key.startswith(('best_score', 'best_ckpt')) and key not in record]:
                runner.message_hub.runtime_info.pop(key)
            for key, value in record.items():
                runner.message_hub.update_info(key, value)
            self.best_ckpt_path, self.best_ckpt_path_dict = paths
            raise
        for path in deferred:
            self._remove(path)

    def _remove(self, path) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # checkpoints saved by DeepSpeed are folders
            self.file_backend.rmtree(path)
