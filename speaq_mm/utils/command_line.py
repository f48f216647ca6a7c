"""What the thin command lines under ``tools/`` share when they build their parsers."""
import argparse


def tool_parser(description: str, **positionals: str) -> argparse.ArgumentParser:
    """A parser whose help is ``description`` (a tool's module docstring, shown as written) with one positional
    argument per keyword, in order: its name and its help text."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, help_text in positionals.items():
        parser.add_argument(name, help=help_text)
    return parser
