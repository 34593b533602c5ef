// Unit tests of the cookie jar fetch: RFC 6265 rules as a balancer's
// client meets them, against a scripted base fetch (and, where Node's own
// fetch matters, a real HTTP server on loopback).

import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CookieJar, type CookieOptions, type FetchLike, withCookies } from "../src/index.js";

/** A shimmed fetch over a base that records the Cookie header it gets and answers the Set-Cookie lines it is told. */
function harness(options?: CookieOptions) {
  let next: string[] = [];
  const sent: (string | null)[] = [];
  const base: FetchLike = async (_url, init) => {
    sent.push(new Headers(init?.headers).get("cookie"));
    const headers = new Headers();
    for (const line of next) headers.append("set-cookie", line);
    next = [];
    return new Response(null, { headers });
  };
  const fetch = withCookies(base, options);
  return {
    fetch,
    /** A response from `url` sets `lines`. */
    async set(url: string, ...lines: string[]) {
      next = lines;
      await fetch(url);
    },
    /** The cookies a request to `url` carries, sorted. */
    async sent(url: string): Promise<string[]> {
      await fetch(url);
      return pairs(sent.at(-1) ?? null);
    },
  };
}

function pairs(header: string | null): string[] {
  return header ? header.split("; ").sort() : [];
}

