"""The docs cover every command, option and setting (the way Datasette's test_docs does)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from mixwise.cli import main
from mixwise.config import Settings
from mixwise.store.schemas import render_markdown
from mixwise.workspace import WORKSPACE_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
SETTINGS_DOC = (ROOT / "docs" / "settings.md").read_text()
README = (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: str = "mixwise") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, path))
        else:
            out.append((path, cmd))
    return out


COMMANDS = _commands(main)


def _section(path: str) -> str:
    match = re.search(
        rf"^## `{re.escape(path)}(?: [^`]*)?`\n(.*?)(?=^## |\Z)", CLI_DOC, re.S | re.M
    )
    assert match, f"docs/cli.md has no '## `{path} ...`' section"
    return match.group(1)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_and_option_is_documented(path: str, command: click.Command) -> None:
    section = _section(path)
    for param in command.params:
        if isinstance(param, click.Option):
            longest = max(param.opts, key=len)
            assert f"`{longest}" in section or f", {longest}" in section, (
                f"{path}: option {longest} is missing from docs/cli.md"
            )


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_has_examples_in_its_help(path: str, command: click.Command) -> None:
    assert command.help and ("Examples:" in command.help or "mixwise" in command.help), path


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`MIXWISE_{field.upper()}`" in SETTINGS_DOC


def test_every_cli_environment_variable_is_documented() -> None:
    for _, command in COMMANDS:
        for param in command.params:
            env = getattr(param, "envvar", None)
            if env:
                assert f"`{env}`" in SETTINGS_DOC, env


@pytest.mark.parametrize("key", sorted(WORKSPACE_DEFAULTS))
def test_every_workspace_setting_is_documented(key: str) -> None:
    assert f"| `{key}` |" in SETTINGS_DOC


def test_data_formats_doc_matches_the_contracts() -> None:
    doc = (ROOT / "docs" / "data-formats.md").read_text()
    generated = doc.split("-->\n", 1)[1].split("<!-- end generated -->")[0]
    assert generated == render_markdown(), (
        "docs/data-formats.md is stale: paste mixwise.store.schemas.render_markdown() output"
    )


def _quick_start() -> list[str]:
    block = README.split("## Quick start", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip()]


def test_readme_quick_start_is_two_commands_demo_then_tests() -> None:
    commands = _quick_start()
    assert len(commands) == 2
    assert "mixwise demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _quick_start()[1] in ci


def test_readme_mentions_every_command() -> None:
    for path, _ in COMMANDS:
        assert path in README or path.rsplit(" ", 1)[0] in README, path


def test_every_api_route_is_documented(workspace: object) -> None:
    from mixwise.web import create_app

    doc = (ROOT / "docs" / "web.md").read_text()
    paths = create_app(workspace).openapi()["paths"]  # type: ignore[arg-type]
    for path, methods in paths.items():
        for method in methods:
            assert f"{method.upper()} {path}" in doc, f"{method.upper()} {path} not in docs/web.md"
