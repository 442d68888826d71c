// The frontend contract's example (docs/ARCHITECTURE.md, "Frontend contract"), run with the real Firebase JS SDK:
// listen to one chat's messages and its summary, send into it with sendMessage, watch the status move.
// Usage: node chat.mjs <project> <authHost:port> <firestoreHost:port> <functionsHost> <functionsPort> <region>
//                      <email> <password> <accountId> <chat> <othersAccountId>
// Prints JSON lines: {"step":"pending",...} once the sent message shows as pending (the test then reports it
// sent), and {"step":"done",...} once it shows as sent.
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInWithEmailAndPassword } from "firebase/auth";
import {
  collection, connectFirestoreEmulator, doc, getFirestore, onSnapshot, orderBy, query, terminate, where,
} from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const [project, authHost, firestoreHost, functionsHost, functionsPort, region, email, password, accountId, chat,
  othersAccountId] = process.argv.slice(2);
const app = initializeApp({ projectId: project, apiKey: "demo-api-key", authDomain: `${project}.firebaseapp.com` });
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
const db = getFirestore(app);
const [fsHost, fsPort] = firestoreHost.split(":");
connectFirestoreEmulator(db, fsHost, Number(fsPort));
const functions = getFunctions(app, region);
connectFunctionsEmulator(functions, functionsHost, Number(functionsPort));

const print = (obj) => console.log(JSON.stringify(obj));
let messageId = null; // set once sendMessage answers
let checks = null; // the extra checks below, once done
let reportedPending = false;
await signInWithEmailAndPassword(auth, email, password);

// --- the example -------------------------------------------------------------------------------
// One chat, oldest first (production needs the composite index in firestore.indexes.json).
const messages = query(collection(db, "accounts", accountId, "messages"), where("chat", "==", chat),
  orderBy("timestamp"));
let latest = [];
let summary = null;
const stopMessages = onSnapshot(messages, (snap) => {
  latest = snap.docs.map((d) => ({ id: d.id, fromMe: d.data().fromMe, text: d.data().text,
    status: d.data().status, at: d.data().timestamp.toMillis() }));
  check();
});
const stopChat = onSnapshot(doc(db, "accounts", accountId, "chats", chat), (snap) => {
  summary = snap.exists() ? { unreadCount: snap.data().unreadCount, lastMessage: snap.data().lastMessage } : null;
  check();
});
const sendMessage = httpsCallable(functions, "sendMessage");
const sent = await sendMessage({ accountId, to: chat, text: "hello from the web", clientMessageId: "web-1" });
messageId = sent.data.messageId;
// ------------------------------------------------------------------------------------------------

// Someone else's messages are closed to this user. Only the server's answer counts: a slow backend
// makes the SDK raise an empty snapshot from its cache first (fromCache), which says nothing.
const denied = await new Promise((resolve) => {
  const stop = onSnapshot(collection(db, "accounts", othersAccountId, "messages"), { includeMetadataChanges: true },
    (snap) => { if (!snap.metadata.fromCache) { stop(); resolve(null); } }, (err) => resolve(err.code));
});
const again = await sendMessage({ accountId, to: chat, text: "hello from the web", clientMessageId: "web-1" });
let badTo = null;
try {
  await sendMessage({ accountId, to: "not a number", text: "x" });
} catch (err) {
  badTo = { code: err.code, message: err.message, details: err.details };
}

checks = { denied, repeatedId: again.data.messageId, badTo };

function check() {
  if (messageId === null || checks === null) return;
  const mine = latest.find((m) => m.id === messageId);
  if (!mine) return;
  if (mine.status === "pending" && !reportedPending) {
    reportedPending = true;
    print({ step: "pending", messageId, messages: latest, summary });
  }
  if (mine.status === "sent" && summary && summary.lastMessage.status === "sent") {
    stopMessages();
    stopChat();
    const done = { step: "done", messageId, messages: latest, summary, ...checks };
    // close the listen streams cleanly before exiting (an abandoned stream delays the emulator's reset)
    terminate(db).finally(() => { print(done); process.exit(0); });
  }
}
check();
setTimeout(() => { print({ step: "timeout", messages: latest, summary }); process.exit(2); }, 60_000);
