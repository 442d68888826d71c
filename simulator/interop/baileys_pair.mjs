// Drives Baileys against a WhatsApp Web server: prints one JSON line per event.
import makeWASocket, { useMultiFileAuthState } from '@whiskeysockets/baileys'
import pino from 'pino'

const [url, authDir] = process.argv.slice(2)
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n')

async function start () {
  const { state, saveCreds } = await useMultiFileAuthState(authDir)
  const sock = makeWASocket({ auth: state, waWebSocketUrl: url, logger: pino({ level: 'silent' }), printQRInTerminal: false })
  sock.ev.on('creds.update', saveCreds)
  sock.ev.on('connection.update', (update) => {
    if (update.qr) say({ event: 'qr', qr: update.qr })
    if (update.connection === 'open') say({ event: 'open', id: sock.user?.id })
    if (update.connection === 'close') {
      const code = update.lastDisconnect?.error?.output?.statusCode
      say({ event: 'close', code })
      if (code === 515) start()
      else process.exit(0)
    }
  })
}
start()
