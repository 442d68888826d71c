"""The node-level decrypt of an incoming ``<message>``: its ``<enc>`` children in, one typed outcome out.

Rules (SIGNAL.md sections 1 and 4; Baileys ``decode-wa-message.ts``, whatsmeow ``message.go``):

* the ``<enc>`` children are decrypted **in stanza order**: the pairwise ``pkmsg``/``msg`` first, and a
  ``senderKeyDistributionMessage`` inside its plaintext is taken in before the ``skmsg`` of the same
  stanza is opened with it;
* each plaintext is unpadded (``padding.unpad``) and read as a ``Message`` (``wamessage.decode_message``),
  which unwraps a ``deviceSentMessage`` (our own other device's send: ``from_me``);
* the message is the last payload's content that is more than a bare sender key (one that opened
  wins over one that did not); a stanza whose only payload is a sender-key carrier is still a message
  (of kind ``sender_key_distribution``);
* the outcome is a :class:`DecryptedMessage` or a :class:`DecryptFailure` with a
  :class:`FailureReason`, never another exception: every ``SignalError`` and ``MessageFormatError`` is
  mapped, anything else is a bug and propagates (the client closes on it).

A payload that fails after an earlier one succeeded leaves the earlier one's Signal state applied (the
``SignalRepository`` writes per call): that is what a resend after our retry receipt needs, as the
sender re-encrypts every payload on a new session anyway. A duplicate (a counter already used) is a
failure only when nothing in the stanza decrypted.
"""

from __future__ import annotations

import contextlib

from connector.protocol.binary import BROADCAST_SERVER, GROUP_SERVER, LID_SERVER, USER_SERVER, Jid
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.events import Addressing, DecryptedMessage, DecryptFailure, FailureReason, IncomingMessage
from connector.protocol.padding import unpad
from connector.protocol.signal import errors as signal_errors
from connector.protocol.signal.repository import SignalRepository
from connector.protocol.signal.types import SignalAddress
from connector.protocol.wamessage import ContentKind, DecodedMessage, decode_message

PADDED_VERSION = "2"
"""``<enc v="2">``: padded Signal, what Baileys and WhatsApp Web send (``v="3"`` is unpadded Armadillo)."""


_SIGNAL_REASONS: tuple[tuple[type[signal_errors.SignalError], FailureReason], ...] = (
    (signal_errors.DuplicateMessageError, FailureReason.DUPLICATE),
    (signal_errors.BadMacError, FailureReason.BAD_MAC),
    (signal_errors.NoSessionError, FailureReason.NO_SESSION),  # NoMatchingSessionError included
    (signal_errors.ChainClosedError, FailureReason.NO_SESSION),
    (signal_errors.NoSenderKeyError, FailureReason.NO_SENDER_KEY),
    (signal_errors.TooFarAheadError, FailureReason.TOO_FAR_AHEAD),
    (signal_errors.PreKeyError, FailureReason.NO_PRE_KEY),
    (signal_errors.UntrustedIdentityError, FailureReason.UNTRUSTED_IDENTITY),
    (signal_errors.InvalidRecordError, FailureReason.BAD_RECORD),
    (signal_errors.InvalidMessageError, FailureReason.INVALID),
)


def failure_reason(exc: Exception) -> FailureReason:
    """The reason for an error raised while opening a payload."""
    for kind, reason in _SIGNAL_REASONS:
        if isinstance(exc, kind):
            return reason
    return FailureReason.INVALID


def user_of(jid: Jid) -> str:
    """The user JID of a device JID (``123:4@s.whatsapp.net`` -> ``123@s.whatsapp.net``)."""
    return f"{jid.user}@{jid.server}"


def is_group(jid_text: str) -> bool:
    server = jid_text.rpartition("@")[2]
    return server in (GROUP_SERVER, BROADCAST_SERVER)


