// keeper's web app: sign-in, then the accounts, chats and (for admins) dashboard views.
import {
  createUserWithEmailAndPassword, GoogleAuthProvider, onAuthStateChanged, signInWithEmailAndPassword,
  signInWithPopup, signOut,
} from "firebase/auth";

import { accountsView } from "./accounts.js";
import { adminView } from "./admin.js";
import { chatsView } from "./chats.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["sign-in", "accounts", "chats", "admin"];

function showError(err) {
  $("error").textContent = err ? `${err.code || "error"}: ${err.message}` : "";
}

function show(view) {
  for (const name of VIEWS) $(`view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.view === view);
}

async function main() {
  const { connect } = await import("./firebase.js");
  const firebase = await connect();
  const { auth, db, call, local } = firebase;
  if (local) {
    $("banner").hidden = false;
    $("banner").textContent = "Local stack: Auth, Firestore and the functions are the emulators.";
  }

  $("sign-in-form").onsubmit = async (event) => {
    event.preventDefault();
    showError(null);
    const form = new FormData(event.target);
    const email = String(form.get("email"));
    const password = String(form.get("password"));
    const signUp = event.submitter && event.submitter.value === "sign-up";
    try {
      await (signUp ? createUserWithEmailAndPassword : signInWithEmailAndPassword)(auth, email, password);
    } catch (err) {
      showError(err);
    }
  };
  $("google").onclick = () => signInWithPopup(auth, new GoogleAuthProvider()).catch(showError);
  $("sign-out").onclick = () => signOut(auth);

  let session = null;
  function route() {
    if (!session) return;
    const view = (location.hash.replace(/^#\//, "") || "accounts");
    const allowed = view === "admin" ? session.admin : ["accounts", "chats"].includes(view);
    const target = allowed ? view : "accounts";
    if (target !== "admin") session.admin?.hide();
    show(target);
    if (target === "chats") session.chats.show();
    if (target === "admin") session.admin.show();
  }
  window.addEventListener("hashchange", route);

  onAuthStateChanged(auth, async (user) => {
    if (session) {
      session.accounts.stop();
      session.chats.stop();
      session.admin?.hide();
      session = null;
    }
    $("who-text").textContent = user ? `Signed in as ${user.email || user.uid}` : "Not signed in.";
    $("sign-out").hidden = !user;
    $("nav").hidden = !user;
    showError(null);
    if (!user) {
      show("sign-in");
      return;
    }
    const token = await user.getIdTokenResult();
    const isAdmin = token.claims.admin === true;
    $("nav-admin").hidden = !isAdmin;
    // the chats view's account list follows the accounts listener (its first answer may come after the
    // view opened: a sign-in or a reload on #/chats)
    let chats = null;
    const accounts = accountsView({ db, call, uid: user.uid, showError,
      onChange: () => { if (!$("view-chats").hidden) chats?.show(); } });
    chats = chatsView({ db, call, showError, accounts: accounts.accounts });
    session = {
      accounts,
      chats,
      admin: isAdmin ? adminView({ call, showError }) : null,
    };
    route();
  });
}

main().catch((err) => {
  $("who-text").textContent = "Could not start.";
  showError(err);
});
