"""`omnirouter auth code`: an OAuth PKCE code for an app, as POST /auth/keys/code (and the consent page)
make one (governance/oauth.py), or with --base-url a remote gateway's API; `--json` prints what the API
answers. For an app that cannot open a browser: the operator makes the code here and hands it over; the
app exchanges it at POST /auth/keys."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import click

from omnirouter.commands.common import echo_json, options, run


@click.group()
def auth() -> None:
    """OAuth PKCE: codes apps exchange once for an API key (the browser's way is the /auth page)."""


@auth.command("code")
@click.option("--callback-url", required=True, help="The app's callback: https, or http on localhost.")
@click.option("--code-challenge", default=None, help="The app's PKCE challenge (then its verifier is required).")
@click.option("--code-challenge-method", type=click.Choice(["S256", "plain"]), default=None, help="[plain]")
@click.option("--limit", default=None, help="The key's credit limit in USD.")
@click.option("--usage-limit-type", type=click.Choice(["daily", "weekly", "monthly"]), default=None)
@click.option("--expires-at", default=None, help="When the key expires, ISO 8601 in UTC (…Z).")
@click.option("--key-label", default=None, help="The key's name [the callback's host].")
@click.option("--workspace-id", default=None, help="The key's workspace, by id or slug [the default one].")
@options
def auth_code(config: str | None, as_json: bool, **fields: Any) -> None:
    """Make a code, valid for 5 minutes and exchangeable once, and print it with the callback URL
    the browser would have been sent to."""
    import msgspec

    from omnirouter.errors import GatewayError
    from omnirouter.governance import oauth

    given = {k: v for k, v in fields.items() if v is not None}
    if "limit" in given:
        try:
            given["limit"] = Decimal(given["limit"])
        except ArithmeticError:  # decimal.InvalidOperation
            raise click.BadParameter("not a number", param_hint="--limit") from None
    if "expires_at" in given:
        try:
            given["expires_at"] = datetime.fromisoformat(given["expires_at"].replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter("not an ISO 8601 timestamp", param_hint="--expires-at") from None
    try:
        body = msgspec.convert(given, oauth.CreateCode)
    except msgspec.ValidationError as exc:
        raise click.UsageError(str(exc)) from None

    async def work(db: Any) -> oauth.CodeResponse:
        return (await oauth.create_code(db, body)).answer()

    try:
        answer = run(config, work, lambda api: api.auth.create_code(body=body))
    except GatewayError as err:  # run maps those raised inside; this is for completeness
        raise click.ClickException(err.message) from None
    if as_json:
        echo_json(answer)
        return
    click.echo(f"code\t{answer.data.id}")
    click.echo(f"redirect\t{oauth.redirect_url(body.callback_url, answer.data.id)}")
