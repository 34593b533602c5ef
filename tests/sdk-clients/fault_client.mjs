// Clients of the official MCP TypeScript SDK (@modelcontextprotocol/sdk,
// pinned in package.json) under faults: the driver of
// tests/tests/official_clients*.rs (issue 10, "faults as real clients feel
// them"). The same protocol as tests/python/fault_client.py.
//
// Usage: node fault_client.mjs <loop|long|ping> <mcp url> [--clients N] [options]
//
// Every client is a separate SDK session with the SDK's DEFAULT options:
// StreamableHTTPClientTransport with the default fetch (no cookies), its
// default reconnection options, the standalone GET stream the SDK opens
// after `notifications/initialized`. The only bound added here is the
// per-call `timeout`, as an application would set.
//
// Each client opens a session and calls `counter` (which says which replica
// answered); with `--spread R`, a client whose replica already has its share
// of this driver's clients leaves that session and opens another (bounded),
// so that every one of R replicas gets some (set-up, not part of any
// scenario). Once all are placed, the script prints `ready` and reads commands,
// one a line, on stdin: `go` (loop: `counter` in a loop, a new session after
// an error; long: one `long_task` with progress; ping: `ping` in a loop),
// `fresh K` (open K new sessions, one `counter` each), `stop` (close all,
// print `done`, exit). Output: one JSON object a line, see fault_client.py.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const SDK_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8"),
).version;

function parseArgs(argv) {
  const [mode, url, ...rest] = argv;
  if (!["loop", "long", "ping"].includes(mode) || !url) {
    console.error("usage: fault_client.mjs <loop|long|ping> <mcp url> [--clients N] [--interval-ms MS] ...");
    process.exit(2);
  }
  const opts = {
    mode,
    url,
    clients: 3,
    spread: 0,
    intervalMs: 50,
    callTimeout: 5,
    steps: 10,
    stepMs: 200,
    longTimeout: 20,
    closeTimeout: 3,
    maxSecs: 60,
  };
  const names = {
    "--clients": "clients",
    "--spread": "spread",
    "--interval-ms": "intervalMs",
    "--call-timeout": "callTimeout",
    "--steps": "steps",
    "--step-ms": "stepMs",
    "--long-timeout": "longTimeout",
    "--close-timeout": "closeTimeout",
    "--max-secs": "maxSecs",
  };
  for (let i = 0; i < rest.length; i += 2) {
    const key = names[rest[i]];
    if (!key) {
      console.error(`unknown option ${rest[i]}`);
      process.exit(2);
    }
    opts[key] = Number(rest[i + 1]);
  }
  return opts;
}

const args = parseArgs(process.argv.slice(2));

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, t: Date.now(), ...fields }) + "\n");
}

function describe(err) {
  const code = err && err.code !== undefined ? ` (code ${err.code})` : "";
  return `${err && err.name ? err.name : "Error"}: ${err && err.message ? err.message : String(err)}${code}`.slice(0, 500);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- commands from stdin ---------------------------------------------------

let goResolve;
const go = new Promise((resolve) => (goResolve = resolve));
let stopResolve;
const stop = new Promise((resolve) => (stopResolve = resolve));
let stopped = false;
function doStop() {
  stopped = true;
  goResolve();
  stopResolve();
}
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  const [word, arg] = line.trim().split(/\s+/);
  if (word === "go") goResolve();
  else if (word === "stop") doStop();
  else if (word === "fresh") freshSessions(Number(arg || "1"));
});
rl.on("close", doStop);

const sleepOrStop = (ms) => Promise.race([sleep(ms), stop]);

// --- one SDK session ---------------------------------------------------------

