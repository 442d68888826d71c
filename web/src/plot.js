// A bar chart as an SVG element: enough for the dashboard's per-hour series, no library needed.
const NS = "http://www.w3.org/2000/svg";
const W = 300;
const H = 140;
const PAD = 18;

function node(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text != null) n.textContent = text;
  return n;
}

/**
 * bars: [{label, parts: [{value, cls}]}], stacked per bar; returns an <svg class="plot">.
 */
export function barChart(bars, { unit = "" } = {}) {
  const svg = node("svg", { viewBox: `0 0 ${W} ${H}`, class: "plot", role: "img" });
  const totals = bars.map((b) => b.parts.reduce((s, p) => s + (p.value || 0), 0));
  const max = Math.max(1, ...totals);
  const width = (W - PAD) / Math.max(1, bars.length);
  bars.forEach((bar, i) => {
    let y = H - PAD;
    for (const part of bar.parts) {
      const h = ((part.value || 0) / max) * (H - 2 * PAD);
      if (h > 0) {
        y -= h;
        const rect = node("rect", { x: PAD + i * width + 1, y, width: Math.max(1, width - 2), height: h,
          class: part.cls || "bar" });
        rect.append(node("title", {}, `${bar.label}: ${part.value}${unit}`));
        svg.append(rect);
      }
    }
    if (i % 6 === 0) svg.append(node("text", { x: PAD + i * width, y: H - 4 }, bar.label));
  });
  svg.append(node("text", { x: 0, y: 12 }, `${Math.round(max * 100) / 100}${unit}`));
  svg.append(node("line", { x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, stroke: "#999" }));
  return svg;
}
