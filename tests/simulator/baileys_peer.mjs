// One Baileys 7 client, driven by a test over stdin/stdout JSON lines.
//
//   node baileys_peer.mjs <ws-url> <root-key-hex> <auth-dir>
//
// It trusts the given root key instead of WhatsApp's (as it would trust WhatsApp's), pairs by QR when
// the auth folder is new, and reconnects after the 515 that ends pairing.
// Events out (one JSON object a line): ready, qr, open, close, message, update, receipt, group,
// group_participants, sent, result, error.
// Commands in: {"op": "send", "to", "text", "ref"}, {"op": "read", "keys", "ref"},
// {"op": "group_create", "subject", "participants", "ref"}, {"op": "group_metadata", "jid", "ref"},
// {"op": "group_participants", "jid", "participants", "action", "ref"},
// {"op": "quit"}.
import readline from 'node:readline'
import makeWASocket, { Browsers, DisconnectReason, useMultiFileAuthState } from 'baileys7'
import { WA_CERT_DETAILS } from 'baileys7/lib/Defaults/index.js'
import pino from 'pino'

const [url, rootKeyHex, authDir] = process.argv.slice(2)
WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootKeyHex, 'hex')

const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')
// libsignal logs to the console: keep stdout for events alone
console.log = console.info = console.warn = (...args) => process.stderr.write(args.map(String).join(' ') + '\n')
const textOf = (message) => message?.conversation ?? message?.extendedTextMessage?.text ?? null
let sock = null
let stopping = false

async function start () {
  const { state, saveCreds } = await useMultiFileAuthState(authDir)
  sock = makeWASocket({
    auth: state,
    waWebSocketUrl: url,
    logger: pino({ level: process.env.BAILEYS_LOG_LEVEL || 'silent' }, pino.destination(2)),
    browser: Browsers.macOS('Chrome'),
    markOnlineOnConnect: false,
    syncFullHistory: false,
    shouldSyncHistoryMessage: () => false, // no history sync comes: do not buffer events 20 s waiting for one
    fireInitQueries: false,
    retryRequestDelayMs: 50
  })
  sock.ev.on('creds.update', saveCreds)
  sock.ev.on('connection.update', (update) => {
    if (update.qr) say({ event: 'qr', qr: update.qr })
    if (update.connection === 'open') say({ event: 'open', id: sock.user?.id, lid: sock.user?.lid })
    if (update.connection === 'close') {
      const code = update.lastDisconnect?.error?.output?.statusCode
      say({ event: 'close', code })
      if (code === DisconnectReason.restartRequired && !stopping) start()
      else if (!stopping) process.exit(0)
    }
  })
  sock.ev.on('messages.upsert', ({ messages, type }) => {
    for (const m of messages) {
      say({
        event: 'message',
        type,
        key: m.key,
        text: textOf(m.message),
        stub: m.messageStubType ?? null,
        stubParameters: m.messageStubParameters ?? null
      })
    }
  })
  sock.ev.on('messages.update', (updates) => {
    for (const { key, update } of updates) say({ event: 'update', key, status: update.status ?? null })
  })
  sock.ev.on('groups.upsert', (groups) => {
    for (const group of groups) say({ event: 'group', id: group.id, subject: group.subject })
  })
  sock.ev.on('group-participants.update', ({ id, action, participants }) => {
    say({ event: 'group_participants', id, action, participants: participants.map((p) => p.phoneNumber ?? p.id ?? p) })
  })
  sock.ev.on('message-receipt.update', (updates) => {
    for (const { key, receipt } of updates) say({ event: 'receipt', key, receipt })
  })
}

async function run (command) {
  const { op, ref } = command
  try {
    if (op === 'send') {
      const sent = await sock.sendMessage(command.to, { text: command.text })
      say({ event: 'sent', ref, key: sent.key })
    } else if (op === 'read') {
      await sock.readMessages(command.keys)
      say({ event: 'result', ref })
    } else if (op === 'group_create') {
      const group = await sock.groupCreate(command.subject, command.participants)
      say({ event: 'result', ref, group })
    } else if (op === 'group_participants') {
      say({ event: 'result', ref, results: await sock.groupParticipantsUpdate(command.jid, command.participants, command.action) })
    } else if (op === 'group_metadata') {
      say({ event: 'result', ref, group: await sock.groupMetadata(command.jid) })
    } else if (op === 'quit') {
      stopping = true
      sock.end(undefined)
      say({ event: 'result', ref })
      setTimeout(() => process.exit(0), 50)
    } else {
      say({ event: 'error', ref, message: `unknown op ${op}` })
    }
  } catch (err) {
    say({ event: 'error', ref, message: String(err?.message ?? err) })
  }
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim()) run(JSON.parse(line))
})
start().then(() => say({ event: 'ready' }))
