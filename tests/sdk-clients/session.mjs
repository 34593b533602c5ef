// One MCP session run by the official TypeScript SDK
// (@modelcontextprotocol/sdk, pinned in package.json) against a tether
// endpoint: the same steps, and the same JSON summary, as
// tests/python/mcp_session.py (read that file's docs), so that the Rust
// tests judge both alike.
//
// Usage: node session.mjs <mcp url>
//
// The client uses the SDK's DEFAULT options: StreamableHTTPClientTransport
// with the default fetch (no cookies), its default reconnection options,
// and the standalone GET stream the SDK opens after initialization.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;
const SAMPLED_ANSWER = "four, said the typescript client";
const ELICITED = { username: "ada", email: "ada@example.com" };
const NOTE_URI = "demo://note";
// Every wait of the session together; the Rust side bounds the process too.
const LIMIT_MS = 30_000;
const UPDATE_MS = 10_000;

const text = (result) =>
  (result.content ?? [])
    .filter((c) => c.type === "text")
    .map((c) => c.text)
    .join("");

function structured(result) {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  return result.structuredContent ?? {};
}

function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function run(url) {
  const sampled = [];
  const elicited = [];
  const updates = [];
  const errors = [];
  const progress = [];
  let onUpdate;
  const updated = new Promise((resolve) => {
    onUpdate = resolve;
  });

  const client = new Client(
    { name: "tether-ts-session", version: "0" },
    { capabilities: { sampling: {}, elicitation: {} } },
  );
  client.onerror = (e) => errors.push(String(e));
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    const content = req.params.messages[0].content;
    sampled.push(content.type === "text" ? content.text : JSON.stringify(content));
    return {
      role: "assistant",
      content: { type: "text", text: SAMPLED_ANSWER },
      model: "typescript-sdk-test",
      stopReason: "endTurn",
    };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    elicited.push(req.params.message);
    return { action: "accept", content: ELICITED };
  });
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updates.push(n.params.uri);
    onUpdate();
  });

  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  const tools = await client.listTools();
  const first = structured(await client.callTool({ name: "counter", arguments: {} }));
  const second = structured(await client.callTool({ name: "counter", arguments: {} }));
  const task = await client.callTool({ name: "long_task", arguments: { steps: 5, step_ms: 20 } }, undefined, {
    onprogress: (p) => progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }),
  });
  const asked = await client.callTool({ name: "ask_model", arguments: { question: "What is 2+2?" } });
  const elicit = await client.callTool({ name: "test_elicitation", arguments: { message: "Who are you?" } });
  await client.subscribeResource({ uri: NOTE_URI });
  await client.callTool({ name: "set_note", arguments: { text: "from the typescript client" } });
  await within(UPDATE_MS, "the resource update on the GET stream", updated);
  const note = await client.readResource({ uri: NOTE_URI });
  const reconnected = await client.callTool({ name: "test_reconnection", arguments: {} });
  const summary = {
    sdk_version: SDK_VERSION,
    protocol_version: transport.protocolVersion ?? null,
    server_name: client.getServerVersion()?.name ?? null,
    tools: tools.tools.map((t) => t.name).sort(),
    counter: [first, second],
    long_task: { is_error: Boolean(task.isError), text: text(task) },
    progress,
    session_id: transport.sessionId ?? null,
    ask_model: { is_error: Boolean(asked.isError), text: text(asked) },
    sampled_questions: sampled,
    elicitation: { is_error: Boolean(elicit.isError), text: text(elicit) },
    elicited_messages: elicited,
    updates,
    note: note.contents.filter((c) => typeof c.text === "string").map((c) => c.text),
    reconnection: { is_error: Boolean(reconnected.isError), text: text(reconnected) },
    errors,
  };
  await transport.terminateSession();
  await client.close();
  return summary;
}

const url = process.argv[2];
if (!url) {
  console.error("usage: node session.mjs <mcp url>");
  process.exit(2);
}
try {
  const summary = await within(LIMIT_MS, "the session", run(url));
  console.log(JSON.stringify(summary));
  process.exit(0);
} catch (e) {
  console.error(e?.stack ?? String(e));
  process.exit(1);
}
