// What each feature does for a client of the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json; its DEFAULT options:
// StreamableHTTPClientTransport with the default fetch) against one tether
// configuration: the same probe, and the same JSON line, as
// tests/python/configuration_probe.py (read that file's docs), so that
// tests/tests/configurations.rs judges both alike.
//
// Usage: node configuration_probe.mjs <mcp url>

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const SAMPLED = "four, said the probe";
const ROOT = "file:///probe";
const FEATURE_MS = 10_000;
const UPDATE_MS = 5_000;
const SPREAD_CALLS = 6;
const LIMIT_MS = 60_000;

const text = (result) =>
  (result.content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("");

function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

class Refused extends Error {}

async function run(url) {
  const errors = [];
  const logs = [];
  const asked = { sampling: 0, elicitation: 0, roots: 0 };
  let onUpdate;
  const updated = new Promise((resolve) => {
    onUpdate = resolve;
  });

  const client = new Client(
    { name: "tether-configuration-probe", version: "0" },
    { capabilities: { sampling: {}, elicitation: {}, roots: {} } },
  );
  client.onerror = (e) => errors.push(String(e));
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    asked.sampling += 1;
    return { role: "assistant", content: { type: "text", text: SAMPLED }, model: "probe" };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    asked.elicitation += 1;
    return { action: "accept", content: { username: "ada", email: "ada@example.com" } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked.roots += 1;
    return { roots: [{ uri: ROOT, name: "probe" }] };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => logs.push(JSON.stringify(n.params.data)));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => onUpdate());

  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);

  const features = {};
  async function probe(name, attempt) {
    try {
      const [ok, detail] = await within(FEATURE_MS, name, attempt());
      features[name] = { outcome: ok ? "works" : "failed", detail };
    } catch (e) {
      const refused = (e instanceof McpError || e instanceof Refused) && e.code === -32000;
      features[name] = { outcome: refused ? "refused" : "failed", detail: `${e.code ?? ""} ${e.message}` };
    }
  }
  const call = (name, args, options) => client.callTool({ name, arguments: args }, undefined, options);

  await probe("tools", async () => {
    const r = await call("echo", { text: "probe" });
    return [text(r) === "probe", text(r)];
  });
  await probe("progress", async () => {
    const progress = [];
    const r = await call("long_task", { steps: 3, step_ms: 10 }, { onprogress: (p) => progress.push(p.progress) });
    return [text(r) === "finished 3 steps" && JSON.stringify(progress) === "[1,2,3]", JSON.stringify(progress)];
  });
  await probe("logs", async () => [logs.length > 0, `${logs.length} log messages`]);
  await probe("sampling", async () => {
    const r = await call("ask_model", { question: "2+2?" });
    return [text(r).includes(SAMPLED) && asked.sampling === 1, text(r)];
  });
  await probe("elicitation", async () => {
    const r = await call("test_elicitation", { message: "Who?" });
    return [!r.isError && asked.elicitation === 1, text(r)];
  });
  await probe("roots", async () => {
    const r = await call("test_input_required_result_list_roots", {});
    return [text(r) === "Found 1 root(s)", text(r)];
  });
  await probe("session_state", async () => {
    const counts = [];
    for (let i = 0; i < 2; i++) {
      counts.push((await call("counter", {})).structuredContent?.count ?? null);
    }
    if (counts.every((c) => c === null)) {
      const e = new Refused("counter: no session to count in");
      e.code = -32000;
      throw e;
    }
    return [JSON.stringify(counts) === "[1,2]", JSON.stringify(counts)];
  });
  await probe("subscriptions", async () => {
    await client.subscribeResource({ uri: "demo://note" });
    await call("set_note", { text: "probed" });
    await within(UPDATE_MS, "the resource update", updated);
    return [true, "updated"];
  });
  await probe("closed_stream", async () => {
    const r = await call("test_reconnection", {});
    return [text(r).includes("completed"), text(r)];
  });

  const replicas = [];
  for (let i = 0; i < SPREAD_CALLS; i++) {
    replicas.push((await call("counter", {})).structuredContent?.replica ?? null);
  }
  const summary = { session: transport.sessionId != null, features, replicas, errors };
  await client.close();
  return summary;
}

const url = process.argv[2];
if (!url) {
  console.error("usage: node configuration_probe.mjs <mcp url>");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await within(LIMIT_MS, "the probe", run(url))));
  process.exit(0);
} catch (e) {
  console.error(e?.stack ?? String(e));
  process.exit(1);
}
