"""Delegate's composition root and command line: settings -> engine -> store -> token manager -> Bolt App."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Delegate: a Slack app that acts as its users, with rotating user tokens done right."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _register_sandbox() -> None:
    try:
        from sandbox.cli import sandbox_command
    except ImportError:  # the sandbox package is being built
        return
    cli.add_command(sandbox_command, name="sandbox")


_register_sandbox()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
