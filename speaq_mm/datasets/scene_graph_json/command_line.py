"""What the thin command lines under ``tools/dataset_converters`` share: the importers' parser (inputs and the
JSON file they write), the ``--strict`` / ``--overwrite`` options, and running an importer (``coco_rel``,
``psg``, ``gqa``) and printing its report."""
import argparse
from typing import Callable

from ...utils.command_line import tool_parser
from .importing import print_import_result

IMPORT_OUTPUT_HELP = 'the JSON scene-graph file to write'
IMPORT_OVERWRITE_HELP = 'replace OUT.json and its report if they exist'


def importer_parser(description: str, **inputs: str) -> argparse.ArgumentParser:
    """``tool_parser`` for an importer: the ``inputs`` and then ``out_file``, the JSON file it writes."""
    return tool_parser(description, **inputs, out_file=IMPORT_OUTPUT_HELP)


def add_output_options(parser: argparse.ArgumentParser, overwrite_help: str = IMPORT_OVERWRITE_HELP,
                       strict: bool = False) -> argparse.ArgumentParser:
    """Add ``--overwrite`` (existing outputs are refused without it) and, with ``strict``, ``--strict`` (exit
    with status 1 when anything was dropped) before it."""
    if strict:
        parser.add_argument('--strict', action='store_true', help='exit with status 1 when anything was dropped')
    parser.add_argument('--overwrite', action='store_true', help=overwrite_help)
    return parser


def run_import(importer: Callable[..., dict], args: argparse.Namespace, *importer_args) -> dict:
    """Call ``importer(*importer_args)``, print its report, the splits and the next step (with
    ``args.strict``, exit with status 1 when anything was dropped), and return the report."""
    result = importer(*importer_args)
    print_import_result(result, args.strict)
    return result