/** A loopback HTTP server; `handler` answers, `requests` records what came. */
async function server(handler: http.RequestListener) {
  const requests: { method: string; path: string; cookie: string | undefined; body: string }[] = [];
  const srv = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", cookie: req.headers.cookie, body });
      handler(req, res);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { base, requests, close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

describe("withCookies", () => {
  test("cookies of several balancer layers in one response all go back, from Node's own fetch", async () => {
    // ALB stickiness (AWSALB, and AWSALBCORS for CORS requests), HAProxy's
    // inserted cookie, and the replica's own tether_route.
    const srv = await server((req, res) => {
      if (req.url === "/mcp" && req.method === "POST") {
        res.setHeader("set-cookie", [
          "AWSALB=alb-ticket; Expires=Tue, 01 Jan 2036 00:00:00 GMT; Path=/",
          "AWSALBCORS=alb-ticket; Expires=Tue, 01 Jan 2036 00:00:00 GMT; Path=/; SameSite=None; Secure",
          "TETHER_LB=r2; path=/; HttpOnly",
          "tether_route=r2; Path=/; HttpOnly; SameSite=Lax",
        ]);
      }
      res.end("{}");
    });
    try {
      const fetch = withCookies();
      const first = await fetch(`${srv.base}/mcp`, { method: "POST", body: "{}" });
      await first.text();
      const second = await fetch(`${srv.base}/mcp`, { method: "GET" });
      await second.text();
      assert.equal(srv.requests[0]?.cookie, undefined);
      // Secure AWSALBCORS too: 127.0.0.1 is a secure context.
      assert.deepEqual(pairs(srv.requests[1]?.cookie ?? null), [
        "AWSALB=alb-ticket",
        "AWSALBCORS=alb-ticket",
        "TETHER_LB=r2",
        "tether_route=r2",
      ]);
      // A later Set-Cookie for the same name and path replaces the value.
      assert.deepEqual(
        (await fetch.cookies(`${srv.base}/mcp`)).map((c) => c.key).sort(),
        ["AWSALB", "AWSALBCORS", "TETHER_LB", "tether_route"],
      );
    } finally {
      await srv.close();
    }
  });

  test("Path: a cookie goes to its path and below, and defaults to the directory of the URL", async () => {
    const h = harness();
    await h.set("http://lb.example.com/mcp", "a=1; Path=/mcp");
    await h.set("http://lb.example.com/api/v1/login", "b=2");
    assert.deepEqual(await h.sent("http://lb.example.com/mcp"), ["a=1"]);
    assert.deepEqual(await h.sent("http://lb.example.com/mcp/deeper"), ["a=1"]);
    assert.deepEqual(await h.sent("http://lb.example.com/mcpx"), []);
    assert.deepEqual(await h.sent("http://lb.example.com/"), []);
    assert.deepEqual(await h.sent("http://lb.example.com/api/v1/other"), ["b=2"]);
    assert.deepEqual(await h.sent("http://lb.example.com/api/v2"), []);
  });

  test("Domain: must match the host; a public suffix or another domain is refused", async () => {
    const h = harness();
    await h.set(
      "https://a.example.com/mcp",
      "wide=1; Domain=example.com; Path=/",
      "own=2; Path=/",
      "foreign=3; Domain=other.com; Path=/",
      "suffix=4; Domain=com; Path=/",
    );
    assert.deepEqual(await h.sent("https://a.example.com/mcp"), ["own=2", "wide=1"]);
    // scope "origin" (the default): b.example.com is another origin.
    assert.deepEqual(await h.sent("https://b.example.com/mcp"), []);
    assert.deepEqual(await h.sent("https://other.com/mcp"), []);

    // scope "domain": RFC 6265 as written.
    const d = harness({ scope: "domain" });
    await d.set("https://a.example.com/mcp", "wide=1; Domain=example.com; Path=/", "own=2; Path=/",
      "foreign=3; Domain=other.com; Path=/", "suffix=4; Domain=com; Path=/");
    assert.deepEqual(await d.sent("https://b.example.com/mcp"), ["wide=1"]);
    assert.deepEqual(await d.sent("https://example.com/mcp"), ["wide=1"]);
    // A host-only cookie is not sent to subdomains of its host.
    assert.deepEqual(await d.sent("https://x.a.example.com/mcp"), ["wide=1"]);
    assert.deepEqual(await d.sent("https://other.com/mcp"), []);
    assert.deepEqual(await d.sent("https://com/mcp"), []);
  });

  test("Secure: only over https, except on localhost and loopback addresses", async () => {
    const h = harness({ scope: "domain" });
    // Refused when set over plain http by a remote host...
    await h.set("http://lb.example.com/mcp", "s=1; Secure; Path=/");
    assert.deepEqual(await h.sent("http://lb.example.com/mcp"), []);
    assert.deepEqual(await h.sent("https://lb.example.com/mcp"), []);
    // ...kept over https, and never sent back over http.
    await h.set("https://lb.example.com/mcp", "s=2; Secure; Path=/");
    assert.deepEqual(await h.sent("https://lb.example.com/mcp"), ["s=2"]);
    assert.deepEqual(await h.sent("http://lb.example.com/mcp"), []);

    // Local clusters without TLS: browsers treat these as secure contexts.
    for (const origin of ["http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080", "http://mcp.localhost:8080"]) {
      const l = harness();
      await l.set(`${origin}/mcp`, "AWSALBCORS=t; Secure; SameSite=None; Path=/", "__Secure-id=x; Secure; Path=/");
      assert.deepEqual(await l.sent(`${origin}/mcp`), ["AWSALBCORS=t", "__Secure-id=x"], origin);
    }
    // Unless told otherwise.
    const strict = harness({ localhostIsSecure: false });
    await strict.set("http://127.0.0.1:8080/mcp", "s=1; Secure; Path=/", "plain=1; Path=/");
    assert.deepEqual(await strict.sent("http://127.0.0.1:8080/mcp"), ["plain=1"]);
    // 127.0.0.2 is loopback too; 10.0.0.1 is not.
    const lan = harness();
    await lan.set("http://127.0.0.2:8080/mcp", "s=1; Secure; Path=/");
    await lan.set("http://10.0.0.1:8080/mcp", "s=1; Secure; Path=/");
    assert.deepEqual(await lan.sent("http://127.0.0.2:8080/mcp"), ["s=1"]);
    assert.deepEqual(await lan.sent("http://10.0.0.1:8080/mcp"), []);
  });

  test("Max-Age wins over Expires; both expire a cookie", async (t) => {
    const start = Date.parse("2030-01-01T00:00:00Z");
    t.mock.timers.enable({ apis: ["Date"], now: start });
    const h = harness();
    const url = "http://127.0.0.1:8080/mcp";
    const inAnHour = new Date(start + 3_600_000).toUTCString();
    const anHourAgo = new Date(start - 3_600_000).toUTCString();
    await h.set(url,
      // Max-Age=60 and a later Expires: gone after 60 s.
      `short=1; Max-Age=60; Expires=${inAnHour}; Path=/`,
      // Max-Age=7200 and an Expires already past: kept (Max-Age wins).
      `long=1; Max-Age=7200; Expires=${anHourAgo}; Path=/`,
      // Expires alone: gone after an hour.
      `dated=1; Expires=${inAnHour}; Path=/`,
      // Neither: a session cookie, kept as long as the jar.
      "session=1; Path=/",
    );
    assert.deepEqual(await h.sent(url), ["dated=1", "long=1", "session=1", "short=1"]);
    t.mock.timers.tick(61_000);
    assert.deepEqual(await h.sent(url), ["dated=1", "long=1", "session=1"]);
    t.mock.timers.tick(3_600_000);
    assert.deepEqual(await h.sent(url), ["long=1", "session=1"]);
    t.mock.timers.tick(7_200_000);
    assert.deepEqual(await h.sent(url), ["session=1"]);
  });

  test("deletion: Max-Age=0, an Expires in the past, and replacement by name and path", async () => {
    const h = harness();
    const url = "http://127.0.0.1:8080/mcp";
    await h.set(url, "a=1; Path=/", "b=1; Path=/", "c=1; Path=/", "c=2; Path=/mcp");
    assert.deepEqual(await h.sent(url), ["a=1", "b=1", "c=1", "c=2"]);
    await h.set(url, "a=; Max-Age=0; Path=/", "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/", "c=3; Path=/mcp");
    // c=1 (Path=/) is another cookie than c (Path=/mcp): only the latter changed.
    assert.deepEqual(await h.sent(url), ["c=1", "c=3"]);
    // Deleting with the wrong path deletes nothing.
    await h.set(url, "c=; Max-Age=0; Path=/other");
    assert.deepEqual(await h.sent(url), ["c=1", "c=3"]);
  });

  test("origin scoping: another port, scheme or host gets none of the cookies", async () => {
    const h = harness();
    // Two local clusters both pin with TETHER_LB.
    await h.set("http://127.0.0.1:8080/mcp", "TETHER_LB=r1; Path=/");
    await h.set("http://127.0.0.1:9090/mcp", "TETHER_LB=r3; Path=/");
    assert.deepEqual(await h.sent("http://127.0.0.1:8080/mcp"), ["TETHER_LB=r1"]);
    assert.deepEqual(await h.sent("http://127.0.0.1:9090/mcp"), ["TETHER_LB=r3"]);
    assert.deepEqual(await h.sent("https://127.0.0.1:8080/mcp"), []);
    assert.deepEqual(await h.sent("http://localhost:8080/mcp"), []);
    assert.deepEqual(await h.sent("http://auth.example.com/token"), []);
    // Default ports are the same origin, written or not.
    await h.set("https://lb.example.com/mcp", "x=1; Path=/");
    assert.deepEqual(await h.sent("https://lb.example.com:443/mcp"), ["x=1"]);

    // scope "domain": RFC 6265 does not separate ports, so the second
    // cluster's cookie replaces the first's.
    const d = harness({ scope: "domain" });
    await d.set("http://127.0.0.1:8080/mcp", "TETHER_LB=r1; Path=/");
    await d.set("http://127.0.0.1:9090/mcp", "TETHER_LB=r3; Path=/");
    assert.deepEqual(await d.sent("http://127.0.0.1:8080/mcp"), ["TETHER_LB=r3"]);
  });

  test("a jar of your own is used for every request", async () => {
    const jar = new CookieJar();
    await jar.setCookie("pre=1; Path=/", "http://127.0.0.1:8080/");
    const h = harness({ jar });
    assert.deepEqual(await h.sent("http://127.0.0.1:8080/mcp"), ["pre=1"]);
    await h.set("http://127.0.0.1:8080/mcp", "got=1; Path=/");
    assert.equal(await jar.getCookieString("http://127.0.0.1:8080/"), "pre=1; got=1");
    await h.fetch.clear();
    assert.equal(await jar.getCookieString("http://127.0.0.1:8080/"), "");
    assert.throws(() => withCookies(undefined, { jar, scope: "origin" }), TypeError);
  });

  test("the caller's own Cookie header is kept, before the jar's", async () => {
    const sent: (string | null)[] = [];
    const fetch = withCookies(async (_url, init) => {
      sent.push(new Headers(init?.headers).get("cookie"));
      return new Response(null, { headers: [["set-cookie", "lb=1; Path=/"]] });
    });
    await fetch("http://127.0.0.1:8080/mcp", { headers: { Cookie: "mine=1" } });
    await fetch("http://127.0.0.1:8080/mcp", { headers: new Headers({ cookie: "mine=1" }) });
    await fetch(new Request("http://127.0.0.1:8080/mcp", { headers: { cookie: "req=1" } }));
    assert.deepEqual(sent, ["mine=1", "mine=1; lb=1", "req=1; lb=1"]);
    await fetch.clear();
    await fetch("http://127.0.0.1:8080/mcp");
    assert.equal(sent.at(-1), null);
  });

  describe("redirects", () => {
    let srv: Awaited<ReturnType<typeof server>>;
    before(async () => {
      srv = await server((req, res) => {
        const url = new URL(req.url ?? "/", "http://x");
        if (url.pathname === "/login") {
          // A gateway in front of the balancer: sets a cookie, then redirects.
          res.writeHead(Number(url.searchParams.get("status") ?? 302), {
            location: "/mcp",
            "set-cookie": "gateway=ok; Path=/; HttpOnly",
          });
          res.end();
        } else if (url.pathname === "/loop") {
          res.writeHead(302, { location: "/loop" });
          res.end();
        } else {
          res.end(`${req.method} ${req.headers.cookie ?? ""}`);
        }
      });
    });
    after(() => srv.close());

    test("are followed hop by hop, so each hop's cookies are stored and sent", async () => {
      const fetch = withCookies();
      const res = await fetch(`${srv.base}/login`);
      assert.equal(await res.text(), "GET gateway=ok");
      assert.equal(res.url, `${srv.base}/mcp`);
      // 307 keeps the method and the body; 302 turns a POST into a GET.
      const kept = await fetch(`${srv.base}/login?status=307`, { method: "POST", body: '{"a":1}' });
      assert.equal(await kept.text(), "POST gateway=ok");
      assert.equal(srv.requests.at(-1)?.body, '{"a":1}');
      const changed = await fetch(`${srv.base}/login?status=302`, { method: "POST", body: "x" });
      assert.equal(await changed.text(), "GET gateway=ok");
      await assert.rejects(fetch(`${srv.base}/loop`), /more than 20 redirects/);
    });

    test("redirect: manual (the SDK's own) returns the redirect, with its cookies stored", async () => {
      const fetch = withCookies();
      const res = await fetch(`${srv.base}/login`, { redirect: "manual" });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("location"), "/mcp");
      assert.deepEqual((await fetch.cookies(`${srv.base}/mcp`)).map((c) => c.cookieString()), ["gateway=ok"]);
    });
  });

  test("the SDK transport sends the cookies on every request: POSTs, the GET stream and its reconnections, DELETE", async () => {
    const seen: { method: string; cookie: string | null; lastEventId: string | null }[] = [];
    let gets = 0;
    const fakeReplica: FetchLike = async (_url, init) => {
      const headers = new Headers(init?.headers);
      const method = init?.method ?? "GET";
      seen.push({ method, cookie: headers.get("cookie"), lastEventId: headers.get("last-event-id") });
      if (method === "POST") {
        const msg = JSON.parse(String(init?.body));
        if (msg.method === "initialize") {
          return new Response(
            JSON.stringify({
              jsonrpc: "2.0",
              id: msg.id,
              result: { protocolVersion: msg.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "fake", version: "0" } },
            }),
            {
              headers: [
                ["content-type", "application/json"],
                ["mcp-session-id", "r2.0123456789abcdef"],
                ["set-cookie", "TETHER_LB=r2; path=/; HttpOnly"],
                ["set-cookie", "tether_route=r2; Path=/; HttpOnly; SameSite=Lax"],
              ],
            },
          );
        }
        if (msg.id === undefined) return new Response(null, { status: 202 });
        return new Response(JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: { tools: [] } }), {
          headers: { "content-type": "application/json" },
        });
      }
      if (method === "GET") {
        gets += 1;
        // The first two streams end at once, with a short retry hint: the
        // SDK reconnects, resuming from the last event id.
        if (gets > 3) return new Response(null, { status: 405 });
        return new Response(`retry: 5\nid: ${gets}\ndata: \n\n`, { headers: { "content-type": "text/event-stream" } });
      }
      return new Response(null, { status: 200 });
    };
    const transport = new StreamableHTTPClientTransport(new URL("http://127.0.0.1:1/mcp"), {
      fetch: withCookies(fakeReplica),
      reconnectionOptions: { initialReconnectionDelay: 5, maxReconnectionDelay: 5, reconnectionDelayGrowFactor: 1, maxRetries: 5 },
    });
    const client = new Client({ name: "t", version: "0" });
    await client.connect(transport);
    await client.listTools();
    const deadline = Date.now() + 5_000;
    while (gets < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await transport.terminateSession();
    await client.close();

    assert.equal(seen[0]?.cookie, null, "initialize goes out without cookies");
    const rest = seen.slice(1);
    assert.deepEqual([...new Set(rest.map((r) => r.method))].sort(), ["DELETE", "GET", "POST"]);
    for (const r of rest) assert.deepEqual(pairs(r.cookie), ["TETHER_LB=r2", "tether_route=r2"], `${r.method} carried the cookies`);
    const resumed = rest.filter((r) => r.method === "GET" && r.lastEventId !== null);
    assert.ok(resumed.length >= 2, `the GET stream reconnected with Last-Event-ID (${JSON.stringify(seen)})`);
  });
});
