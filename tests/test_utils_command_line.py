"""The parser helpers the thin tools share: ``speaq_mm.utils.command_line`` and
``speaq_mm.datasets.scene_graph_json.command_line``."""
import pytest

from speaq_mm.datasets.scene_graph_json.command_line import add_output_options, importer_parser, run_import
from speaq_mm.utils.command_line import tool_parser


def test_tool_parser_takes_the_positionals_in_order_and_shows_the_docstring_as_written():
    parser = tool_parser('Line one.\n\n    python tool.py A B\n', config='the model config', images='a folder')
    args = parser.parse_args(['cfg.py', 'imgs'])
    assert (args.config, args.images) == ('cfg.py', 'imgs')
    help_text = parser.format_help()
    assert '    python tool.py A B' in help_text  # raw description: the indented usage line is kept
    assert help_text.index('the model config') < help_text.index('a folder')


def test_importer_parser_adds_the_output_file_and_the_output_options():
    parser = add_output_options(importer_parser('doc', psg_file='the PSG json'), strict=True)
    args = parser.parse_args(['psg.json', 'out.json', '--strict'])
    assert (args.psg_file, args.out_file, args.strict, args.overwrite) == ('psg.json', 'out.json', True, False)
    plain = add_output_options(tool_parser('doc', json_file='in'), 'replace existing output files')
    assert not hasattr(plain.parse_args(['in.json']), 'strict')
    assert 'replace existing output files' in plain.format_help()


def fake_import(dropped):
    return dict(text='report', splits=dict(train=1), output='out.json', dropped=dropped)


@pytest.mark.parametrize('strict', [False, True])
def test_run_import_prints_the_report_and_exits_1_on_drops_only_with_strict(capsys, strict):
    args = add_output_options(importer_parser('doc', src='source'), strict=True).parse_args(
        ['in', 'out.json'] + (['--strict'] if strict else []))
    assert run_import(fake_import, args, {}) == fake_import({})  # nothing dropped: no exit either way
    assert 'report' in capsys.readouterr().out
    drops = {'object: crowd': dict(count=3)}
    if strict:
        with pytest.raises(SystemExit, match='--strict: 3 items were dropped'):
            run_import(fake_import, args, drops)
    else:
        assert run_import(fake_import, args, drops)['dropped'] == drops
