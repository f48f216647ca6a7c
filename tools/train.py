"""Train a speaq_mm model from a config: ``python tools/train.py CONFIG [options]``."""
import argparse
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a scene graph model.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='folder for logs and checkpoints (default work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                        help='resume from CKPT, or from the latest checkpoint in the work dir when no path is given')
    parser.add_argument('--overwrite', action='store_true',
                        help='start a new run in a work dir that holds checkpoints of an earlier run (they are '
                             'replaced as the new run saves its own); without it such a work dir is refused')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision (needs a GPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual global batch (auto_scale_lr in the config)')
    from speaq_mm.engine import add_runner_arguments, parse_runner_arguments
    add_runner_arguments(parser, 'train_dataloader.batch_size=4 "key=[a,b]"', 'tools/dist_train.sh')
    return parse_runner_arguments(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    from speaq_mm.engine import (
        build_runner,
        check_work_dir_is_free,
        checkpoint_folder,
        close_process_group,
        load_run_config,
    )
    from speaq_mm.utils import trust_files_from_args

    trust_files_from_args(args)
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    # --resume with no checkpoint to resume starts from iteration 0 as well (mmengine's auto resume).
    starts_anew = args.resume is None or (args.resume == 'auto'
                                          and not os.path.isfile(os.path.join(cfg.work_dir, 'last_checkpoint')))
    if starts_anew and not args.overwrite:
        check_work_dir_is_free(cfg.work_dir, checkpoint_folder(cfg))
    if args.amp:  # keeps the non-finite guard of the shipped optimizer wrappers
        guarded = cfg.optim_wrapper.get('type') in ('SpeaQNonFiniteGuardOptimWrapper',
                                                    'SpeaQNonFiniteGuardAmpOptimWrapper')
        cfg.optim_wrapper.type = 'SpeaQNonFiniteGuardAmpOptimWrapper' if guarded else 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
            raise ValueError(f'--auto-scale-lr needs auto_scale_lr.base_batch_size in {args.config}')
        cfg.auto_scale_lr.enable = True
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    build_runner(cfg).train()
    close_process_group()


if __name__ == '__main__':
    main()
