// Small formatting helpers shared by the views.

/** A Firestore Timestamp, an ISO string, or seconds / milliseconds since the epoch, as a Date. */
export function toDate(value) {
  if (value == null) return null;
  if (typeof value.toDate === "function") return value.toDate();
  if (typeof value === "number") return new Date(value < 1e12 ? value * 1000 : value);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function when(value) {
  const date = toDate(value);
  return date ? date.toLocaleString() : "";
}

/** The 8-character pairing code as the phone shows it: XXXX-XXXX. */
export function formatCode(code) {
  const clean = String(code || "").replace(/[^0-9A-Za-z]/g, "").toUpperCase();
  return clean.length === 8 ? `${clean.slice(0, 4)}-${clean.slice(4)}` : clean;
}

/** "2:05" from a number of seconds (never negative). */
export function countdown(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export const STATUS_TEXT = {
  pairing: "waiting for pairing",
  connecting: "connecting",
  connected: "connected",
  reconnecting: "reconnecting",
  needs_pairing: "logged out: pair again",
  pairing_failed: "pairing failed",
  pairing_expired: "pairing expired",
  restore_failed: "could not restore",
  replaced: "taken over by another session",
  stopped: "stopped",
  removing: "being removed",
};

/** Why an account needs attention, in words (statusReason slugs from the functions). */
export const REASON_TEXT = {
  expired: "The code or QR expired before it was used.",
  wrong_code: "The code typed on the phone was not this account's code.",
  unknown_number: "WhatsApp has no account for this phone number.",
  wrong_phone: "A different phone linked it; that device was unlinked. Use the phone of this number.",
  failed: "The phone and keeper could not complete the pairing.",
  logged_out: "The phone unlinked this device.",
  device_removed: "The phone removed this device.",
};

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}
