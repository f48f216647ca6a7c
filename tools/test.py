"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``."""
import argparse
import os


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test a scene graph model.')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='folder for the evaluation log and metrics')
    parser.add_argument('--out', metavar='FILE.pkl',
                        help='also write the per-image predictions (docs/evaluation.md) and FILE_metrics.json; '
                             'existing files are refused')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace the files of --out (FILE.pkl, FILE_metrics.json, FILE_meta.json) if they exist')
    parser.add_argument('--show-dir', help='draw predictions into this folder (inside the work dir)')
    from speaq_mm.engine import add_runner_arguments, parse_runner_arguments
    add_runner_arguments(parser, 'test_dataloader.batch_size=4', 'tools/dist_test.sh')
    return parse_runner_arguments(parser, argv)


def output_files(out):
    """The files ``--out FILE.pkl`` writes: the dump, its metrics and its metainfo."""
    stem = os.path.splitext(out)[0]
    return out, f'{stem}_metrics.json', f'{stem}_meta.json'


def main(argv=None):
    args = parse_args(argv)
    from speaq_mm.engine import build_runner, close_process_group, load_run_config
    from speaq_mm.evaluation import add_scene_graph_outputs
    from speaq_mm.utils import trust_files_from_args
    from speaq_mm.utils.output_guard import refuse_existing_files

    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    trust_files_from_args(args)
    cfg = load_run_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        visualization = cfg.default_hooks.get('visualization')
        if visualization is None:
            raise ValueError(f'--show-dir needs default_hooks.visualization in {args.config}')
        visualization.update(draw=True, test_out_dir=args.show_dir)
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must name a .pkl file, got {args.out}')
    if args.out:
        refuse_existing_files(output_files(args.out), args.overwrite)
    cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='SGGEvaluationProgressHook')]
    runner = build_runner(cfg)
    if args.out:
        dump_file, json_file, meta_file = output_files(args.out)
        add_scene_graph_outputs(runner.test_evaluator, dump_file=dump_file, json_file=json_file,
                                meta_file=meta_file)
    else:
        add_scene_graph_outputs(runner.test_evaluator, json_file=os.path.join(runner.work_dir, 'metrics.json'))
    runner.test()
    close_process_group()


if __name__ == '__main__':
    main()
