"""The CLI reference (``docs/cli.md``), generated from the click commands themselves.

Takes the ``webvid`` click group; produces Markdown with every command's usage, help text and
options. ``python -m webvid.cli.doc > docs/cli.md`` regenerates it; ``tests/test_clidoc.py``
fails when the file and the commands drift apart.
"""

from __future__ import annotations

import click

from webvid.cli import cli

HEADER = """# CLI reference

Generated from the commands by `python -m webvid.cli.doc > docs/cli.md`; a test keeps it in
step. Global options go before the command: `webvid [-v|-q|--debug] COMMAND ...`.
"""


def _option_rows(cmd: click.Command, ctx: click.Context) -> list[tuple[str, str]]:
    rows = []
    for param in cmd.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        rows.append(record)
    return rows


def _usage(cmd: click.Command, ctx: click.Context) -> str:
    pieces = cmd.collect_usage_pieces(ctx)
    return " ".join([ctx.command_path, *pieces])


def _section(name: str, cmd: click.Command, parent: click.Context) -> list[str]:
    ctx = click.Context(cmd, info_name=name, parent=parent, **cmd.context_settings)
    lines = [f"## `webvid {name}`" if parent.parent is None else f"### `{ctx.command_path}`", ""]
    lines += ["```", _usage(cmd, ctx), "```", ""]
    help_text = (cmd.help or cmd.short_help or "").replace("\b\n", "").strip()
    if help_text:
        lines += [_dedent_block(help_text), ""]
    rows = _option_rows(cmd, ctx)
    if rows:
        lines += ["| option | description |", "| --- | --- |"]
        for opt, desc in rows:
            desc = " ".join(desc.split()).replace("|", "\\|")
            lines.append(f"| `{opt}` | {desc} |")
        lines.append("")
    if isinstance(cmd, click.Group):
        for sub in cmd.list_commands(ctx):
            subcmd = cmd.get_command(ctx, sub)
            if subcmd is not None:
                lines += _section(sub, subcmd, ctx)
    return lines


def _dedent_block(text: str) -> str:
    """Click help text → Markdown: indented example lines become a code block."""
    out: list[str] = []
    in_code = False
    for line in text.splitlines():
        is_code = line.startswith("  ") and line.strip() != ""
        if is_code and not in_code:
            out.append("```")
            in_code = True
        elif not is_code and in_code and line.strip():
            out.append("```")
            in_code = False
        out.append(line[2:] if is_code else line)
    if in_code:
        out.append("```")
    return "\n".join(out)


def render() -> str:
    root = click.Context(cli, info_name="webvid", **cli.context_settings)
    lines = [HEADER]
    lines += ["## `webvid`", "", "```", _usage(cli, root), "```", ""]
    rows = _option_rows(cli, root)
    lines += ["| option | description |", "| --- | --- |"]
    lines += [f"| `{o}` | {' '.join(d.split())} |" for o, d in rows]
    lines.append("")
    for name in cli.list_commands(root):
        cmd = cli.get_command(root, name)
        if cmd is not None:
            lines += _section(name, cmd, root)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
