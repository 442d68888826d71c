// Encodes WhatsApp Messages with Baileys 7's own schema (WAProto, protobufjs) for keeper's decoder tests.
// Usage: node wamessage_corpus.mjs          -> one JSON line per message: {name, b64, json}
//        node wamessage_corpus.mjs decode   -> reads {name, b64} lines on stdin, prints {name, json}
// `json` is protobufjs' toJSON of the decoded Message: the shape Baileys users see.
import { createInterface } from "node:readline";
import { proto } from "baileys7/WAProto/index.js";

const bytes = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const key = { remoteJid: "4915550001@s.whatsapp.net", fromMe: false, id: "3EB0AABBCCDDEEFF001122" };
const context = {
  stanzaId: "3EB0QUOTED0000000001", participant: "4915550002@s.whatsapp.net",
  quotedMessage: { conversation: "the quoted text" }, mentionedJid: ["4915550003@s.whatsapp.net"],
  expiration: 604800,
};
const media = (extra) => ({
  url: "https://mmg.whatsapp.net/v/t62.7118-24/abc.enc", mimetype: "image/jpeg", fileSha256: bytes(32, 1),
  fileLength: 123456, mediaKey: bytes(32, 2), fileEncSha256: bytes(32, 3), directPath: "/v/t62.7118-24/abc.enc",
  mediaKeyTimestamp: 1764800000, ...extra,
});

const corpus = {
  text: { conversation: "hello from Baileys ✓" },
  extended_reply: { extendedTextMessage: { text: "a reply", contextInfo: context } },
  image: { imageMessage: media({ caption: "a caption", width: 640, height: 480, jpegThumbnail: bytes(40, 4) }) },
  video: { videoMessage: media({ mimetype: "video/mp4", seconds: 12, caption: "clip", gifPlayback: true }) },
  ptv: { ptvMessage: media({ mimetype: "video/mp4", seconds: 5 }) },
  voice_note: { audioMessage: { ...media({ mimetype: "audio/ogg; codecs=opus" }), seconds: 7, ptt: true,
    fileSha256: bytes(32, 5), fileEncSha256: bytes(32, 6) } },
  document: { documentMessage: media({ mimetype: "application/pdf", fileName: "report.pdf", pageCount: 3,
    caption: "the report", contextInfo: context }) },
  sticker: { stickerMessage: { ...media({ mimetype: "image/webp" }), isAnimated: true, width: 512, height: 512 } },
  location: { locationMessage: { degreesLatitude: 52.52, degreesLongitude: 13.405, name: "Berlin",
    address: "Mitte" } },
  contact: { contactMessage: { displayName: "Ada", vcard: "BEGIN:VCARD\nVERSION:3.0\nFN:Ada\nEND:VCARD" } },
  reaction: { reactionMessage: { key, text: "👍", senderTimestampMs: 1764800000123 } },
  reaction_removed: { reactionMessage: { key: { ...key, fromMe: true }, text: "", senderTimestampMs: 1764800000999 } },
  revoke: { protocolMessage: { key: { ...key, fromMe: true }, type: 0 } },
  edit: { protocolMessage: { key: { ...key, fromMe: true }, type: 14,
    editedMessage: { conversation: "the edited text" }, timestampMs: 1764800001000 } },
  edit_wrapped: { editedMessage: { message: { protocolMessage: { key, type: 14,
    editedMessage: { extendedTextMessage: { text: "edited again" } } } } } },
  ephemeral_setting: { protocolMessage: { type: 3, ephemeralExpiration: 86400,
    ephemeralSettingTimestamp: 1764800000 } },
  ephemeral_off: { protocolMessage: { type: 3, ephemeralExpiration: 0 } },
  app_state_key_share: { protocolMessage: { type: 6, appStateSyncKeyShare: { keys: [
    { keyId: { keyId: bytes(6, 7) }, keyData: { keyData: bytes(32, 8), timestamp: 1764800000000,
      fingerprint: { rawId: 12345, currentIndex: 2, deviceIndexes: [0, 2] } } },
    { keyId: { keyId: bytes(6, 9) }, keyData: { keyData: bytes(32, 10) } }] } } },
  history_sync_notification: { protocolMessage: { type: 5 } },
  skdm_only: { senderKeyDistributionMessage: { groupId: "120363000000000001@g.us",
    axolotlSenderKeyDistributionMessage: bytes(74, 11) } },
  skdm_with_text: { senderKeyDistributionMessage: { groupId: "120363000000000001@g.us",
    axolotlSenderKeyDistributionMessage: bytes(74, 12) }, conversation: "first group message" },
  device_sent: { deviceSentMessage: { destinationJid: "4915550001@s.whatsapp.net",
    message: { extendedTextMessage: { text: "sent from my phone" }, messageContextInfo: { messageSecret: bytes(32, 13) } } },
    messageContextInfo: { messageSecret: bytes(32, 13) } },
  ephemeral_text: { ephemeralMessage: { message: { extendedTextMessage: { text: "disappearing",
    contextInfo: { expiration: 86400 } } } } },
  view_once_image: { viewOnceMessageV2: { message: { imageMessage: media({ viewOnce: true }) } } },
  document_with_caption: { documentWithCaptionMessage: { message: { documentMessage: media({
    mimetype: "application/pdf", fileName: "a.pdf", caption: "see attached" }) } } },
  forwarded: { extendedTextMessage: { text: "fwd", contextInfo: { isForwarded: true, forwardingScore: 2 } } },
  context_info_only: { messageContextInfo: { deviceListMetadata: { senderKeyHash: bytes(10, 14),
    senderTimestamp: 1764800000, recipientKeyHash: bytes(10, 15), recipientTimestamp: 1764800001 },
    deviceListMetadataVersion: 2, messageSecret: bytes(32, 16) } },
};

if (process.argv[2] === "decode") {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const { name, b64 } = JSON.parse(line);
    const message = proto.Message.decode(Buffer.from(b64, "base64"));
    console.log(JSON.stringify({ name, json: message.toJSON() }));
  }
} else {
  for (const [name, object] of Object.entries(corpus)) {
    const message = proto.Message.fromObject(object);
    const encoded = Buffer.from(proto.Message.encode(message).finish());
    const json = proto.Message.decode(encoded).toJSON();
    console.log(JSON.stringify({ name, b64: encoded.toString("base64"), json }));
  }
}
