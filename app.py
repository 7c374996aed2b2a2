"""Delegate's composition root and command line: settings -> engine -> store -> token manager -> Bolt App."""

from __future__ import annotations

import sys

import click

from settings import Settings, SettingsError


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        raise click.ClickException(str(error)) from None


@click.group(invoke_without_command=True)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Delegate: a Slack app that acts as its users, with rotating user tokens done right."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@cli.command("run")
@click.option("--port", type=int, default=None, help="HTTP port (default: PORT or 3000).")
def run(port: int | None) -> None:
    """Run Delegate: against the sandbox when no Slack app is configured, else against Slack."""
    settings = load_settings()
    missing = settings.missing_for_slack()
    if missing:
        raise click.ClickException(
            "Delegate needs a Slack app to talk to. Missing: "
            + ", ".join(missing)
            + ". Create a Slack app from manifest.yml and set these variables (see README.md)."
        )
    raise click.ClickException("the HTTP app is not built yet (see the app issue)")


def _register_commands() -> None:
    from stores.cli import db, keys, tokens

    for group in (db, keys, tokens):
        cli.add_command(group)


_register_commands()


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
    sys.exit(main())
