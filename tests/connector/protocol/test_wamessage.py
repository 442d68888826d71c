"""The Message decoder and encoders against Baileys 7's own schema (WAProto via protobufjs, run in Node)."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.errors import MessageFormatError
from connector.protocol.padding import pad, unpad
from connector.protocol.proto import wa_e2e_pb2 as e2e
from connector.protocol.wamessage import (
    MAX_QUOTE_DEPTH,
    AppStateKeyShare,
    ContentKind,
    Edit,
    EphemeralSetting,
    MessageRef,
    OtherProtocolMessage,
    Revoke,
    decode_message,
)
from connector.protocol.wamessage_encode import (
    ReplyTarget,
    device_sent_message,
    reaction_message,
    reply_message,
    sender_key_distribution_message,
    text_message,
)
from testkit.protocol.seeded import SeededRandom

REPO_ROOT = Path(__file__).resolve().parents[3]
CORPUS_SCRIPT = REPO_ROOT / "tests" / "js" / "wamessage_corpus.mjs"


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is required (Baileys 7 is the reference peer)"
    return node


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """name -> (bytes Baileys encoded, protobufjs toJSON of them)."""
    out = subprocess.run([_node(), str(CORPUS_SCRIPT)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    entries = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {e["name"]: (base64.b64decode(e["b64"]), e["json"]) for e in entries}


def baileys_decode(messages: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """protobufjs' toJSON of each of our encodings, decoded by Baileys' schema."""
    stdin = "".join(json.dumps({"name": n, "b64": base64.b64encode(b).decode()}) + "\n" for n, b in messages.items())
    out = subprocess.run([_node(), str(CORPUS_SCRIPT), "decode"], cwd=REPO_ROOT, input=stdin, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return {e["name"]: e["json"] for e in map(json.loads, out.splitlines())}


# ------------------------------------------------------------------------------------------- decoding


def test_json_is_what_baileys_users_see(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    assert len(corpus) >= 25
    for name, (data, baileys_json) in corpus.items():
        expected = baileys_json["deviceSentMessage"]["message"] if name == "device_sent" else baileys_json
        assert decode_message(data).json == expected, name


def test_text_and_extended_text(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    text = decode_message(corpus["text"][0])
    assert (text.content.kind, text.text) == (ContentKind.TEXT, "hello from Baileys ✓")
    reply = decode_message(corpus["extended_reply"][0]).content
    assert (reply.kind, reply.text) == (ContentKind.EXTENDED_TEXT, "a reply")
    assert reply.quote is not None and reply.quote.content is not None
    assert (reply.quote.message_id, reply.quote.participant) == ("3EB0QUOTED0000000001", "4915550002@s.whatsapp.net")
    assert (reply.quote.content.kind, reply.quote.content.text) == (ContentKind.TEXT, "the quoted text")
    assert reply.mentioned_jids == ("4915550003@s.whatsapp.net",)
    assert reply.expiration_s == 604800
    forwarded = decode_message(corpus["forwarded"][0]).content
    assert forwarded.forwarded and forwarded.quote is None


def test_media_metadata_and_keys(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    image = decode_message(corpus["image"][0]).content
    assert (image.kind, image.text) == (ContentKind.IMAGE, "a caption")
    media = image.media
    assert media is not None
    assert media.mimetype == "image/jpeg" and media.direct_path == "/v/t62.7118-24/abc.enc"
    assert media.media_key is not None and len(media.media_key) == 32
    assert media.file_sha256 is not None and media.file_enc_sha256 is not None
    assert (media.file_length, media.width, media.height, media.media_key_timestamp) == (123456, 640, 480,
                                                                                         1764800000)
    assert "media_key=" not in repr(media)
    video = decode_message(corpus["video"][0]).content
    assert video.kind is ContentKind.VIDEO and video.media is not None
    assert (video.text, video.media.seconds, video.media.gif_playback, video.media.video_note) == ("clip", 12, True,
                                                                                                 False)
    ptv = decode_message(corpus["ptv"][0]).content
    assert ptv.kind is ContentKind.VIDEO and ptv.media is not None and ptv.media.video_note
    voice = decode_message(corpus["voice_note"][0]).content
    assert voice.kind is ContentKind.AUDIO and voice.media is not None
    assert (voice.media.voice_note, voice.media.seconds, voice.text) == (True, 7, None)
    document = decode_message(corpus["document"][0]).content
    assert document.kind is ContentKind.DOCUMENT and document.media is not None
    assert (document.media.file_name, document.text) == ("report.pdf", "the report")
    assert document.quote is not None and document.quote.message_id == "3EB0QUOTED0000000001"
    sticker = decode_message(corpus["sticker"][0]).content
    assert sticker.kind is ContentKind.STICKER and sticker.media is not None and sticker.media.animated
    wrapped = decode_message(corpus["document_with_caption"][0]).content
    assert (wrapped.kind, wrapped.text) == (ContentKind.DOCUMENT, "see attached")
    view_once = decode_message(corpus["view_once_image"][0]).content
    assert view_once.kind is ContentKind.IMAGE and view_once.view_once


def test_location_and_contact(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    location = decode_message(corpus["location"][0]).content.location
    assert location is not None and (location.latitude, location.longitude, location.name) == (52.52, 13.405, "Berlin")
    contact = decode_message(corpus["contact"][0]).content.contact
    assert contact is not None and contact.display_name == "Ada" and contact.vcard is not None


def test_reactions(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    reaction = decode_message(corpus["reaction"][0]).content
    assert reaction.kind is ContentKind.REACTION and reaction.reaction is not None and reaction.text is None
    assert reaction.reaction.emoji == "👍" and reaction.reaction.sender_timestamp_ms == 1764800000123
    assert reaction.reaction.target == MessageRef(id="3EB0AABBCCDDEEFF001122",
                                                  remote_jid="4915550001@s.whatsapp.net", from_me=False)
    removed = decode_message(corpus["reaction_removed"][0]).content.reaction
    assert removed is not None and removed.emoji == "" and removed.target.from_me


def test_protocol_messages(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    revoke = decode_message(corpus["revoke"][0]).content
    assert revoke.kind is ContentKind.REVOKE and isinstance(revoke.protocol, Revoke)
    assert revoke.protocol.target.id == "3EB0AABBCCDDEEFF001122" and revoke.protocol.target.from_me
    edit = decode_message(corpus["edit"][0]).content
    assert edit.kind is ContentKind.EDIT and isinstance(edit.protocol, Edit)
    assert edit.text == "the edited text" and edit.protocol.timestamp_ms == 1764800001000
    assert edit.protocol.content is not None and edit.protocol.content.kind is ContentKind.TEXT
    wrapped = decode_message(corpus["edit_wrapped"][0]).content
    assert (wrapped.kind, wrapped.text) == (ContentKind.EDIT, "edited again")
    setting = decode_message(corpus["ephemeral_setting"][0]).content
    assert setting.protocol == EphemeralSetting(expiration_s=86400, setting_timestamp=1764800000)
    off = decode_message(corpus["ephemeral_off"][0]).content
    assert off.protocol == EphemeralSetting(expiration_s=0, setting_timestamp=None)
    share = decode_message(corpus["app_state_key_share"][0]).content
    assert share.kind is ContentKind.APP_STATE_KEY_SHARE and isinstance(share.protocol, AppStateKeyShare)
    first, second = share.protocol.keys
    assert len(first.key_id) == 6 and len(first.key_data) == 32 and first.timestamp == 1764800000000
    assert (first.fingerprint_raw_id, first.fingerprint_current_index, first.fingerprint_device_indexes) == (
        12345, 2, (0, 2))
    assert second.timestamp is None and "key_data=" not in repr(second)
    other = decode_message(corpus["history_sync_notification"][0]).content
    assert other.protocol == OtherProtocolMessage(type=5, name="HISTORY_SYNC_NOTIFICATION")


def test_sender_key_distribution_and_device_sent(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    alone = decode_message(corpus["skdm_only"][0])
    assert alone.content.kind is ContentKind.SENDER_KEY_DISTRIBUTION
    assert alone.sender_key_distribution is not None
    assert alone.sender_key_distribution.group_id == "120363000000000001@g.us"
    assert len(alone.sender_key_distribution.axolotl_message) == 74
    joined = decode_message(corpus["skdm_with_text"][0])
    assert (joined.content.kind, joined.text) == (ContentKind.TEXT, "first group message")
    assert joined.sender_key_distribution is not None
    sent = decode_message(corpus["device_sent"][0])
    assert sent.device_sent is not None and sent.device_sent.destination_jid == "4915550001@s.whatsapp.net"
    assert (sent.content.kind, sent.text) == (ContentKind.EXTENDED_TEXT, "sent from my phone")
    assert "deviceSentMessage" not in sent.json and sent.json["extendedTextMessage"]["text"] == "sent from my phone"
    assert decode_message(corpus["context_info_only"][0]).content.kind is ContentKind.UNKNOWN


def test_decoding_refuses_what_lacks_required_parts() -> None:
    bad = [
        e2e.Message(reactionMessage=e2e.Message.ReactionMessage(text="x")),
        e2e.Message(protocolMessage=e2e.Message.ProtocolMessage(type=e2e.Message.ProtocolMessage.REVOKE)),
        e2e.Message(protocolMessage=e2e.Message.ProtocolMessage(key=e2e.MessageKey(id="X"))),
        e2e.Message(senderKeyDistributionMessage=e2e.Message.SenderKeyDistributionMessage(groupId="g@g.us")),
        e2e.Message(deviceSentMessage=e2e.Message.DeviceSentMessage(message=e2e.Message(conversation="x"))),
    ]
    for message in bad:
        with pytest.raises(MessageFormatError):
            decode_message(message.SerializeToString())
    with pytest.raises(MessageFormatError):
        decode_message(b"\x0a\x02\xff\xfe")  # conversation that is not UTF-8
    with pytest.raises(MessageFormatError):
        decode_message(b"\x0a\x05ab")  # truncated


def test_nesting_is_bounded() -> None:
    message = e2e.Message(conversation="innermost")
    for _ in range(20):
        message = e2e.Message(extendedTextMessage=e2e.Message.ExtendedTextMessage(
            text="reply", contextInfo=e2e.ContextInfo(stanzaId="Q", quotedMessage=message)))
    content = decode_message(message.SerializeToString()).content
    quoted_levels = 0
    while content.quote is not None and content.quote.content is not None:
        content, quoted_levels = content.quote.content, quoted_levels + 1
    assert quoted_levels == MAX_QUOTE_DEPTH
    assert content.quote is not None and content.quote.message_id == "Q"  # the id stays, the content is cut
    deep = b"\x0a\x01a"
    for _ in range(200):  # deviceSentMessage.message nested beyond protobuf's depth limit
        inner = b"\x12" + _varint(len(deep)) + deep
        deep = b"\xfa\x01" + _varint(len(inner)) + inner
    with pytest.raises(MessageFormatError):
        decode_message(deep)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ----------------------------------------------------------------------------------------------- fuzz


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_random_bytes_decode_or_raise_message_format_error(data: bytes) -> None:
    with contextlib.suppress(MessageFormatError):
        decode_message(data)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_real_messages_decode_or_raise_message_format_error(corpus: dict[str, tuple[bytes, dict[str, Any]]],
                                                                    data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(corpus)))
    message = bytearray(corpus[name][0])
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "set", "cut", "insert", "drop"]))
        at = data.draw(st.integers(0, max(len(message) - 1, 0)))
        if op == "flip" and message:
            message[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set" and message:
            message[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del message[at:]
        elif op == "insert":
            message[at:at] = data.draw(st.binary(min_size=1, max_size=6))
        elif op == "drop" and message:
            del message[at]
    try:
        decoded = decode_message(bytes(message))
    except MessageFormatError:
        return
    json.dumps(decoded.json)  # whatever decodes has a JSON form


# ------------------------------------------------------------------------------------------- encoding


def test_our_encodings_read_back_in_baileys(corpus: dict[str, tuple[bytes, dict[str, Any]]]) -> None:
    secret = bytes(range(32))
    quoted = corpus["extended_reply"][0]  # a reply itself: its own quote must not nest into ours
    target = ReplyTarget(message_id="3EB0ORIGINAL", participant="4915550002@s.whatsapp.net", message=quoted)
    ours = {
        "text": text_message("hi ✓", message_secret=secret),
        "reply": reply_message("yes", target, mentioned_jids=("4915550002@s.whatsapp.net",)),
        "reaction": reaction_message(MessageRef(id="3EB0X", remote_jid="120363000000000001@g.us",
                                                participant="4915550002@s.whatsapp.net"), "❤️", 1764800000123),
        "device_sent": device_sent_message(text_message("to you", message_secret=secret),
                                           "4915550001@s.whatsapp.net"),
        "skdm": sender_key_distribution_message("120363000000000001@g.us", b"\x33" + bytes(73)),
        "skdm_retry": sender_key_distribution_message("120363000000000001@g.us", b"\x33" + bytes(73),
                                                      content=text_message("again")),
    }
    seen = baileys_decode(ours)
    secret_b64 = base64.b64encode(secret).decode()
    assert seen["text"] == {"conversation": "hi ✓", "messageContextInfo": {"messageSecret": secret_b64}}
    assert seen["reply"] == {"extendedTextMessage": {"text": "yes", "contextInfo": {
        "stanzaId": "3EB0ORIGINAL", "participant": "4915550002@s.whatsapp.net",
        "quotedMessage": {"extendedTextMessage": {"text": "a reply"}},
        "mentionedJid": ["4915550002@s.whatsapp.net"]}}}
    assert seen["reaction"] == {"reactionMessage": {"key": {
        "remoteJid": "120363000000000001@g.us", "fromMe": False, "id": "3EB0X",
        "participant": "4915550002@s.whatsapp.net"}, "text": "❤️", "senderTimestampMs": "1764800000123"}}
    assert seen["device_sent"] == {
        "deviceSentMessage": {"destinationJid": "4915550001@s.whatsapp.net", "message": {
            "conversation": "to you", "messageContextInfo": {"messageSecret": secret_b64}}},
        "messageContextInfo": {"messageSecret": secret_b64}}
    skdm = {"groupId": "120363000000000001@g.us",
            "axolotlSenderKeyDistributionMessage": base64.b64encode(b"\x33" + bytes(73)).decode()}
    assert seen["skdm"] == {"senderKeyDistributionMessage": skdm}
    assert seen["skdm_retry"] == {"conversation": "again", "senderKeyDistributionMessage": skdm}


def test_encoders_refuse_incomplete_input() -> None:
    with pytest.raises(MessageFormatError):
        reply_message("x", ReplyTarget(message_id="", participant="a@s.whatsapp.net"))
    with pytest.raises(MessageFormatError):
        reply_message("x", ReplyTarget(message_id="Q", participant="a@s.whatsapp.net", message=b"\x0a\x09"))
    with pytest.raises(MessageFormatError):
        reaction_message(MessageRef(id=""), "x", 1)
    with pytest.raises(MessageFormatError):
        device_sent_message(text_message("x"), "")
    with pytest.raises(MessageFormatError):
        sender_key_distribution_message("", b"k")
    with pytest.raises(MessageFormatError):
        text_message("x", message_secret=b"short")


@given(st.one_of(st.text(max_size=20), st.sampled_from(["\ud800", "a\udfffb"])), st.integers(-(2**70), 2**70))
def test_builders_raise_only_message_format_error(text: str, number: int) -> None:
    builders = [
        lambda: text_message(text),
        lambda: reply_message(text, ReplyTarget(message_id=text or "Q", participant="a@s.whatsapp.net")),
        lambda: reaction_message(MessageRef(id=text or "X", remote_jid=text), text, number),
        lambda: device_sent_message(text_message("x"), text),
        lambda: sender_key_distribution_message(text, b"k"),
    ]
    for build in builders:
        with contextlib.suppress(MessageFormatError):
            decode_message(build())


@given(st.text(max_size=200), st.integers(0, 255))
def test_text_round_trips_through_padding(text: str, seed: int) -> None:
    plaintext = pad(text_message(text), SeededRandom(bytes([seed])))
    decoded = decode_message(unpad(plaintext))
    assert (decoded.content.kind, decoded.text) == (ContentKind.TEXT, text)


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=20), st.text(max_size=40))
def test_reply_and_reaction_round_trip(message_id: str, emoji: str, text: str) -> None:
    target = MessageRef(id=message_id, remote_jid="1@s.whatsapp.net", from_me=True)
    reaction = decode_message(reaction_message(target, emoji, 7)).content.reaction
    assert reaction is not None
    assert (reaction.target, reaction.emoji, reaction.sender_timestamp_ms) == (target, emoji, 7)
    reply = decode_message(reply_message(text, ReplyTarget(message_id=message_id, participant="2@s.whatsapp.net",
                                                           message=text_message("q")))).content
    assert reply.quote is not None and reply.quote.content is not None
    assert (reply.text, reply.quote.message_id, reply.quote.content.text) == (text, message_id, "q")


def test_device_sent_wrapper_unwraps_to_the_original() -> None:
    original = reply_message("r", ReplyTarget(message_id="Q", participant="2@s.whatsapp.net"))
    decoded = decode_message(device_sent_message(original, "1@s.whatsapp.net", phash="2:abcdefgh"))
    assert decoded.device_sent is not None
    assert (decoded.device_sent.destination_jid, decoded.device_sent.phash) == ("1@s.whatsapp.net", "2:abcdefgh")
    assert decoded.content == decode_message(original).content
