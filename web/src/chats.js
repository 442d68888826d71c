// The chats view: for one of the user's accounts, its chats (accounts/{id}/chats, newest first, with the
// last message and the unread count) and the open conversation (accounts/{id}/messages of that chat,
// oldest first), both live from Firestore listeners; the send box calls sendMessage {accountId, to, text}.
import { collection, limit, onSnapshot, orderBy, query, where } from "firebase/firestore";

import { el, toDate, when } from "./format.js";

const CHATS_SHOWN = 100;
const MESSAGES_SHOWN = 200;

function lastText(chat) {
  const last = chat.lastMessage;
  if (last == null) return "";
  if (typeof last === "string") return last;
  return last.text || (last.type ? `[${last.type}]` : "");
}

export function chatsView({ db, call, showError, accounts }) {
  const $ = (id) => document.getElementById(id);
  let accountId = null;
  let chatId = null;
  let stopChats = () => {};
  let stopMessages = () => {};

  function fillAccounts() {
    const linked = accounts().filter((a) => a.status !== "removed" && a.status !== "removing");
    const select = $("chat-account");
    const current = select.value;
    select.replaceChildren(...linked.map((a) => el("option", { value: a.id }, a.phoneNumber)));
    if (linked.some((a) => a.id === current)) select.value = current;
    if (select.value !== accountId) openAccount(select.value || null);
  }

  function openAccount(id) {
    stopChats();
    stopMessages();
    accountId = id;
    chatId = null;
    $("chat-list").replaceChildren();
    $("messages").replaceChildren();
    $("chat-title").textContent = "";
    $("send").hidden = true;
    if (!id) return;
    const chats = query(collection(db, "accounts", id, "chats"), orderBy("updatedAt", "desc"), limit(CHATS_SHOWN));
    stopChats = onSnapshot(chats, (snapshot) => {
      $("no-chats").hidden = !snapshot.empty;
      $("chat-list").replaceChildren(...snapshot.docs.map((doc) => {
        const chat = doc.data();
        const unread = Number(chat.unreadCount || 0);
        return el("li", { "data-chat": doc.id, class: doc.id === chatId ? "active" : null,
          onclick: () => openChat(doc.id, chat) },
        el("b", {}, chat.name || doc.id.split("@")[0]),
        unread > 0 ? el("span", { class: "unread" }, unread) : null,
        el("div", { class: "meta" }, lastText(chat), " · ", when(chat.updatedAt)));
      }));
    }, showError);
  }

  function openChat(id, chat) {
    stopMessages();
    chatId = id;
    for (const li of $("chat-list").children) li.classList.toggle("active", li.dataset.chat === id);
    $("chat-title").textContent = (chat && chat.name) || id;
    $("send").hidden = false;
    const messages = query(collection(db, "accounts", accountId, "messages"), where("chat", "==", id),
      orderBy("timestamp", "desc"), limit(MESSAGES_SHOWN));
    stopMessages = onSnapshot(messages, (snapshot) => {
      const list = snapshot.docs.map((doc) => ({ id: doc.id, ...doc.data() }))
        .sort((a, b) => (toDate(a.timestamp)?.getTime() || 0) - (toDate(b.timestamp)?.getTime() || 0));
      $("messages").replaceChildren(...list.map((m) => el("li", { class: m.fromMe ? "mine" : null,
        "data-message": m.id },
      m.text != null ? m.text : `[${m.type || "message"}]`,
      el("div", { class: "meta" }, m.fromMe ? "" : `${m.sender || ""} · `, when(m.timestamp),
        m.fromMe && m.status ? ` · ${m.status}` : ""))));
      const box = $("messages");
      box.scrollTop = box.scrollHeight;
    }, showError);
  }

  $("chat-account").onchange = (event) => openAccount(event.target.value || null);
  $("send").onsubmit = async (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    const text = input.value;
    if (!text.trim() || !accountId || !chatId) return;
    showError(null);
    try {
      await call("sendMessage", { accountId, to: chatId, text });
      input.value = "";
    } catch (err) {
      showError(err);
    }
  };

  return {
    show: fillAccounts,
    stop() {
      stopChats();
      stopMessages();
    },
  };
}
