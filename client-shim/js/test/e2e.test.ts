// End to end: the official TypeScript SDK against three real tether
// replicas behind HAProxy pinning by its own inserted cookie alone (like an
// ALB with duration-based stickiness), without and with the shim.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateMessageRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import {
  connectWithRecovery,
  type FetchLike,
  isSessionNotFound,
  type RecoveringClient,
  SessionLostError,
  withCookies,
} from "../src/index.js";
import { type Cluster, startCluster } from "./cluster.js";

interface Count {
  count: number;
  replica: string;
  session: string;
}

/** A client that declares sampling and answers each question with "answer to <question>". */
function newClient(name: string) {
  const client = new Client({ name, version: "0.0.0" }, { capabilities: { sampling: {} } });
  const asked: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => {
    const first = request.params.messages[0]?.content;
    const question = first && "text" in first ? String(first.text) : "";
    asked.push(question);
    return { role: "assistant", content: { type: "text", text: `answer to ${question}` }, model: "test-model" };
  });
  return { client, asked };
}

async function counter(c: Client | RecoveringClient): Promise<Count> {
  const result = await c.callTool({ name: "counter", arguments: {} });
  assert.ok(!result.isError, JSON.stringify(result));
  return result.structuredContent as unknown as Count;
}

function text(result: Awaited<ReturnType<Client["callTool"]>>): string {
  const content = result.content as { type: string; text?: string }[];
  return content.map((c) => c.text ?? "").join("");
}

interface Seen {
  method: string;
  rpc: string | undefined;
  session: string | null;
  cookie: string | null;
  status: number;
}

/** The shim's fetch, over a base that records what each request carried and how it was answered. */
function recorded(): { fetch: FetchLike; seen: Seen[] } {
  const seen: Seen[] = [];
  const base: FetchLike = async (url, init) => {
    const response = await globalThis.fetch(url, init);
    let rpc: string | undefined;
    try {
      rpc = typeof init?.body === "string" ? JSON.parse(init.body).method : undefined;
    } catch {
      rpc = undefined;
    }
    const headers = new Headers(init?.headers);
    seen.push({
      method: init?.method ?? "GET",
      rpc,
      session: headers.get("mcp-session-id"),
      cookie: headers.get("cookie"),
      status: response.status,
    });
    return response;
  };
  return { fetch: withCookies(base), seen };
}

function lbCookie(cookie: string | null): string | undefined {
  return /(?:^|; )TETHER_LB=([^;]*)/.exec(cookie ?? "")?.[1];
}

