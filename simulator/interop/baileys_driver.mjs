// Runs Baileys clients (6.17.16 as `baileys6`, 7.0.0-rc14 as `baileys7`, from the root package.json)
// against a WhatsApp Web server, several at once in this one process: pairing, login, keepalive and
// messaging (1:1, groups, receipts), each client with its own auth state and socket.
//
//   node simulator/interop/baileys_driver.mjs <ws-url> <root-key-hex>
//
// Commands arrive on stdin, one JSON object a line, each naming its client by "id"; a command with a
// "ref" is answered by one event with that "ref" ("result", "sent", "pong" or "error"):
//   {"cmd": "start", "id", "baileys": 6 | 7, "method": "qr" | "code", "phone"?, "keepAliveMs"?, "authDir"?}
//        authDir: a folder for the auth state (kept across a stop and a new start); else it is in memory
//   {"cmd": "ping", "id"}                     a w:p ping iq (what Baileys' keepalive sends): "pong"
//   {"cmd": "send", "id", "to", "text"}       a text message: "sent" with its key
//   {"cmd": "read", "id", "keys"}             read receipts for those message keys
//   {"cmd": "group_create", "id", "subject", "participants"}      "result" with "group"
//   {"cmd": "group_metadata", "id", "jid"}                        "result" with "group"
//   {"cmd": "group_participants", "id", "jid", "participants", "action"}   "result" with "results"
//   {"cmd": "stop", "id"}                     ends that client (no logout): "stopped"
//   {"cmd": "exit"}                           ends every client, then the process
// Events leave on stdout, one JSON object a line, each with the client's "id":
//   {"event": "qr", "qr"} | {"event": "code", "code"} | {"event": "paired", "jid"} (once: pair-success handled)
//   {"event": "open", "jid", "lid", "socket": n} | {"event": "close", "code", "socket": n}
//   {"event": "message", "type", "key", "text", "stub", "stubParameters"} | {"event": "update", "key", "status"}
//   {"event": "receipt", "key", "receipt"} | {"event": "group", "group", "subject"}
//   {"event": "group_participants", "group", "action", "participants"}
//   {"event": "stopped"} | {"event": "error", "message"}
// A client restarts on its own after a close with 515 (restart required), as a Baileys user does;
// any other close ends it. Nothing is said for a client after its "stopped".
import { createRequire } from 'node:module'
import readline from 'node:readline'
import pino from 'pino'

const require = createRequire(import.meta.url)
const [url, rootKeyHex] = process.argv.slice(2)
if (!url || !rootKeyHex) {
  process.stderr.write('usage: baileys_driver.mjs <ws-url> <root-key-hex>\n')
  process.exit(2)
}

const libraries = {
  6: require('baileys6'),
  7: await import('baileys7')
}
// Trust the simulator's root key instead of WhatsApp's (Baileys 6 checks only the issuer serial).
for (const lib of Object.values(libraries)) {
  if (lib.WA_CERT_DETAILS.PUBLIC_KEY) lib.WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootKeyHex, 'hex')
}

const logger = pino({ level: process.env.BAILEYS_LOG_LEVEL || 'silent' }, pino.destination(2))
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')
// libsignal logs to the console: keep stdout for events alone
console.log = console.info = console.warn = console.debug =
  (...args) => process.stderr.write(args.map(String).join(' ') + '\n')
const textOf = (message) => message?.conversation ?? message?.extendedTextMessage?.text ?? null
const clients = new Map()

function memoryAuthState (lib) {
  const creds = lib.initAuthCreds()
  const keys = new Map()
  return {
    state: {
      creds,
      keys: {
        get: async (type, ids) => {
          const found = {}
          for (const id of ids) {
            const value = keys.get(`${type}/${id}`)
            if (value !== undefined) found[id] = value
          }
          return found
        },
        set: async (data) => {
          for (const [type, entries] of Object.entries(data)) {
            for (const [id, value] of Object.entries(entries)) {
              if (value === null || value === undefined) keys.delete(`${type}/${id}`)
              else keys.set(`${type}/${id}`, value)
            }
          }
        }
      }
    },
    saveCreds: async () => {}
  }
}

async function startClient ({ id, baileys, method, phone, keepAliveMs, authDir }) {
  const lib = libraries[baileys]
  if (!lib) throw new Error(`no Baileys ${baileys}`)
  if (method !== 'qr' && method !== 'code') throw new Error(`unknown method ${method}`)
  if (clients.has(id)) throw new Error(`client ${id} exists`)
  const client = { id, lib, method, phone, keepAliveMs, sock: null, sockets: 0, stopped: false, paired: false }
  clients.set(id, client)
  const { state, saveCreds } = authDir ? await lib.useMultiFileAuthState(authDir) : memoryAuthState(lib)
  client.auth = state
  client.saveCreds = saveCreds
  if (!client.stopped) connect(client)
}