async function open(clientIndex) {
  const client = new Client({ name: "tether-fault-client", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(args.url));
  const session = { client, transport, closing: false };
  // What the SDK reports besides the calls' own results: a GET stream that
  // failed or was cut, a reconnection that failed.
  client.onerror = (err) => {
    if (!session.closing && !stopped && clientIndex !== undefined) {
      emit("transport_error", { client: clientIndex, error: describe(err) });
    }
  };
  await client.connect(transport);
  return session;
}

async function close(session) {
  session.closing = true;
  await Promise.race([session.client.close().catch(() => {}), sleep(args.closeTimeout * 1000)]);
}

async function counter(session) {
  const r = await session.client.callTool({ name: "counter", arguments: {} }, undefined, {
    timeout: args.callTimeout * 1000,
  });
  if (r.isError) throw new Error(`tool error: ${JSON.stringify(r.content)}`);
  return r.structuredContent ?? {};
}

const textOf = (r) => (r.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("");

// --- the driver --------------------------------------------------------------

let placedCount = 0;
let placedResolve;
const placed = new Promise((resolve) => (placedResolve = resolve));
function markPlaced(state) {
  if (!state.announced) {
    state.announced = true;
    placedCount += 1;
    if (placedCount === args.clients) placedResolve();
  }
}

// Sessions a client may open and leave while the driver spreads its clients.
const SPREAD_ATTEMPTS = 20;
const claims = new Map();

async function runClient(i) {
  const state = { announced: false, spreadAttempts: 0 };
  for (let gen = 0; !stopped; gen++) {
    let session;
    try {
      session = await open(i);
      // A failure here ends up as this session's `session_error`.
      const first = await counter(session);
      if (!state.announced && args.spread) {
        // Set-up, not the scenario: spread this driver's clients over the
        // replicas, so each replica has some of every SDK.
        const quota = Math.ceil(args.clients / args.spread);
        const claimed = claims.get(first.replica) ?? 0;
        if (claimed >= quota && state.spreadAttempts < SPREAD_ATTEMPTS) {
          state.spreadAttempts += 1;
          await close(session);
          gen -= 1;
          continue;
        }
        claims.set(first.replica, claimed + 1);
      }
      emit("session", { client: i, gen });
      emit("ok", { client: i, gen, op: "counter", ...first });
      markPlaced(state);
      await go;
      const done = await work(i, gen, session);
      await close(session);
      if (done) return;
      // Left the session after an error (loop mode): when the SDK was done.
      emit("closed", { client: i, gen });
    } catch (err) {
      emit("session_error", { client: i, gen, error: describe(err) });
      if (session) await close(session);
      if (args.mode !== "loop" || stopped) {
        markPlaced(state);
        return;
      }
      await sleepOrStop(50);
    }
  }
}

// The mode's work in an open session: true when the client is done, false
// to open a new session.
async function work(i, gen, session) {
  if (args.mode === "long") {
    try {
      const r = await session.client.callTool(
        { name: "long_task", arguments: { steps: args.steps, step_ms: args.stepMs } },
        undefined,
        {
          timeout: args.longTimeout * 1000,
          onprogress: (p) => emit("progress", { client: i, gen, progress: p.progress, total: p.total }),
        },
      );
      emit("result", { client: i, gen, is_error: Boolean(r.isError), text: textOf(r) });
    } catch (err) {
      emit("error", { client: i, gen, op: "long_task", error: describe(err) });
    }
    await stop;
    return true;
  }
  const op = args.mode === "loop" ? "counter" : "ping";
  while (!stopped) {
    try {
      if (op === "counter") {
        emit("ok", { client: i, gen, op, ...(await counter(session)) });
      } else {
        await session.client.ping({ timeout: args.callTimeout * 1000 });
        emit("ok", { client: i, gen, op });
      }
    } catch (err) {
      emit("error", { client: i, gen, op, error: describe(err) });
      if (args.mode === "loop") return false; // leave this session; open a new one
    }
    await sleepOrStop(args.intervalMs);
  }
  return true;
}

async function freshSessions(k) {
  await Promise.all(
    Array.from({ length: k }, async () => {
      let session;
      try {
        session = await open(undefined);
        emit("fresh", await counter(session));
      } catch (err) {
        emit("fresh_error", { error: describe(err) });
      }
      if (session) await close(session);
    }),
  );
}

const deadline = setTimeout(() => {
  emit("timeout", { secs: args.maxSecs });
  process.exit(3);
}, args.maxSecs * 1000);

const clients = Array.from({ length: args.clients }, (_, i) => runClient(i));
await placed;
emit("ready", { sdk: "typescript", version: SDK_VERSION });
await stop;
const closed = await Promise.race([
  Promise.all(clients).then(() => true),
  sleep(args.closeTimeout * 1000).then(() => false),
]);
emit("done", { sdk: "typescript", version: SDK_VERSION, unclosed: closed ? 0 : 1 });
clearTimeout(deadline);
process.exit(0);
