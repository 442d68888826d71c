// The libsignal-node half of bench/signal_cipher.py: the same operations on Baileys 7's Signal layer
// (libsignal 6.0.0 plus Baileys' group cipher) over in-memory key stores, CPU per operation.
// Usage: node bench/signal_node.mjs N   -> one JSON line of figures on stdout.
import { makeLibSignalRepository } from 'baileys7/lib/Signal/libsignal.js';
import { addTransactionCapability } from 'baileys7/lib/Utils/auth-utils.js';
import { initAuthCreds } from 'baileys7/lib/Utils/auth-utils.js';
import { Curve, generateSignalPubKey } from 'baileys7/lib/Utils/crypto.js';

for (const name of ['log', 'info', 'warn', 'error', 'debug']) console[name] = () => {};
const quiet = { level: 'silent', trace() {}, debug() {}, info() {}, warn() {}, error() {}, child() { return quiet; } };

function memoryKeys() {
    const data = {};
    return {
        data,
        async get(type, ids) {
            const out = {};
            for (const id of ids) if (data[type]?.[id] !== undefined) out[id] = data[type][id];
            return out;
        },
        async set(update) {
            for (const [type, entries] of Object.entries(update)) {
                data[type] = data[type] || {};
                for (const [id, value] of Object.entries(entries)) {
                    if (value === null) delete data[type][id]; else data[type][id] = value;
                }
            }
        },
    };
}

function party(jid) {
    const creds = initAuthCreds();
    const raw = memoryKeys();
    const keys = addTransactionCapability(raw, quiet, { maxCommitRetries: 1, delayBetweenTriesMs: 1 });
    return { jid, creds, raw, repo: makeLibSignalRepository({ creds, keys }, quiet) };
}

let nextPreKey = 1;
async function bundleOf(p) {
    const pair = Curve.generateKeyPair();
    const keyId = nextPreKey++;
    await p.raw.set({ 'pre-key': { [keyId]: pair } });
    return {
        registrationId: p.creds.registrationId,
        identityKey: generateSignalPubKey(p.creds.signedIdentityKey.public),
        signedPreKey: { keyId: p.creds.signedPreKey.keyId, publicKey: generateSignalPubKey(p.creds.signedPreKey.keyPair.public),
                        signature: p.creds.signedPreKey.signature },
        preKey: { keyId, publicKey: generateSignalPubKey(pair.public) },
    };
}

function cpuMs() {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
}

async function timed(items, fn) {
    const start = cpuMs();
    for (const item of items) await fn(item);
    return (cpuMs() - start) / items.length;
}

const n = Number(process.argv[2] || 1000);
const alice = party('4915550001@s.whatsapp.net');
const bob = party('4915550002@s.whatsapp.net');
await alice.repo.injectE2ESession({ jid: bob.jid, session: await bundleOf(bob) });
const first = await alice.repo.encryptMessage({ jid: bob.jid, data: Buffer.from('hello') });
await bob.repo.decryptMessage({ jid: alice.jid, type: first.type, ciphertext: first.ciphertext });
const reply = await bob.repo.encryptMessage({ jid: alice.jid, data: Buffer.from('hi') });
await alice.repo.decryptMessage({ jid: bob.jid, type: reply.type, ciphertext: reply.ciphertext });

const text = Buffer.alloc(64, 7);
const sent = [];
const encrypt = await timed(Array.from({ length: n }), async () => {
    sent.push(await alice.repo.encryptMessage({ jid: bob.jid, data: text }));
});
const msg = await timed(sent, (m) => bob.repo.decryptMessage({ jid: alice.jid, type: m.type, ciphertext: m.ciphertext }));

const alternating = [];
for (let i = 0; i < Math.min(n, 200); i++) alternating.push(i);
let ratchet = 0;
for (const i of alternating) {  // each message answers the other side's: a ratchet step per decrypt
    const [from, to] = i % 2 ? [alice, bob] : [bob, alice];
    const m = await from.repo.encryptMessage({ jid: to.jid, data: text });
    const start = cpuMs();
    await to.repo.decryptMessage({ jid: from.jid, type: m.type, ciphertext: m.ciphertext });
    ratchet += cpuMs() - start;
}
ratchet /= alternating.length;

const pkCount = Math.min(n, 200);
const pkmsgs = [];
for (let i = 0; i < pkCount; i++) {
    const sender = party(`49160000${String(i).padStart(4, '0')}@s.whatsapp.net`);
    await sender.repo.injectE2ESession({ jid: bob.jid, session: await bundleOf(bob) });
    pkmsgs.push([sender.jid, await sender.repo.encryptMessage({ jid: bob.jid, data: text })]);
}
const pkmsg = await timed(pkmsgs, ([jid, m]) => bob.repo.decryptMessage({ jid, type: m.type, ciphertext: m.ciphertext }));

const group = '120363000000000001@g.us';
const skmsgs = [];
let skdm = null;
const groupEncrypt = await timed(Array.from({ length: n }), async () => {
    const out = await alice.repo.encryptGroupMessage({ group, meId: alice.jid, data: text });
    skdm = skdm || out.senderKeyDistributionMessage;
    skmsgs.push(out.ciphertext);
});
await bob.repo.processSenderKeyDistributionMessage({ item: { groupId: group, axolotlSenderKeyDistributionMessage: skdm }, authorJid: alice.jid });
const skmsg = await timed(skmsgs, (c) => bob.repo.decryptGroupMessage({ group, authorJid: alice.jid, msg: c }));

// Session record growth: bytes of the stored JSON after pairing and after 1,000 alternating messages.
async function pairUp(a, b) {
    await a.repo.injectE2ESession({ jid: b.jid, session: await bundleOf(b) });
    const m1 = await a.repo.encryptMessage({ jid: b.jid, data: text });
    await b.repo.decryptMessage({ jid: a.jid, type: m1.type, ciphertext: m1.ciphertext });
    const m2 = await b.repo.encryptMessage({ jid: a.jid, data: text });
    await a.repo.decryptMessage({ jid: b.jid, type: m2.type, ciphertext: m2.ciphertext });
}
const c = party('4915550011@s.whatsapp.net');
const d = party('4915550012@s.whatsapp.net');
await pairUp(c, d);
const recordBytes = () => JSON.stringify(d.raw.data.session['4915550011.0']).length;
const growthStart = recordBytes();
for (let i = 0; i < 1000; i++) {
    const [from, to] = i % 2 ? [c, d] : [d, c];
    const m = await from.repo.encryptMessage({ jid: to.jid, data: text });
    await to.repo.decryptMessage({ jid: from.jid, type: m.type, ciphertext: m.ciphertext });
}
const growthAlternating = recordBytes() - growthStart;

process.stdout.write(JSON.stringify({ encrypt, msg, ratchet, pkmsg, skmsg, groupEncrypt, growthStart, growthAlternating }) + '\n');
