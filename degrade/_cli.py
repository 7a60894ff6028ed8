"""The help formatter every command line of the toolkit uses (light: argparse only)."""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions keep their line breaks; every option with a real default shows it, once.

    A default is added as ``(default: X)`` unless the help already says it, or there is none to show
    (``None``, a flag that is off, an empty list of repeated options).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"
