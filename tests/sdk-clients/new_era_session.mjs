// The official TypeScript SDK 2.x client (npm @modelcontextprotocol/client,
// pinned in package.json) against a tether endpoint that serves MCP
// 2026-07-28. Its Client over StreamableHTTPClientTransport, with default
// options but for `versionNegotiation: { mode }` (the SDK defaults to
// 'legacy'; 'auto' probes `server/discover` and adopts the era it offers):
// lists and calls tools (`echo`, `long_task` with progress, `ask_model`
// whose sampling and `test_input_required_result_elicitation` whose
// elicitation come back, in the era, as `input_required` results the SDK
// answers through the same request handlers and retries;
// `test_header_param`, whose argument the SDK mirrors in `Mcp-Param-Region`),
// resources (a static one, a binary one, one from a template, completion of
// the template's `{id}`), prompts (a plain one, one with arguments and their
// completion, one that asks through `input_required`), and a subscription to
// `demo://note` (the era's `listen()`, a session's `resources/subscribe`)
// whose update, made by `set_note`, must arrive, as must the change of the
// tool list announced by `test_trigger_tool_change` (the listen stream's
// filter asks for both; a session hears it on its stream); then the tools
// are listed again. In 'legacy' mode two `counter` calls also count within
// the session.
//
// It prints one JSON summary line; tests/tests/new_era_clients.rs judges it.
//
// Usage: node new_era_session.mjs <mcp url> <auto|legacy>

import { readFileSync } from "node:fs";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/client/package.json", import.meta.url), "utf8"),
).version;
const NOTE_URI = "demo://note";
const TEMPLATE_URI = "test://template/42/data";
// Values of a tool argument that 2026-07-28 clients mirror in a header
// (`Mcp-Param-Region`): plain, and one the client must encode.
const REGIONS = ["eu-west-1", "Zürich"];
// Every wait of the run together; the Rust side bounds the process too.
const LIMIT_MS = 30_000;
const UPDATE_MS = 10_000;

const texts = (result) => (result.content ?? []).filter((c) => c.type === "text").map((c) => c.text);
const resourceTexts = (result) => (result.contents ?? []).filter((c) => typeof c.text === "string").map((c) => c.text);
const promptTexts = (result) =>
  (result.messages ?? []).filter((m) => m.content?.type === "text").map((m) => m.content.text);

function within(ms, what, promise) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

