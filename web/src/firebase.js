// Connects the page to Firebase: the project's configuration comes from /__/firebase/init.json, which
// Firebase Hosting serves for the deployed site and `keeper web` serves locally. Only `keeper web` also
// serves /__/keeper/emulators.json: when it is there, Auth, Firestore and the functions go to the local
// emulators; when it is not (Hosting), to the real services.
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const DEFAULT_REGION = "us-central1";

async function fetchJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : null;
}

export async function connect() {
  const config = await fetchJson("/__/firebase/init.json");
  if (!config) {
    throw new Error("no Firebase configuration at /__/firebase/init.json: serve the page with Firebase "
      + "Hosting, or locally with `make up` / `keeper web`");
  }
  const local = await fetchJson("/__/keeper/emulators.json");
  const app = initializeApp(config);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, (local && local.region) || config.functionsRegion || DEFAULT_REGION);
  if (local) {
    connectAuthEmulator(auth, local.auth, { disableWarnings: true });
    connectFirestoreEmulator(db, local.firestore.host, local.firestore.port);
    connectFunctionsEmulator(functions, local.functions.host, local.functions.port);
  }
  const call = async (name, data) => (await httpsCallable(functions, name)(data || {})).data;
  return { app, auth, db, functions, call, local };
}