describe("behind HAProxy pinning by cookie alone", { timeout: 60_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster({ replicas: 3, balancer: "haproxy-cookie" });
  });

  after(async () => {
    await cluster?.stop();
  });

  test("without the shim, the SDK keeps no cookie and its session is lost to round robin (404)", { timeout: 30_000 }, async () => {
    for (let i = 0; i < 3; i++) {
      const client = new Client({ name: `plain-${i}`, version: "0.0.0" });
      const transport = new StreamableHTTPClientTransport(new URL(cluster.url));
      await assert.rejects(
        async () => {
          await client.connect(transport);
          for (let k = 0; k < 5; k++) await counter(client);
        },
        (e: unknown) => {
          assert.ok(isSessionNotFound(e), `expected HTTP 404 (session not found), got ${String(e)}`);
          return true;
        },
      );
      await client.close();
    }
  });

  test("with the shim, 20 concurrent sessions keep every request on their replica: calls, progress, sampling", { timeout: 30_000 }, async () => {
    const misroutedBefore = await cluster.misrouted();
    const one = async (i: number) => {
      const { fetch, seen } = recorded();
      const { client, asked } = newClient(`shim-${i}`);
      const transport = new StreamableHTTPClientTransport(new URL(cluster.url), { fetch });
      await client.connect(transport);
      const session = transport.sessionId!;
      const replica = session.split(".")[0]!;

      for (let n = 1; n <= 3; n++) {
        assert.deepEqual(await counter(client), { count: n, replica, session });
      }

      const progress: number[] = [];
      const long = await client.callTool({ name: "long_task", arguments: { steps: 3, step_ms: 50 } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
      });
      assert.equal(text(long), "finished 3 steps");
      assert.deepEqual(progress, [1, 2, 3]);

      const asking = await client.callTool({ name: "ask_model", arguments: { question: `question ${i}` } });
      assert.equal(text(asking), `answer to question ${i}`);
      assert.deepEqual(asked, [`question ${i}`]);

      assert.deepEqual(await counter(client), { count: 4, replica, session });
      await transport.terminateSession();
      await client.close();

      // Every request of the session, the GET stream included, carried the
      // balancer's cookie naming the session's replica.
      const ofSession = seen.filter((s) => s.session === session);
      assert.ok(ofSession.some((s) => s.method === "GET"), "the GET stream was opened");
      for (const s of ofSession) {
        assert.equal(lbCookie(s.cookie), replica, `${s.method} ${s.rpc ?? ""} carried TETHER_LB=${replica}`);
        assert.ok(s.status < 400, `${s.method} ${s.rpc ?? ""} answered ${s.status}`);
      }
      return replica;
    };
    const replicas = await Promise.all(Array.from({ length: 20 }, (_, i) => one(i)));
    // The balancer did spread the sessions (so pinning was needed)...
    assert.ok(new Set(replicas).size >= 2, `sessions on ${[...new Set(replicas)].join(", ")}`);
    // ...and no replica saw a request for a session it does not own.
    assert.deepEqual(await cluster.misrouted(), misroutedBefore);
  });

  test("a session ended on the server: the call answered 404 runs again, once, on a new session", { timeout: 30_000 }, async () => {
    const { fetch, seen } = recorded();
    const events: string[] = [];
    const mcp = await connectWithRecovery(cluster.url, () => newClient("recovering-1").client, {
      fetch,
      onSessionLost: (e) => events.push(`lost ${e.sessionId}`),
      onRecovered: (e) => {
        events.push(`recovered ${e.previousSessionId} -> ${e.sessionId}`);
      },
    });
    try {
      const first = await counter(mcp);
      assert.equal(first.count, 1);
      assert.equal((await counter(mcp)).count, 2);
      const old = mcp.sessionId!;

      // End the session behind the client's back (as an idle expiry or a
      // replica restart would), on the replica that owns it.
      const transport = mcp.client.transport as StreamableHTTPClientTransport;
      const ended = await globalThis.fetch(cluster.url, {
        method: "DELETE",
        headers: {
          "mcp-session-id": old,
          "mcp-protocol-version": transport.protocolVersion ?? "2025-11-25",
          cookie: `TETHER_LB=${first.replica}`,
        },
        signal: AbortSignal.timeout(5_000),
      });
      assert.equal(ended.status, 200);

      // The application only sees the call succeed, on a new session.
      const next = await counter(mcp);
      assert.notEqual(mcp.sessionId, old);
      assert.deepEqual(next, { count: 1, replica: mcp.sessionId!.split(".")[0]!, session: mcp.sessionId! });
      assert.deepEqual(events, [`lost ${old}`, `recovered ${old} -> ${mcp.sessionId}`]);
      // It was this call's own request that got the 404, and it was retried.
      const calls = seen.filter((s) => s.rpc === "tools/call");
      assert.deepEqual(
        calls.slice(-2).map((s) => [s.session, s.status]),
        [
          [old, 404],
          [mcp.sessionId, 200],
        ],
      );
      assert.equal((await counter(mcp)).count, 2);
    } finally {
      await mcp.close();
    }
  });

  test("the pinned replica crashes: the call in flight fails with SessionLostError, the next runs on another replica", { timeout: 30_000 }, async () => {
    const events: string[] = [];
    const { fetch, seen } = recorded();
    const mcp = await connectWithRecovery(cluster.url, () => newClient("recovering-2").client, {
      fetch,
      onSessionLost: (e) => events.push(`lost ${e.sessionId}`),
      onRecovered: (e) => {
        events.push(`recovered ${e.previousSessionId} -> ${e.sessionId}`);
      },
    });
    try {
      const first = await counter(mcp);
      assert.equal((await counter(mcp)).count, 2);
      const old = mcp.sessionId!;

      let killed = false;
      const started = Date.now();
      const inFlight = mcp.callTool({ name: "long_task", arguments: { steps: 400, step_ms: 50 } }, undefined, {
        onprogress: () => {
          if (!killed) {
            killed = true;
            cluster.kill(first.replica);
          }
        },
        timeout: 30_000,
      });
      await assert.rejects(inFlight, (e: unknown) => {
        assert.ok(e instanceof SessionLostError, `expected SessionLostError, got ${String(e)}`);
        assert.equal(e.sessionId, old);
        return true;
      });
      assert.ok(killed);
      // Well before the task would have ended (20 s) or timed out (30 s).
      assert.ok(Date.now() - started < 10_000, `failed after ${Date.now() - started} ms`);

      const next = await counter(mcp);
      assert.notEqual(next.replica, first.replica);
      assert.deepEqual(next, { count: 1, replica: next.replica, session: mcp.sessionId! });
      assert.deepEqual(events, [`lost ${old}`, `recovered ${old} -> ${mcp.sessionId}`]);
      // The balancer re-pinned the client: its cookie names the new replica.
      assert.equal(lbCookie(seen.at(-1)!.cookie), next.replica);
    } finally {
      await mcp.close();
    }
  });

  test("the pinned replica crashes while the client is idle: the new session opens without a call", { timeout: 30_000 }, async () => {
    const { fetch, seen } = recorded();
    let recovered: (sessionId: string | undefined) => void = () => {};
    const recovery = new Promise<string | undefined>((resolve) => (recovered = resolve));
    const mcp = await connectWithRecovery(cluster.url, () => newClient("recovering-3").client, {
      fetch,
      onRecovered: (e) => recovered(e.sessionId),
    });
    try {
      const first = await counter(mcp);
      const old = mcp.sessionId!;
      const calls = seen.length;
      cluster.kill(first.replica);
      // The GET stream breaks; the SDK reconnects it after the server's
      // retry hint (1 s), gets the 404, and the new session opens.
      const timer = setTimeout(() => recovered("timed out"), 10_000);
      const sessionId = await recovery;
      clearTimeout(timer);
      assert.notEqual(sessionId, "timed out", "no new session within 10 s");
      assert.notEqual(sessionId, old);
      assert.equal(mcp.sessionId, sessionId);
      const opened = seen.slice(calls);
      assert.ok(!opened.some((s) => s.rpc === "tools/call"), "no call was needed");
      assert.ok(opened.some((s) => s.method === "GET" && s.session === old && s.status === 404));

      const next = await counter(mcp);
      assert.deepEqual(next, { count: 1, replica: sessionId!.split(".")[0]!, session: sessionId! });
      assert.notEqual(next.replica, first.replica);
    } finally {
      await mcp.close();
    }
  });
});
