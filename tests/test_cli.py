"""Every command line: --help before heavy imports, --version, a console script, and one meaning per flag name."""
from __future__ import annotations

import configparser
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["degrade", "degrade.gallery", "datasets.iqa", "pipelines.build_shards", "pipelines.verify_shards",
            "pipelines.pack_iqa", "dri.train", "dri.evaluate", "dri.predict", "dri.export"]


def _scripts() -> dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(line.replace(" ", "").split("=") for line in lines)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_does_not_load_torch_or_ray(module):
    code = (f"import runpy, sys\nsys.argv = [{module!r}, '--help']\n"
            f"try:\n    runpy.run_module({module!r}, run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'ray', 'timm', 'cv2') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout and "HEAVY []" in result.stdout, result.stdout[-500:]


@pytest.mark.parametrize("module", COMMANDS)
def test_version(module):
    from degrade._version import __version__

    result = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0 and __version__ in result.stdout


def test_every_command_has_a_console_script():
    scripts = _scripts()
    targets = {target.split(":")[0] for target in scripts.values()}
    assert {m if m not in ("degrade", "datasets.iqa") else f"{m}.__main__" for m in COMMANDS} == targets
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_one_meaning_per_flag_name():
    """--workers is DataLoader workers wherever it appears; Ray's CPUs are --ray-cpus; samples per shard --per-shard."""
    import argparse

    meanings: dict[str, set[str]] = {}
    for module in COMMANDS:
        parser_fn = getattr(importlib.import_module(module if module not in ("degrade", "datasets.iqa")
                                                    else f"{module}.__main__"), "build_parser", None)
        if parser_fn is None:
            continue
        parser: argparse.ArgumentParser = parser_fn()
        for action in parser._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and action.help:
                    meanings.setdefault(flag, set()).add(action.help.split("(")[0].strip().lower())
    assert "workers" in " ".join(meanings["--workers"]) and all("ray" not in m for m in meanings["--workers"])
    assert all("ray" in m.lower() or "cpu" in m.lower() for m in meanings["--ray-cpus"])
    assert "--groups-per-shard" not in meanings and "--per-shard" in meanings


def _parsers():
    import argparse

    for module in COMMANDS:
        module = module if module not in ("degrade", "datasets.iqa") else f"{module}.__main__"
        parser_fn = getattr(importlib.import_module(module), "build_parser", None)
        if parser_fn is None:
            continue
        stack = [parser_fn()]
        while stack:
            parser = stack.pop()
            yield module, parser
            for action in parser._actions:
                if isinstance(action, argparse._SubParsersAction):
                    stack.extend(action.choices.values())


def test_every_option_shows_its_default():
    """Every option whose default is a value (not None, not an off flag) names it in --help, once."""
    import argparse

    from degrade._cli import HelpFormatter

    seen = 0
    for module, parser in _parsers():
        assert parser.formatter_class is HelpFormatter, module
        for action in parser._actions:
            if not action.option_strings or action.default in (None, False, [], argparse.SUPPRESS) or not action.help:
                continue
            seen += 1
            shown = " ".join(parser._get_formatter()._expand_help(action).split())  # as --help prints it
            assert "default" in shown and str(action.default) in shown, (module, action.option_strings, shown)
            assert shown.count("(default:") <= 1, (module, action.option_strings, shown)
    assert seen > 30


def test_progress_in_a_log_file_is_plain_lines(capsys):
    import io

    from datasets.progress import LineProgress, progress

    log = io.StringIO()
    bar = progress(total=40, desc="building shards", unit="group", file=log)
    assert isinstance(bar, LineProgress)
    bar.interval = 0.0
    for _ in range(4):
        bar.update(10)
    bar.close()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("building shards: 10/40 groups (25.0%)") and "ETA" in lines[0]
    assert lines[-1].startswith("building shards: 40/40 groups (100.0%)") and "in all" in lines[-1]