async function run(url, mode) {
  const sampled = [];
  const elicited = [];
  const progress = [];
  const errors = [];
  const updates = [];
  const listChanges = [];
  let updated;
  const update = new Promise((resolve) => {
    updated = resolve;
  });
  let toolsChanged;
  const toolsChange = new Promise((resolve) => {
    toolsChanged = resolve;
  });

  const client = new Client(
    { name: "tether-new-era-test", version: "1.0.0" },
    { capabilities: { sampling: {}, elicitation: {} }, versionNegotiation: { mode } },
  );
  client.onerror = (e) => errors.push(String(e?.message ?? e));
  client.setRequestHandler("sampling/createMessage", async (request) => {
    const content = request.params.messages[0].content;
    sampled.push(content.type === "text" ? content.text : JSON.stringify(content));
    return {
      role: "assistant",
      content: { type: "text", text: "four, said the typescript client" },
      model: "typescript-sdk-test",
      stopReason: "endTurn",
    };
  });
  client.setRequestHandler("elicitation/create", async (request) => {
    const message = request.params.message;
    elicited.push(message);
    if (message.includes("context")) return { action: "accept", content: { context: "from the typescript client" } };
    return { action: "accept", content: { name: "Ada" } };
  });
  client.setNotificationHandler("notifications/resources/updated", (notification) => {
    updates.push(notification.params.uri);
    updated();
  });
  client.setNotificationHandler("notifications/tools/list_changed", (notification) => {
    listChanges.push(notification.method);
    toolsChanged();
  });

  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  try {
    const tools = await client.listTools();
    const echo = await client.callTool({ name: "echo", arguments: { text: "hi" } });
    const long = await client.callTool(
      { name: "long_task", arguments: { steps: 3, step_ms: 10 } },
      { onprogress: (p) => progress.push(p.progress) },
    );
    const asked = await client.callTool({ name: "ask_model", arguments: { question: "What is 2+2?" } });
    const elicit = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
    const regions = [];
    for (const region of REGIONS) {
      regions.push(texts(await client.callTool({ name: "test_header_param", arguments: { region } })));
    }
    const resources = await client.listResources();
    const templates = await client.listResourceTemplates();
    const staticText = await client.readResource({ uri: "test://static-text" });
    const templated = await client.readResource({ uri: TEMPLATE_URI });
    const binary = await client.readResource({ uri: "test://static-binary" });
    const completedTemplate = await client.complete({
      ref: { type: "ref/resource", uri: "test://template/{id}/data" },
      argument: { name: "id", value: "4" },
    });
    const prompts = await client.listPrompts();
    const simple = await client.getPrompt({ name: "test_simple_prompt" });
    const withArgs = await client.getPrompt({ name: "test_prompt_with_arguments", arguments: { arg1: "a", arg2: "b" } });
    const askingPrompt = await client.getPrompt({ name: "test_input_required_result_prompt" });
    const completedPrompt = await client.complete({
      ref: { type: "ref/prompt", name: "test_prompt_with_arguments" },
      argument: { name: "arg1", value: "te" },
    });
    const note = `from the typescript client (${mode})`;
    const counter = [];
    let honored = [];
    let honoredTools = false;
    let setNote;
    if (mode === "legacy") {
      for (let i = 0; i < 2; i++) {
        const r = await client.callTool({ name: "counter", arguments: {} });
        counter.push(JSON.parse(texts(r).join("")));
      }
      await client.subscribeResource({ uri: NOTE_URI });
      setNote = await client.callTool({ name: "set_note", arguments: { text: note } });
      await within(UPDATE_MS, "resource update", update);
      await client.callTool({ name: "test_trigger_tool_change", arguments: {} });
      await within(UPDATE_MS, "tools/list_changed", toolsChange);
    } else {
      const sub = await client.listen({ toolsListChanged: true, resourceSubscriptions: [NOTE_URI] });
      honored = sub.honoredFilter.resourceSubscriptions ?? [];
      honoredTools = sub.honoredFilter.toolsListChanged === true;
      setNote = await client.callTool({ name: "set_note", arguments: { text: note } });
      await within(UPDATE_MS, "resource update on the listen stream", update);
      await client.callTool({ name: "test_trigger_tool_change", arguments: {} });
      await within(UPDATE_MS, "tools/list_changed on the listen stream", toolsChange);
      await sub.close();
    }
    const toolsAgain = await client.listTools();
    const after = await client.readResource({ uri: NOTE_URI });
    return {
      sdk_version: SDK_VERSION,
      node_version: process.version,
      mode,
      protocol_version: client.getNegotiatedProtocolVersion(),
      era: client.getProtocolEra(),
      session_id: transport.sessionId ?? null,
      server_name: client.getServerVersion()?.name ?? null,
      tools: tools.tools.map((t) => t.name).sort(),
      echo: texts(echo),
      long_task: texts(long),
      progress,
      ask_model: texts(asked),
      sampled,
      elicitation: texts(elicit),
      elicited,
      regions,
      counter,
      resources: resources.resources.map((r) => r.uri).sort(),
      templates: templates.resourceTemplates.map((t) => t.uriTemplate).sort(),
      static_text: resourceTexts(staticText),
      template_read: resourceTexts(templated).map((t) => JSON.parse(t)),
      binary: (binary.contents ?? [])
        .filter((c) => typeof c.blob === "string")
        .map((c) => ({ mime_type: c.mimeType, bytes: Buffer.from(c.blob, "base64").length })),
      template_completion: completedTemplate.completion.values,
      prompt_completion: completedPrompt.completion.values,
      prompts: prompts.prompts.map((p) => p.name).sort(),
      simple_prompt: promptTexts(simple),
      prompt_with_arguments: promptTexts(withArgs),
      input_required_prompt: promptTexts(askingPrompt),
      set_note: texts(setNote),
      honored,
      honored_tools_list_changed: honoredTools,
      list_changes: listChanges,
      tools_again: toolsAgain.tools.length,
      updates,
      note_after: resourceTexts(after),
      note_set: note,
      errors,
    };
  } finally {
    await client.close();
  }
}

const [url, mode] = process.argv.slice(2);
if (!url || !["auto", "legacy"].includes(mode)) {
  console.error("usage: node new_era_session.mjs <mcp url> <auto|legacy>");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await within(LIMIT_MS, "the whole run", run(url, mode))));
  process.exit(0);
} catch (e) {
  console.error(e?.stack ?? String(e));
  process.exit(1);
}