def addressing(message: IncomingMessage, me: Jid, my_lid: Jid | None,
               decoded: DecodedMessage | None = None) -> Addressing:
    """The key parties of ``message``: the chat, the author, and whether our own device wrote it."""
    try:
        author = Jid.parse(message.author)
    except JidError:
        return Addressing(chat=message.sender, sender=message.author, participant=message.participant,
                          from_me=False)
    own = (author.user, author.server) == (me.user, me.server) or (
        my_lid is not None and (author.user, author.server) == (my_lid.user, my_lid.server))
    if is_group(message.sender):
        return Addressing(chat=message.sender, sender=user_of(author), participant=user_of(author), from_me=own)
    chat_text = user_of(author)
    if own:
        destination = decoded.device_sent.destination_jid if decoded and decoded.device_sent else message.recipient
        if destination:
            with contextlib.suppress(JidError):
                chat_text = user_of(Jid.parse(destination))
    return Addressing(chat=chat_text, sender=user_of(author), participant=None, from_me=own)


def decrypt_message(repo: SignalRepository, message: IncomingMessage, me: Jid,
                    my_lid: Jid | None = None) -> DecryptedMessage | DecryptFailure:
    """Open every ``<enc>`` of ``message`` in order (module docstring); never raises for peer input."""
    try:
        author = SignalAddress.from_jid(Jid.parse(message.author))
    except JidError as exc:
        return _failure(message, me, my_lid, FailureReason.INVALID, exc)
    pn_author = _learn_lid_mapping(repo, message)
    # Pairwise sessions by the phone-number address when it is known: the Signal layer resolves it to
    # the LID one (moving a session made under the PN form), so either form finds the same session.
    pairwise = SignalAddress(pn_author.user, author.device) if pn_author is not None else author
    group = message.sender if is_group(message.sender) else None
    content: DecodedMessage | None = None
    skdm_only: DecodedMessage | None = None
    failure: tuple[FailureReason, Exception] | None = None
    for payload in message.payloads:
        if payload.version != PADDED_VERSION:
            failure = failure or (FailureReason.UNSUPPORTED, MessageFormatError(f"enc v={payload.version}"))
            continue
        try:
            if payload.type in ("pkmsg", "msg"):
                plaintext = repo.decrypt(pairwise, "pkmsg" if payload.type == "pkmsg" else "msg", payload.ciphertext)
            elif payload.type == "skmsg" and group is not None:
                plaintext = repo.group_decrypt(group, author, payload.ciphertext)
            else:
                failure = failure or (FailureReason.UNSUPPORTED, MessageFormatError(f"enc type={payload.type}"))
                continue
            decoded = decode_message(unpad(plaintext))
            distribution = decoded.sender_key_distribution
            if distribution is not None:
                # Before the skmsg that follows in this stanza; in a group chat, for that group.
                repo.process_sender_key_distribution(group or distribution.group_id, author,
                                                     distribution.axolotl_message)
        except (signal_errors.SignalError, MessageFormatError) as exc:
            reason = failure_reason(exc)
            if failure is None or failure[0] is FailureReason.DUPLICATE:
                failure = (reason, exc)
            continue
        if decoded.content.kind is ContentKind.SENDER_KEY_DISTRIBUTION:
            skdm_only = decoded
        else:
            content = decoded
    if content is not None:
        return DecryptedMessage(message, content, addressing(message, me, my_lid, content))
    if failure is None and skdm_only is not None:
        return DecryptedMessage(message, skdm_only, addressing(message, me, my_lid, skdm_only))
    if failure is None:
        failure = (FailureReason.UNSUPPORTED, MessageFormatError("no enc payload"))
    return _failure(message, me, my_lid, failure[0], failure[1])


def _learn_lid_mapping(repo: SignalRepository, message: IncomingMessage) -> Jid | None:
    """A stanza naming the author in both addressings (``participant_pn``, ``sender_lid``, ...) tells
    which LID user a phone-number user is: the Signal layer then finds one session under either form
    (Baileys ``storeLIDPNMappings`` on every message). Returns the author's phone-number JID, if known."""
    if not message.sender_alt:
        return None
    try:
        author, alt = Jid.parse(message.author), Jid.parse(message.sender_alt)
    except JidError:
        return None
    pn, lid = (author, alt) if alt.server == LID_SERVER else (alt, author)
    if lid.server != LID_SERVER or pn.server != USER_SERVER or not pn.user or not lid.user:
        return None
    repo.store_lid_mapping(pn.user, lid.user)
    return pn


def _failure(message: IncomingMessage, me: Jid, my_lid: Jid | None, reason: FailureReason,
             exc: Exception) -> DecryptFailure:
    return DecryptFailure(message, reason, type(exc).__name__, addressing(message, me, my_lid))
