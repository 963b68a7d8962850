"""What every `toolgym` sub-command's `--help` shares: one formatter and the bare-group handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and example epilogs printed as written (their line breaks matter), and every
    option's default shown after its help."""


def show_help(parser: argparse.ArgumentParser) -> Callable[[Any], int]:
    """A handler for a command group run without its sub-command: print the group's help, exit 2."""

    def handler(_args: Any) -> int:
        parser.print_help()
        return 2

    return handler
