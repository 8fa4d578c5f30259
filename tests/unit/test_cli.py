"""The command line's wiring: each command is found in the module the table names, and a
command imports only its own module."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from streams import cli


def test_every_module_registers_exactly_the_commands_the_table_gives_it() -> None:
    for module in cli.COMMAND_MODULES:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        importlib.import_module(module).register(sub)
        assert sorted(sub.choices) == sorted(c for c, m in cli.COMMANDS.items() if m == module)


def test_command_word_skips_leading_options() -> None:
    assert cli._command_of(["-v", "-v", "collect", "--once"]) == "collect"
    assert cli._command_of(["--help"]) is None


def test_the_collector_does_not_import_the_elasticsearch_client_nor_faust() -> None:
    check = ("import sys\nfrom streams import cli\ntry:\n    cli.main(['collect', '--help'])\n"
             "except SystemExit:\n    pass\nprint('elasticsearch' in sys.modules, 'faust' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert "usage: logriver collect" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "False False"


def test_unknown_command_is_a_usage_error_listing_every_command() -> None:
    res = subprocess.run([sys.executable, "-m", "streams", "bogus"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 2
    for command in cli.COMMANDS:
        assert command in res.stderr
