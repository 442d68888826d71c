// The admin dashboard (users with the `admin` custom claim): getMetrics every few seconds.
import { el, when } from "./format.js";
import { barChart } from "./plot.js";

const REFRESH_MS = 10000;

function hourLabel(iso) {
  const date = new Date(iso);
  return `${String(date.getHours()).padStart(2, "0")}h`;
}

export function adminView({ call, showError }) {
  const $ = (id) => document.getElementById(id);
  let timer = null;

  function tile(name, value, key) {
    return el("div", { class: "tile", "data-metric": key }, el("b", {}, value), name);
  }

  function render(m) {
    const restores = m.restores24h || {};
    const rate = restores.successRate == null ? "–" : `${(restores.successRate * 100).toFixed(1)} %`;
    const byStatus = m.accountsByStatus || {};
    $("tiles").replaceChildren(
      tile("sessions stored", m.sessionsStored ?? 0, "sessionsStored"),
      tile("connected now", byStatus.connected || 0, "connected"),
      tile("accounts", m.accounts ?? 0, "accounts"),
      tile("restore success (24 h)", rate, "successRate"),
      tile("restores (24 h)", restores.total ?? 0, "restores"),
      tile("open alerts", m.openAlerts ?? 0, "openAlerts"),
      tile("last health check", m.lastHealthCheck ? when(m.lastHealthCheck.checkedAt) : "never", "healthCheck"));
    const hours = m.timeline || [];
    $("plot-restores").replaceChildren(barChart(hours.map((h) => ({ label: hourLabel(h.hour), parts: [
      { value: h.restored + h.fellBack, cls: "bar-ok" }, { value: h.failed, cls: "bar-bad" }] }))));
    $("plot-durations").replaceChildren(barChart(hours.map((h) => ({ label: hourLabel(h.hour),
      parts: [{ value: h.restoreSecondsP50 || 0, cls: "bar" }] })), { unit: " s" }));
    $("plot-reconnects").replaceChildren(barChart(hours.map((h) => ({ label: hourLabel(h.hour),
      parts: [{ value: h.reconnects || 0, cls: "bar" }] }))));
    $("connectors").replaceChildren(...(m.connectors || []).map((c) => el("tr", { "data-connector": c.connectorId },
      el("td", {}, c.connectorId), el("td", {}, `${c.held} / ${c.capacity}`), el("td", {}, when(c.lastSyncAt)),
      el("td", {}, c.live ? "yes" : "no"))));
    $("admin-alerts").replaceChildren(...(m.alerts || []).map((a) => el("li", {},
      `${when(a.createdAt)} ${a.kind} (${a.accountId}): ${a.message}`)));
    if (!(m.alerts || []).length) $("admin-alerts").append(el("li", {}, "No open alerts."));
  }

  async function refresh() {
    try {
      render(await call("getMetrics"));
    } catch (err) {
      showError(err);
    }
  }

  return {
    show() {
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
    },
    hide() {
      clearInterval(timer);
    },
  };
}
