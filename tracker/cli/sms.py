"""`tracker sms receive` (feed a text through the real pipeline) and `tracker alerts`."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from tracker.cli.common import UserError, app_for, out
from tracker.db.tables import Alert, Episode
from tracker.domain import AlertState

sms_app = typer.Typer(help="Simulated texts: feed a patient's reply through the real pipeline.")


@sms_app.command("receive")
def receive(
    from_number: Annotated[
        str, typer.Option("--from", help="The sender's number, e.g. +447700900123.")
    ],
    body: Annotated[str, typer.Option("--body", help="The text as the patient typed it.")],
    now: Annotated[
        str | None, typer.Option("--now", help="Pretend it is this ISO-8601 instant.")
    ] = None,
    sid: Annotated[
        str | None,
        typer.Option("--sid", help="Provider message id (default: a new random one)."),
    ] = None,
    media: Annotated[int, typer.Option("--media", min=0, help="Number of pictures attached.")] = 0,
) -> None:
    """Receive one text as if the provider had delivered it, and print the replies sent."""
    from tracker.services.inbound import receive_and_reply
    from tracker.sms.port import InboundSms

    if not from_number.strip():
        raise UserError("--from needs a phone number, e.g. +447700900123")
    message_sid = sid or "SM" + uuid.uuid4().hex
    with app_for(now) as app:
        result = receive_and_reply(
            app, InboundSms(message_sid, from_number, body, media_count=media)
        )
    if result.duplicate and not result.reply_ids:
        out.print(f"Already received (message {result.message_id}); nothing new was done.")
        return
    if not result.replies:
        out.print("(no reply)")
    for reply in result.replies:
        out.print(reply)


def alerts(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List open alerts (not yet resolved): risk, recontact, opt-out review, delivery problems."""
    with app_for() as app, app.sessions() as session:
        rows = session.execute(
            select(Alert.kind, Episode.episode_ref, Alert.raised_at, Alert.state, Alert.detail)
            .outerjoin(Episode, Episode.id == Alert.episode_id)
            .where(Alert.state != AlertState.RESOLVED)
            .order_by(Alert.raised_at, Alert.id)
        ).all()
    if as_json:
        for kind, ref, raised_at, state, _detail in rows:
            record = {
                "kind": kind,
                "episode_ref": ref,
                "raised_at": raised_at.isoformat(),
                "state": state,
            }
            out.print(json.dumps(record), markup=False, highlight=False)
        return
    if not rows:
        out.print("No open alerts.")
        return
    table = Table("raised at (UTC)", "kind", "episode", "state", "detail")
    for kind, ref, raised_at, state, detail in rows:
        table.add_row(
            raised_at.strftime("%Y-%m-%d %H:%M"), kind, ref or "(unknown sender)", state,
            detail or "",
        )  # fmt: skip
    out.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(sms_app, name="sms")
    app.command("alerts")(alerts)
