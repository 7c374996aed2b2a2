"""`keys`: the token encryption key ring (TOKEN_ENCRYPTION_KEYS): new keys, what each key sealed, re-encryption."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import click

from ops.cli_support import CLIENT_ID, open_store
from ops.progress import Interrupted, Progress, interrupted_exit, progress_mode, run_interruptibly

if TYPE_CHECKING:
    from stores.keys import ReencryptReport

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Token encryption key commands (TOKEN_ENCRYPTION_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key. To rotate without breaking a rolling restart, append it LAST to TOKEN_ENCRYPTION_KEYS
    on every host and restart them all, then move it first everywhere and restart again, then run `keys reencrypt`
    (the README has the steps)."""
    from stores.crypto import generate_key

    click.echo(generate_key())


@keys.command("status")
@CLIENT_ID
def keys_status(client_id: str | None) -> None:
    """Show the key ring in order (the first encrypts) and how many stored ciphertexts each key sealed; exits 1 with a
    warning when some are sealed with a key missing from TOKEN_ENCRYPTION_KEYS."""
    from stores.keys import key_usage

    store = open_store(client_id)
    client_id = store.client_id
    try:
        usage = key_usage(store)
    finally:
        store.engine.dispose()
    ring = store.keyring.key_ids
    click.echo(f"TOKEN_ENCRYPTION_KEYS for client {client_id}, in ring order (the first encrypts, every key decrypts):")
    for position, key_id in enumerate(ring, start=1):
        role = "primary" if position == 1 else ""
        click.echo(f"  {position}. {key_id}  {role:<7}  {usage[key_id].ciphertexts} ciphertext(s)")
    missing = {key_id: count for key_id, count in usage.items() if not count.in_ring}
    if missing:
        click.echo("Not in TOKEN_ENCRYPTION_KEYS:")
        for key_id, count in missing.items():
            click.echo(f"  -  {key_id}  {count.ciphertexts} ciphertext(s)")
    under_old = sum(usage[key_id].ciphertexts for key_id in ring[1:])
    if under_old:
        click.echo(f"{under_old} ciphertext(s) are under an older key: run `keys reencrypt`.")
    else:
        idle = ring[1:]
        if idle:
            click.echo(
                f"No ciphertext under {', '.join(idle)}: once every host has the primary key first, it can be dropped."
            )
    if missing:
        total = sum(count.ciphertexts for count in missing.values())
        click.echo(
            f"Warning: {total} stored ciphertext(s) use a key not in TOKEN_ENCRYPTION_KEYS "
            f"({', '.join(missing)}); those tokens cannot be decrypted. Put the missing key back in the ring (last), "
            "or have those people reconnect.",
            err=True,
        )
        raise click.exceptions.Exit(1)


@keys.command("reencrypt")
@CLIENT_ID
@click.option("--batch-size", type=click.IntRange(min=1), default=200, show_default=True, help="Rows per transaction.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress on stderr: a bar on a terminal, else a line per batch [default: when stderr is a terminal].",
)
def keys_reencrypt(client_id: str | None, batch_size: int, progress: bool | None) -> None:
    """Re-encrypt this app's stored tokens under the first key of TOKEN_ENCRYPTION_KEYS, batch by batch, under live
    traffic; safe to interrupt (Ctrl-C) and run again. Run it only once every host has the new key first. Exits 1 when
    some rows could not be decrypted."""
    from stores.keys import ReencryptProgress, reencrypt

    store = open_store(client_id)
    mode = progress_mode(progress)
    bar = Progress("re-encrypting", None, mode)

    def work(stop: threading.Event) -> ReencryptReport:
        def on_batch(step: ReencryptProgress) -> None:
            totals = step.report
            if bar.total is None:
                bar.total = step.rows_to_do
            bar.advance(
                step.rows_done - bar.done,
                f"{step.table}: {step.rows_done}/{step.rows_to_do} row(s) read, {totals.rows_rewritten} rewritten, "
                f"{totals.rows_skipped} changed meanwhile, {len(totals.undecryptable)} field(s) undecryptable",
            )
            if stop.is_set():
                raise Interrupted  # the batches done are committed; the next run resumes

        return reencrypt(store, batch_size=batch_size, on_progress=on_batch)

    try:
        with bar:
            report = run_interruptibly(work)
    except Interrupted:
        raise interrupted_exit(bar.done, "row(s)") from None
    finally:
        store.engine.dispose()
    click.echo(
        f"re-encrypted {report.fields_rewritten} token field(s) in {report.rows_rewritten} row(s) under key "
        f"{store.keyring.primary_key_id}; {report.rows_skipped} row(s) changed meanwhile, "
        f"{len(report.undecryptable)} field(s) could not be decrypted, {report.rows_remaining} row(s) left under other keys"
    )
    for failure in report.undecryptable:
        click.echo(f"cannot decrypt {failure.describe()}", err=True)
    if report.undecryptable:
        raise click.exceptions.Exit(1)
    if report.rows_remaining:
        click.echo("some rows changed while they were being re-encrypted: run the command again", err=True)