function connect (client) {
  const { id, lib } = client
  const number = ++client.sockets
  const tell = (event) => { if (!client.stopped) say({ id, ...event }) }
  let codeRequested = false
  const sock = lib.makeWASocket({
    auth: client.auth,
    waWebSocketUrl: url,
    logger: logger.child({ client: id, socket: number }),
    printQRInTerminal: false,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    shouldSyncHistoryMessage: () => false, // no history sync comes: do not buffer events 20 s waiting for one
    fireInitQueries: false,
    retryRequestDelayMs: 50,
    qrTimeout: 60000,
    ...(client.keepAliveMs ? { keepAliveIntervalMs: client.keepAliveMs } : {})
  })
  client.sock = sock
  sock.ev.on('creds.update', (update) => {
    client.saveCreds()
    if (!client.paired && update.me?.id && update.account) {
      client.paired = true
      tell({ event: 'paired', jid: update.me.id })
    }
  })
  sock.ev.on('connection.update', async (update) => {
    if (update.qr && !client.auth.creds.registered) {
      if (client.method === 'qr') {
        tell({ event: 'qr', qr: update.qr })
      } else if (!codeRequested) {
        codeRequested = true
        try {
          tell({ event: 'code', code: await sock.requestPairingCode(client.phone) })
        } catch (err) {
          tell({ event: 'error', message: `requestPairingCode: ${err.message}` })
        }
      }
    }
    if (update.connection === 'open') {
      tell({ event: 'open', jid: sock.user?.id, lid: sock.user?.lid, socket: number })
    }
    if (update.connection === 'close') {
      const code = update.lastDisconnect?.error?.output?.statusCode ?? null
      tell({ event: 'close', code, socket: number })
      if (code === 515 && !client.stopped) connect(client)
      else if (!client.stopped) finish(client)
    }
  })
  sock.ev.on('messages.upsert', ({ messages, type }) => {
    for (const m of messages) {
      tell({
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
    for (const { key, update } of updates) tell({ event: 'update', key, status: update.status ?? null })
  })
  sock.ev.on('message-receipt.update', (updates) => {
    for (const { key, receipt } of updates) tell({ event: 'receipt', key, receipt })
  })
  sock.ev.on('groups.upsert', (groups) => {
    for (const group of groups) tell({ event: 'group', group: group.id, subject: group.subject })
  })
  sock.ev.on('group-participants.update', ({ id: group, action, participants }) => {
    tell({
      event: 'group_participants', group, action, participants: participants.map((p) => p.phoneNumber ?? p.id ?? p)
    })
  })
}

function finish (client) {
  client.stopped = true
  if (clients.get(client.id) === client) clients.delete(client.id)
  say({ id: client.id, event: 'stopped' })
}

function stopClient (id) {
  const client = clients.get(id)
  if (!client) return
  client.stopped = true
  try {
    client.sock?.end(undefined)
  } catch {}
  finish(client)
}

// What each command does once its client is up; the value is what the answer carries.
const operations = {
  ping: async ({ sock, lib }) => {
    await sock.query({
      tag: 'iq',
      attrs: { id: sock.generateMessageTag(), to: lib.S_WHATSAPP_NET, type: 'get', xmlns: 'w:p' },
      content: [{ tag: 'ping', attrs: {} }]
    })
    return { event: 'pong' }
  },
  send: async ({ sock }, { to, text }) => ({ event: 'sent', key: (await sock.sendMessage(to, { text })).key }),
  read: async ({ sock }, { keys }) => { await sock.readMessages(keys); return { event: 'result' } },
  group_create: async ({ sock }, { subject, participants }) =>
    ({ event: 'result', group: await sock.groupCreate(subject, participants) }),
  group_metadata: async ({ sock }, { jid }) => ({ event: 'result', group: await sock.groupMetadata(jid) }),
  group_participants: async ({ sock }, { jid, participants, action }) =>
    ({ event: 'result', results: await sock.groupParticipantsUpdate(jid, participants, action) })
}

async function run (command) {
  const { cmd, id, ref } = command
  const answer = (event) => say({ id, ...(ref === undefined ? {} : { ref }), ...event })
  try {
    if (cmd === 'start') await startClient(command)
    else if (cmd === 'stop') stopClient(id)
    else if (cmd === 'exit') {
      for (const client of [...clients.keys()]) stopClient(client)
      process.exit(0)
    } else if (operations[cmd]) {
      const client = clients.get(id)
      if (!client?.sock) throw new Error(`no client ${id}`)
      answer(await operations[cmd](client, command))
    } else throw new Error(`unknown command ${cmd}`)
  } catch (err) {
    answer({ event: 'error', message: `${cmd}: ${err?.message ?? err}` })
  }
}

const input = readline.createInterface({ input: process.stdin })
input.on('line', (line) => {
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    say({ id: null, event: 'error', message: `not JSON: ${err.message}` })
    return
  }
  run(command)
})
input.on('close', () => process.exit(0))
say({ id: null, event: 'ready' })
