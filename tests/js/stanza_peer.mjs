// Reads keeper-encoded stanzas with Baileys 7's own code, for keeper's stanza tests.
// Input: JSON lines {op, b64, me?, lid?} on stdin (b64: a binary node as keeper's encode_node writes it).
// op "retry_keys": extractE2ESessionFromRetryReceipt of a retry receipt
// op "bundles":    parseAndInjectE2ESessions of an encrypt reply (the sessions it would inject)
// op "usync":      USyncQuery(devices + lid).parseUSyncQueryResult then extractDeviceJids(me, lid)
// Output: one JSON line per input {result}; Buffers as base64.
import { createInterface } from "node:readline";
import { decodeBinaryNode } from "baileys7/lib/WABinary/index.js";
import { extractDeviceJids, extractE2ESessionFromRetryReceipt, parseAndInjectE2ESessions } from "baileys7/lib/Utils/signal.js";
import { USyncQuery } from "baileys7/lib/WAUSync/index.js";

const plain = (value) => JSON.parse(JSON.stringify(value, (_, v) =>
  v && v.type === "Buffer" && Array.isArray(v.data) ? Buffer.from(v.data).toString("base64") : v));

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const { op, b64, me, lid } = JSON.parse(line);
  const node = await decodeBinaryNode(Buffer.from(b64, "base64"));
  let result;
  if (op === "retry_keys") {
    result = extractE2ESessionFromRetryReceipt(node);
  } else if (op === "bundles") {
    const injected = [];
    await parseAndInjectE2ESessions(node, { injectE2ESession: async (s) => { injected.push(s); } });
    result = injected;
  } else if (op === "usync") {
    const query = new USyncQuery().withContext("message").withDeviceProtocol().withLIDProtocol();
    const parsed = query.parseUSyncQueryResult(node);
    result = { lids: parsed.list.filter((u) => u.lid).map((u) => [u.id, u.lid]),
      devices: extractDeviceJids(parsed.list, me, lid, false) };
  }
  console.log(JSON.stringify({ result: plain(result ?? null) }));
}
