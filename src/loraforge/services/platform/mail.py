"""Outgoing mail (alerts, password resets, invitations) through the operator's SMTP server.

Plain `smtplib`: one connection per call, `smtp_timeout_seconds` on every exchange, STARTTLS when
`smtp_starttls` is on (required then: a server that does not offer it is a failure, never a silent
fall-back to plain text), a login only when `smtp_username` is set. Bodies are plain text.

A failure is a `MailError` whose text is safe to store and show (the exception's type and the SMTP
reply code, never the password and never the server's whole answer). Log lines count recipients and
never name them: addresses are personal data, and a log outlives the mail.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from loraforge.settings import Settings

logger = logging.getLogger("loraforge.mail")


class MailError(Exception):
    """Sending failed; `str()` is a short reason fit for an alert's delivery record."""


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


def configured(settings: Settings) -> bool:
    """Whether mail can be sent at all (an SMTP host is set)."""
    return bool(settings.smtp_host and settings.smtp_host.strip())


def _reason(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    name = type(exc).__name__
    # smtplib reports a timeout while waiting for a reply as a disconnection "...: timed out".
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "the SMTP server did not answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "the SMTP server refused the connection"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the SMTP server closed the connection"
    return f"{name} (SMTP {code})" if isinstance(code, int) else name


def _message(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(mail.to)
    # A header may not hold a line break: a title that did would start a header of its own.
    message["Subject"] = " ".join(mail.subject.split())[:250]
    message["Date"] = formatdate(localtime=False)
    # A domain always: without one, make_msgid asks DNS for this host's full name (it can hang).
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "loraforge.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(mail.body)
    return message


def _open(settings: Settings) -> smtplib.SMTP:
    assert settings.smtp_host is not None
    client = smtplib.SMTP(
        settings.smtp_host.strip(), settings.smtp_port, timeout=settings.smtp_timeout_seconds
    )
    try:
        client.ehlo()
        if settings.smtp_starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_username, password)
    except BaseException:
        client.close()
        raise
    return client


def send_all(settings: Settings, mails: Sequence[Mail]) -> None:
    """Send every mail over one connection; MailError on the first failure (none configured: too)."""
    if not configured(settings):
        raise MailError("no SMTP server is configured (LORAFORGE_SMTP_HOST)")
    envelope_from = parseaddr(settings.smtp_from)[1] or settings.smtp_from
    try:
        client = _open(settings)
        try:
            for mail in mails:
                if mail.to:
                    client.send_message(_message(settings, mail), from_addr=envelope_from, to_addrs=mail.to)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        reason = _reason(exc)
        recipients = sum(len(mail.to) for mail in mails)
        logger.warning("mail to %s recipient(s) not sent: %s", recipients, reason)
        raise MailError(reason) from None
    logger.info("mail sent: %s message(s)", len(mails))


def send(settings: Settings, mail: Mail) -> None:
    send_all(settings, [mail])


def send_quietly(settings: Settings, mail: Mail) -> bool:
    """`send`, a failure only logged (for mail sent after the answer, where nobody could be told)."""
    try:
        send(settings, mail)
    except MailError:
        return False
    return True
