"""No personal data reaches the store or the logs: scan the SQLite file's bytes after a PII-laden call."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import grpc
import pytest

from tests.analytics_svc.builders import call_ended, call_started, error, tool, transfer, turn
from tests.analytics_svc.conftest import Analytics
from voicebot.v1 import analytics_service_pb2 as pb

CARD = "4111 1111 1111 1111"
AMEX = "3782-822463-10005"
SSN = "078-05-1120"
EMAIL = "jane.doe@example.com"
PHONE = "(555) 867-5309"
CALLER = "+1 555 867 5309"
ACCOUNT = "00123456789"
IBAN = "GB82 WEST 1234 5698 7654 32"
SECRETS = [CARD, AMEX, SSN, EMAIL, PHONE, CALLER, ACCOUNT, IBAN, "jane dot doe at example dot com", "4321"]


def pii_session(session_id: str) -> list[pb.Event]:
    return [
        call_started(session_id, caller_id=CALLER),
        turn(
            session_id,
            transcript=f"my card is {CARD} and my ssn is {SSN}, mail me at {EMAIL} or jane dot doe at example dot com",
            response_text=f"I found the card ending {CARD[-4:]}; I'll call you on {PHONE}",
        ),
        turn(session_id, index=1, transcript=f"amex {AMEX}, account {ACCOUNT}, iban {IBAN}", intent="balance"),
        tool(
            session_id,
            arguments_json=json.dumps({"account_number": ACCOUNT, "card": CARD, "pin": "4321", "to": IBAN}),
        ),
        error(session_id, message=f"lookup failed for {EMAIL} / {ACCOUNT}"),
        transfer(session_id, reason=f"caller {CALLER} asked for an agent"),
        call_ended(session_id),
    ]


def variants(secret: str) -> list[bytes]:
    """The secret as written and as bare digits (when it has at least 7)."""
    found = [secret.encode()]
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 7:
        found.append(digits.encode())
    return found


def database_bytes(path: str) -> bytes:
    return b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*"))


def assert_clean(blob: bytes) -> None:
    for secret in SECRETS:
        for variant in variants(secret):
            if variant == b"4321":
                continue  # four digits alone also appear in ordinary data; checked below as a JSON value
            assert variant not in blob, secret
    assert b'"pin":"4321"' not in blob


async def test_the_store_holds_no_personal_data(analytics: Analytics, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    response = await analytics.ingest(pii_session("pii"))
    assert response.accepted_count == 7
    # Bad input carrying personal data: the error (and its log line) must not echo it.
    bad = pb.Event(event_id="bad", session_id="pii")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await analytics.ingest([turn("pii", transcript=f"card {CARD}"), bad])
    assert CARD not in (caught.value.details() or "")

    path = analytics.settings.db_path
    live = database_bytes(path)  # the WAL holds the recent pages while the server runs
    for label in (b"[CARD]", b"[SSN]", b"[EMAIL]", b"[PHONE]", b"[ACCOUNT]", b"[REDACTED]"):
        assert label in live
    assert_clean(live)

    watched = [r.event async for r in analytics.stub.WatchSession(pb.WatchSessionRequest(session_id="pii"))]
    assert_clean(b"".join(event.SerializeToString() for event in watched))

    await analytics.server.stop(0)
    at_rest = database_bytes(path)
    assert b"[CARD]" in at_rest
    assert_clean(at_rest)
    assert_clean(caplog.text.encode())
