// A reference Signal peer for the interop tests: Baileys 7's Signal layer (libsignal 6.0.0 plus
// Baileys' group cipher) over a useMultiFileAuthState folder, driven over stdin/stdout with one JSON
// object per line. Each request {"op", ...} gets one reply {"ok": true, ...} or {"ok": false, "error"}.
// Binary values travel as base64.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { makeLibSignalRepository } from 'baileys7/lib/Signal/libsignal.js';
import { useMultiFileAuthState } from 'baileys7/lib/Utils/use-multi-file-auth-state.js';
import { addTransactionCapability } from 'baileys7/lib/Utils/auth-utils.js';
import { Curve, generateSignalPubKey } from 'baileys7/lib/Utils/crypto.js';
import * as curve from 'libsignal/src/curve.js';

// libsignal logs with console.*; stdout carries only the replies.
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
    console[name] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n');
}
const require = createRequire(import.meta.url);
const quiet = { level: 'silent', trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {},
                child() { return quiet; } };
const b64 = (buf) => Buffer.from(buf).toString('base64');
const bin = (text) => Buffer.from(text, 'base64');

let folder = null;
let auth = null;
let saveCreds = null;
let repo = null;
let nextPreKeyId = 1000;
let version = 7;

async function open(path) {
    folder = path;
    if (version === 6) {  // Baileys 6.17.16 (CommonJS): its Signal layer, its folder format
        const { makeLibSignalRepository: make6 } = require('baileys6/lib/Signal/libsignal.js');
        const { useMultiFileAuthState: use6 } = require('baileys6/lib/Utils/use-multi-file-auth-state.js');
        const state = await use6(folder);
        saveCreds = state.saveCreds;
        auth = state.state;
        repo = make6(auth);
    } else {
        const state = await useMultiFileAuthState(folder);
        saveCreds = state.saveCreds;
        const keys = addTransactionCapability(state.state.keys, quiet, { maxCommitRetries: 1, delayBetweenTriesMs: 1 });
        auth = { creds: state.state.creds, keys };
        repo = makeLibSignalRepository(auth, quiet);
    }
    await saveCreds();
    for (const name of readdirSync(folder)) {
        const match = /^pre-key-(\d+)\.json$/.exec(name);
        if (match) nextPreKeyId = Math.max(nextPreKeyId, Number(match[1]) + 1);
    }
}

const ops = {
    async init({ folder: path, baileys = 7 }) {
        version = baileys;
        await open(path);
        return { identity: b64(auth.creds.signedIdentityKey.public), registrationId: auth.creds.registrationId };
    },
    async reload() {
        await open(folder);
        return {};
    },
    async bundle({ preKey = true }) {
        const { creds } = auth;
        const out = {
            registrationId: creds.registrationId,
            identityKey: b64(creds.signedIdentityKey.public),
            signedPreKey: { keyId: creds.signedPreKey.keyId, publicKey: b64(creds.signedPreKey.keyPair.public),
                            signature: b64(creds.signedPreKey.signature) },
        };
        if (preKey) {
            const keyId = nextPreKeyId++;
            const pair = Curve.generateKeyPair();
            await auth.keys.set({ 'pre-key': { [keyId]: pair } });
            out.preKey = { keyId, publicKey: b64(pair.public) };
        }
        return out;
    },
    async inject({ jid, bundle }) {
        // What Baileys' parseAndInjectE2ESessions hands libsignal: 33-byte keys.
        const session = {
            registrationId: bundle.registrationId,
            identityKey: generateSignalPubKey(bin(bundle.identityKey)),
            signedPreKey: { keyId: bundle.signedPreKey.keyId, publicKey: generateSignalPubKey(bin(bundle.signedPreKey.publicKey)),
                            signature: bin(bundle.signedPreKey.signature) },
        };
        if (bundle.preKey) {
            session.preKey = { keyId: bundle.preKey.keyId, publicKey: generateSignalPubKey(bin(bundle.preKey.publicKey)) };
        }
        await repo.injectE2ESession({ jid, session });
        return {};
    },
    async encrypt({ jid, data }) {
        const { type, ciphertext } = await repo.encryptMessage({ jid, data: bin(data) });
        return { type, data: b64(ciphertext) };
    },
    async decrypt({ jid, type, data }) {
        const plaintext = await repo.decryptMessage({ jid, type, ciphertext: bin(data) });
        return { data: b64(plaintext) };
    },
    async group_encrypt({ group, me, data }) {
        const { ciphertext, senderKeyDistributionMessage } = await repo.encryptGroupMessage({ group, meId: me, data: bin(data) });
        return { data: b64(ciphertext), skdm: b64(senderKeyDistributionMessage) };
    },
    async process_skdm({ group, author, skdm }) {
        await repo.processSenderKeyDistributionMessage({
            item: { groupId: group, axolotlSenderKeyDistributionMessage: bin(skdm) }, authorJid: author });
        return {};
    },
    async group_decrypt({ group, author, data }) {
        const plaintext = await repo.decryptGroupMessage({ group, authorJid: author, msg: bin(data) });
        return { data: b64(plaintext) };
    },
    async sign({ data }) {
        return { signature: b64(curve.calculateSignature(auth.creds.signedIdentityKey.private, bin(data))) };
    },
    async verify({ publicKey, data, signature }) {
        try {
            return { valid: curve.verifySignature(generateSignalPubKey(bin(publicKey)), bin(data), bin(signature)) };
        } catch (e) {
            return { valid: false };
        }
    },
    async lid_mapping({ lid, pn }) {
        await repo.lidMapping.storeLIDPNMappings([{ lid, pn }]);
        return {};
    },
    async has_session({ jid }) {
        return { exists: (await repo.validateSession(jid)).exists };
    },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
    if (!line.trim()) continue;
    let reply;
    try {
        const request = JSON.parse(line);
        const op = ops[request.op];
        if (!op) throw new Error(`unknown op ${request.op}`);
        reply = { ok: true, ...(await op(request)) };
    } catch (e) {
        reply = { ok: false, error: String(e && e.message || e) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
}
