// Runs Baileys clients (6.17.16 as `baileys6`, 7.0.0-rc14 as `baileys7`, from the root package.json)
// against a WhatsApp Web server, several at once in this one process.
//
//   node simulator/interop/baileys_driver.mjs <ws-url> <root-key-hex>
//
// Commands arrive on stdin, one JSON object a line:
//   {"cmd": "start", "id": "c1", "baileys": 6 | 7, "method": "qr" | "code", "phone": "40700000001",
//    "keepAliveMs"?: 30000}
//   {"cmd": "ping", "id": "c1"}          a w:p ping iq (what Baileys' keepalive sends), answered by "pong"
//   {"cmd": "stop", "id": "c1"}          ends that client (no logout)
//   {"cmd": "exit"}                      ends every client, then the process
// Events leave on stdout, one JSON object a line, each with the client's "id":
//   {"event": "qr", "qr"} | {"event": "code", "code"} | {"event": "paired", "jid"} (once: pair-success handled)
//   {"event": "open", "jid", "lid", "socket": n} | {"event": "close", "code", "socket": n}
//   {"event": "pong"} | {"event": "stopped"} | {"event": "error", "message"}
// A client restarts on its own after a close with 515 (restart required), as a Baileys user does;
// any other close ends it. Auth state is in memory, one per client.
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
const clients = new Map()

function memoryAuthState (lib) {
  const creds = lib.initAuthCreds()
  const keys = new Map()
  return {
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
  }
}

function startClient ({ id, baileys, method, phone, keepAliveMs }) {
  const lib = libraries[baileys]
  if (!lib) throw new Error(`no Baileys ${baileys}`)
  if (method !== 'qr' && method !== 'code') throw new Error(`unknown method ${method}`)
  if (clients.has(id)) throw new Error(`client ${id} exists`)
  const client = {
    id, lib, method, phone, keepAliveMs, auth: memoryAuthState(lib), sock: null, sockets: 0, stopped: false, paired: false
  }
  clients.set(id, client)
  connect(client)
}

function connect (client) {
  const { id, lib } = client
  const number = ++client.sockets
  let codeRequested = false
  const sock = lib.makeWASocket({
    auth: client.auth,
    waWebSocketUrl: url,
    logger: logger.child({ client: id, socket: number }),
    printQRInTerminal: false,
    markOnlineOnConnect: false,
    syncFullHistory: false,
    qrTimeout: 60000,
    ...(client.keepAliveMs ? { keepAliveIntervalMs: client.keepAliveMs } : {})
  })
  client.sock = sock
  sock.ev.on('creds.update', (update) => {
    if (!client.paired && update.me?.id && update.account) {
      client.paired = true
      say({ id, event: 'paired', jid: update.me.id })
    }
  })
  sock.ev.on('connection.update', async (update) => {
    if (update.qr && !client.auth.creds.registered) {
      if (client.method === 'qr') {
        say({ id, event: 'qr', qr: update.qr })
      } else if (!codeRequested) {
        codeRequested = true
        try {
          say({ id, event: 'code', code: await sock.requestPairingCode(client.phone) })
        } catch (err) {
          say({ id, event: 'error', message: `requestPairingCode: ${err.message}` })
        }
      }
    }
    if (update.connection === 'open') {
      say({ id, event: 'open', jid: sock.user?.id, lid: sock.user?.lid, socket: number })
    }
    if (update.connection === 'close') {
      const code = update.lastDisconnect?.error?.output?.statusCode ?? null
      say({ id, event: 'close', code, socket: number })
      if (code === 515 && !client.stopped) connect(client)
      else if (!client.stopped) finish(client)
    }
  })
}

function finish (client) {
  client.stopped = true
  clients.delete(client.id)
  say({ id: client.id, event: 'stopped' })
}

async function ping (id) {
  const client = clients.get(id)
  if (!client?.sock) throw new Error(`no client ${id}`)
  const { sock, lib } = client
  await sock.query({
    tag: 'iq',
    attrs: { id: sock.generateMessageTag(), to: lib.S_WHATSAPP_NET, type: 'get', xmlns: 'w:p' },
    content: [{ tag: 'ping', attrs: {} }]
  })
  say({ id, event: 'pong' })
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

const input = readline.createInterface({ input: process.stdin })
input.on('line', (line) => {
  let command
  try {
    command = JSON.parse(line)
    if (command.cmd === 'start') startClient(command)
    else if (command.cmd === 'ping') {
      ping(command.id).catch((err) => say({ id: command.id, event: 'error', message: `ping: ${err.message}` }))
    } else if (command.cmd === 'stop') stopClient(command.id)
    else if (command.cmd === 'exit') {
      for (const id of [...clients.keys()]) stopClient(id)
      process.exit(0)
    } else throw new Error(`unknown command ${command.cmd}`)
  } catch (err) {
    say({ id: command?.id ?? null, event: 'error', message: err.message })
  }
})
input.on('close', () => process.exit(0))
say({ id: null, event: 'ready' })
