// Calls the keeper callables through the real Firebase JS SDK, as the frontend does.
// Usage: node callables.mjs <project> <authHost:port> <functionsHost> <functionsPort> <region> <phone>
// Prints one JSON line: {uid, added, listed, badError, unauthError}.
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously, signOut } from "firebase/auth";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const [project, authHost, functionsHost, functionsPort, region, phone] = process.argv.slice(2);
const app = initializeApp({ projectId: project, apiKey: "demo-api-key", authDomain: `${project}.firebaseapp.com` });
const auth = getAuth(app);
connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
const functions = getFunctions(app, region);
connectFunctionsEmulator(functions, functionsHost, Number(functionsPort));

async function failure(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return { code: err.code, message: err.message };
  }
}

const credential = await signInAnonymously(auth);
const added = await httpsCallable(functions, "addAccount")({ phoneNumber: phone, method: "code" });
const listed = await httpsCallable(functions, "listAccounts")();
const badError = await failure(httpsCallable(functions, "addAccount")({ phoneNumber: "07000", method: "code" }));
await signOut(auth);
const unauthError = await failure(httpsCallable(functions, "listAccounts")());
console.log(JSON.stringify({ uid: credential.user.uid, added: added.data, listed: listed.data, badError, unauthError }));
process.exit(0);
