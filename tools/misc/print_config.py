"""Print the fully resolved config (all _base_ files merged), optionally saving it.

usage: python tools/misc/print_config.py CONFIG [--cfg-options K=V ...] [--save-path FILE.{py,json,yml}]
"""
import argparse
import os

from mmengine.config import DictAction


def main(argv=None):
    parser = argparse.ArgumentParser(description='Print the resolved config.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                        help='override config keys before printing')
    parser.add_argument('--save-path', help='also write the resolved config here (.py, .json or .yml)')
    args = parser.parse_args(argv)
    from speaq_mm.engine import read_config
    cfg = read_config(args.config, args.cfg_options)
    print(cfg.pretty_text)
    if args.save_path:
        if os.path.splitext(args.save_path)[1] not in ('.py', '.json', '.yml'):
            raise ValueError(f'--save-path must end in .py, .json or .yml, got {args.save_path}')
        os.makedirs(os.path.dirname(os.path.abspath(args.save_path)), exist_ok=True)
        cfg.dump(args.save_path)
        print(f'saved to {args.save_path}')


if __name__ == '__main__':
    main()
