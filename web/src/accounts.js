// The accounts view: live status from a Firestore listener on the signed-in user's own account
// documents (the rules let an owner read accounts where ownerUid == uid), pairing by code or QR, re-pair,
// remove with confirmation, and the user's open alerts (from getMetrics: alerts are not readable directly).
import { collection, onSnapshot, query, where } from "firebase/firestore";
import QRCode from "qrcode";

import { countdown, el, formatCode, REASON_TEXT, STATUS_TEXT, toDate, when } from "./format.js";

const NEEDS_NEW_PAIRING = new Set(["needs_pairing", "pairing_failed", "pairing_expired"]);
const ALERTS_EVERY_MS = 30000;

export function accountsView({ db, call, uid, showError, onChange = () => {} }) {
  const $ = (id) => document.getElementById(id);
  let accounts = [];
  const confirming = new Set();
  const qrImages = new Map(); // qr text -> data: URL, so a rotation renders once
  let ticker = null;

  const act = (fn) => async (...args) => {
    showError(null);
    try {
      await fn(...args);
    } catch (err) {
      showError(err);
    }
  };

  function statusCell(account) {
    const reason = account.statusReason;
    const text = STATUS_TEXT[account.status] || account.status;
    return el("td", { class: `status status-${account.status}`, "data-status": account.status },
      text, reason && (REASON_TEXT[reason] || reason) ? el("span", { class: "reason" }, REASON_TEXT[reason] || reason)
        : null);
  }

  function actionsCell(account) {
    const id = account.id;
    if (confirming.has(id)) {
      return el("td", {},
        `Remove ${account.phoneNumber} and unlink its device? `,
        el("button", { class: "confirm-remove", onclick: act(async () => {
          confirming.delete(id);
          await call("removeAccount", { accountId: id });
        }) }, "Yes, remove"),
        " ",
        el("button", { onclick: () => { confirming.delete(id); render(); } }, "Cancel"));
    }
    const repair = NEEDS_NEW_PAIRING.has(account.status);
    return el("td", {},
      account.status === "pairing" || account.status === "removing" ? null
        : el("button", { class: repair ? "repair" : "reconnect",
          onclick: act(() => call("reconnectAccount", { accountId: id })) }, repair ? "Pair again" : "Reconnect"),
      " ",
      account.status === "removing" ? null
        : el("button", { class: "remove", onclick: () => { confirming.add(id); render(); } }, "Remove"));
  }

  function pairingPanel() {
    const pairing = accounts.filter((a) => a.status === "pairing");
    const panel = $("pairing");
    panel.hidden = pairing.length === 0;
    panel.replaceChildren(...pairing.map((account) => {
      const info = account.pairing || {};
      const expires = toDate(info.expiresAt);
      const left = expires ? (expires.getTime() - Date.now()) / 1000 : null;
      const box = el("div", { class: "pairing-item", "data-account": account.id });
      if (info.code) {
        box.append(
          el("p", {}, `Link ${account.phoneNumber}: on the phone open WhatsApp › Linked devices › Link a device › `
            + "Link with phone number instead, and type"),
          el("p", { class: "code" }, formatCode(info.code)));
      } else if (info.qr) {
        const img = el("img", { class: "qr", alt: "QR code to scan with WhatsApp", "data-qr": info.qr });
        const cached = qrImages.get(info.qr);
        if (cached) {
          img.src = cached;
        } else {
          QRCode.toDataURL(info.qr, { errorCorrectionLevel: "L", margin: 2, scale: 6 }).then((url) => {
            qrImages.clear(); // only the newest ref matters
            qrImages.set(info.qr, url);
            img.src = url;
          }, showError);
        }
        box.append(el("p", {}, `Link ${account.phoneNumber}: on the phone open WhatsApp › Linked devices › `
          + "Link a device, and scan"), img);
      } else {
        box.append(el("p", {}, `Waiting for ${account.method === "qr" ? "the QR code" : "the pairing code"} `
          + `for ${account.phoneNumber}…`));
      }
      if (left != null && (info.code || info.qr)) {
        box.append(el("p", { class: "expires" },
          left > 0 ? `Expires in ${countdown(left)}` : "Expired; a new one follows, or pair again."));
      }
      return box;
    }));
  }

  function render() {
    const visible = accounts.filter((a) => a.status !== "removed");
    $("no-accounts").hidden = visible.length > 0;
    $("accounts").replaceChildren(...visible.map((account) => el("tr", { "data-account": account.id,
      "data-phone": account.phoneNumber },
    el("td", {}, account.phoneNumber),
    statusCell(account),
    el("td", {}, account.health || ""),
    el("td", {}, when(account.lastSavedAt)),
    actionsCell(account))));
    pairingPanel();
  }

  async function refreshAlerts() {
    try {
      const metrics = await call("getMetrics");
      $("alerts").replaceChildren(...(metrics.alerts || []).map((a) => el("li", { "data-kind": a.kind },
        `${when(a.createdAt)} ${a.kind}: ${a.message}`)));
      if (!(metrics.alerts || []).length) $("alerts").append(el("li", {}, "No open alerts."));
    } catch (err) {
      showError(err);
    }
  }

  $("add").onsubmit = act(async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    await call("addAccount", { phoneNumber: String(form.get("phoneNumber")).trim(), method: form.get("method") });
    event.target.reset();
  });

  const owned = query(collection(db, "accounts"), where("ownerUid", "==", uid));
  const unsubscribe = onSnapshot(owned, (snapshot) => {
    accounts = snapshot.docs.map((doc) => ({ id: doc.id, ...doc.data() }))
      .sort((a, b) => String(a.phoneNumber).localeCompare(String(b.phoneNumber)));
    render();
    onChange();
  }, showError);
  ticker = setInterval(pairingPanel, 1000); // the countdown
  refreshAlerts();
  const alertsTimer = setInterval(refreshAlerts, ALERTS_EVERY_MS);

  return {
    accounts: () => accounts,
    stop() {
      unsubscribe();
      clearInterval(ticker);
      clearInterval(alertsTimer);
    },
  };
}
