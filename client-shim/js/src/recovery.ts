/**
 * Ready-made recovery for a session that is gone.
 *
 * A replica keeps its sessions in memory. When it crashes, restarts or
 * expires a session, the next request naming that session gets HTTP 404
 * ("session not found"), and the spec says the client must start a new
 * session. {@link connectWithRecovery} does that for the application: it
 * watches every response for a 404 to a request that carried the current
 * `Mcp-Session-Id` (a POST or the GET stream), opens a new session through
 * the same cookie jar, and retries, once, the calls that the 404 proves
 * were never run: a replica answers 404 before it runs anything.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  StreamableHTTPClientTransport,
  type StreamableHTTPClientTransportOptions,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { type FetchLike, withCookies } from "./cookies.js";

/** Options of {@link connectWithRecovery}. */
export interface RecoveryOptions {
  /**
   * The `fetch` every session uses. Default: `withCookies()`, one cookie
   * jar for the life of the {@link RecoveringClient}, so that the cookies
   * of the balancer (and of anything in front of it, e.g. an auth proxy)
   * carry over to the new session; the balancer re-pins the client itself
   * when the replica its cookie names is down.
   */
  fetch?: FetchLike;
  /** Passed to every `StreamableHTTPClientTransport` (not `fetch` nor `sessionId`). */
  transportOptions?: Omit<StreamableHTTPClientTransportOptions, "fetch" | "sessionId">;
  /** Bound on opening a session (initialize and its notification), per attempt. Default 30 000 ms. */
  connectTimeoutMs?: number;
  /**
   * Attempts at opening a new session whose own first requests are
   * answered 404. That happens when a late response to the lost session
   * re-pins the client's balancer cookie while the new session opens (a
   * balancer that redispatched a request of the lost session inserts a
   * cookie naming where it went). Default 3.
   */
  openAttempts?: number;
  /** Bound on the DELETE that {@link RecoveringClient.close} sends. Default 5 000 ms. */
  closeTimeoutMs?: number;
  /** A session was found gone (called once per session, as soon as the 404 arrives). */
  onSessionLost?: (event: SessionLostEvent) => void;
  /**
   * A new session replaced a lost one. Awaited before any call waiting for
   * it is sent: the place to set up session state again (logging level,
   * resource subscriptions), since the new session starts empty.
   */
  onRecovered?: (event: RecoveredEvent) => void | Promise<void>;
  /** A recovery started in the background (by a 404 on the GET stream) failed. */
  onError?: (error: unknown) => void;
}

export interface SessionLostEvent {
  /** The session that is gone. */
  sessionId: string;
}

export interface RecoveredEvent {
  previousSessionId: string | undefined;
  sessionId: string | undefined;
  /** The new session's client, from your factory. */
  client: Client;
}

/**
 * A request was in flight on a session that was then lost (its replica
 * crashed, say): its answer will never come, and the request may or may
 * not have run. It is not retried; a new session opens for the next one.
 */
export class SessionLostError extends Error {
  override readonly name = "SessionLostError";
  constructor(
    /** The lost session. */
    readonly sessionId: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `MCP session ${sessionId ?? "(none)"} was lost while this request was in flight; ` +
        "it may or may not have run on the server",
      options,
    );
  }
}

/**
 * Whether `error` is the SDK's error for an HTTP 404 ("session not found"),
 * as a plain `Client` on `StreamableHTTPClientTransport` throws it.
 */
export function isSessionNotFound(error: unknown): boolean {
  if (error instanceof StreamableHTTPError) return error.code === 404;
  // Another copy of the SDK: same shape, another class.
  return error instanceof Error && (error as { code?: unknown }).code === 404 &&
    error.message.startsWith("Streamable HTTP error");
}

/**
 * Connects a client from `clientFactory` to `url` and keeps it connected
 * across lost sessions. The factory is called again for each new session:
 * declare capabilities and set request handlers (sampling, elicitation,
 * roots) and notification handlers there, not on `client` afterwards.
 *
 * ```ts
 * const mcp = await connectWithRecovery(url, () => new Client({ name: "app", version: "1.0.0" }));
 * const result = await mcp.callTool({ name: "counter", arguments: {} });
 * ```
 */
export async function connectWithRecovery(
  url: string | URL,
  clientFactory: () => Client,
  options: RecoveryOptions = {},
): Promise<RecoveringClient> {
  const rc = new RecoveringClient(new URL(url), clientFactory, options);
  await rc.start();
  return rc;
}

interface Connection {
  client: Client;
  transport: StreamableHTTPClientTransport;
  sessionId: string | undefined;
  /** A 404 named this session: it is gone for good. */
  lost: boolean;
}

/**
 * An MCP client whose session is re-created when it is lost. What the
 * application sees when the session is gone:
 *
 * - the first 404 to a request naming the session (a call's POST, or the
 *   SDK resuming a broken stream with GET) marks it lost: `onSessionLost`
 *   is called, the session's client is closed, and a new session opens at
 *   once, in the background if no call is waiting (so the GET stream, and
 *   server notifications, come back without a call);
 * - a call whose own request was answered 404 was never run: it is sent
 *   again, once, on the new session, and returns (or throws) as that
 *   second attempt does;
 * - any other call in flight on the lost session (its response stream
 *   broke, and the SDK's attempt to resume it got the 404) rejects with
 *   {@link SessionLostError} at that moment, not after its timeout: it may
 *   or may not have run, so it is not retried;
 * - calls made while the new session opens wait for it; `onRecovered` is
 *   called (and awaited) once it is open, before they are sent;
 * - the session's state on the server (e.g. the demo `counter`) starts
 *   anew, on whichever replica the balancer picks;
 * - if the new session cannot be opened, the waiting calls reject with
 *   that error (background attempts report it to `onError`), and the next
 *   call tries again.
 */
export class RecoveringClient {
  private conn: Connection | undefined;
  private opening: Promise<Connection> | undefined;
  private closed = false;
  private readonly fetch: FetchLike;
  /** The call (of {@link run}) a request belongs to, if any. */
  private readonly calls = new AsyncLocalStorage<Attempt | undefined>();

  /** Use {@link connectWithRecovery}. */
  constructor(
    private readonly url: URL,
    private readonly clientFactory: () => Client,
    private readonly options: RecoveryOptions = {},
  ) {
    const base = options.fetch ?? withCookies();
    this.fetch = async (input, init) => {
      const sessionId = new Headers(init?.headers).get("mcp-session-id");
      const response = await base(input, init);
      if (response.status !== 404 || !sessionId || init?.method === "DELETE") return response;
      // The call's own request (not the GET resuming its stream, nor an
      // answer to a server request): never run.
      const attempt = this.calls.getStore();
      if (attempt && init?.method === "POST" && carriesRequest(init.body)) attempt.notRun = true;
      // Read the (small) body before closing the lost session's transport
      // aborts it: the SDK's error then says what the server said.
      const body = await response.arrayBuffer().catch(() => new ArrayBuffer(0));
      this.sessionGone(sessionId);
      return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    };
  }

  /** The current session's client. It changes when a session is replaced. */
  get client(): Client {
    if (!this.conn) throw new Error("RecoveringClient: not connected");
    return this.conn.client;
  }

  /** The current session's id. */
  get sessionId(): string | undefined {
    return this.conn?.sessionId;
  }

  /** @internal Opens the first session. */
  async start(): Promise<void> {
    this.conn = await this.openAttempts();
  }

  /**
   * Runs `fn` (one request, e.g. `c => c.callTool(...)`) on the current
   * session. If its request is answered 404, a new session is opened and
   * `fn` runs once more, on it. See the class documentation.
   */
  async run<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const conn = await this.current();
    const first: Attempt = { notRun: false };
    try {
      return await this.calls.run(first, () => fn(conn.client));
    } catch (error) {
      if (!first.notRun || this.closed) throw this.lostOr(conn, error);
      const next = await this.recover(conn);
      try {
        return await this.calls.run({ notRun: false }, () => fn(next.client));
      } catch (again) {
        throw this.lostOr(next, again);
      }
    }
  }

  callTool(...args: Parameters<Client["callTool"]>): ReturnType<Client["callTool"]> {
    return this.run((c) => c.callTool(...args));
  }

  listTools(...args: Parameters<Client["listTools"]>): ReturnType<Client["listTools"]> {
    return this.run((c) => c.listTools(...args));
  }

  listResources(...args: Parameters<Client["listResources"]>): ReturnType<Client["listResources"]> {
    return this.run((c) => c.listResources(...args));
  }

  readResource(...args: Parameters<Client["readResource"]>): ReturnType<Client["readResource"]> {
    return this.run((c) => c.readResource(...args));
  }

  listPrompts(...args: Parameters<Client["listPrompts"]>): ReturnType<Client["listPrompts"]> {
    return this.run((c) => c.listPrompts(...args));
  }

  getPrompt(...args: Parameters<Client["getPrompt"]>): ReturnType<Client["getPrompt"]> {
    return this.run((c) => c.getPrompt(...args));
  }

  ping(...args: Parameters<Client["ping"]>): ReturnType<Client["ping"]> {
    return this.run((c) => c.ping(...args));
  }

  /**
   * Ends the session (DELETE, bounded by `closeTimeoutMs`) and closes the
   * client. Calls still in flight reject.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const conn = this.opening ? await this.opening.catch(() => this.conn) : this.conn;
    if (conn) await this.end(conn);
  }

  /** DELETE (unless the session is known gone), then close. */
  private async end(conn: Connection): Promise<void> {
    if (!conn.lost) {
      await bounded(conn.transport.terminateSession(), this.options.closeTimeoutMs ?? 5_000).catch(() => {});
    }
    await conn.client.close();
  }

  private async current(): Promise<Connection> {
    if (this.closed) throw new Error("RecoveringClient: closed");
    if (this.opening) return this.opening;
    const conn = this.conn;
    if (!conn) throw new Error("RecoveringClient: not connected");
    return conn.lost ? this.recover(conn) : conn;
  }

  /** A 404 answered a request that named `sessionId`. */
  private sessionGone(sessionId: string): void {
    const conn = this.conn;
    if (!conn || conn.lost || this.closed || conn.sessionId !== sessionId) return;
    conn.lost = true;
    this.options.onSessionLost?.({ sessionId });
    // At once, not at the next call: the new session's GET stream brings
    // server notifications again.
    this.recover(conn).catch((e) => {
      if (!this.closed) this.options.onError?.(e);
    });
  }

  /** The session after `lost`: opens it, or joins the opening under way. */
  private recover(lost: Connection): Promise<Connection> {
    if (this.conn !== lost) return this.current();
    lost.lost = true;
    if (!this.opening) {
      // Closing first fails the lost session's calls still waiting
      // (SessionLostError), and aborts its requests and its GET stream's
      // reconnection attempts, whose late answers could re-pin the cookie.
      const closing = lost.client.close().catch(() => {});
      // Outside the call that found the loss: the new session's requests
      // are no part of it.
      this.opening = this.calls.run(undefined, async () => {
        try {
          await closing;
          const next = await this.openAttempts();
          if (this.closed) {
            await this.end(next);
            throw new Error("RecoveringClient: closed");
          }
          this.conn = next;
          await this.options.onRecovered?.({
            previousSessionId: lost.sessionId,
            sessionId: next.sessionId,
            client: next.client,
          });
          return next;
        } finally {
          this.opening = undefined;
        }
      });
    }
    return this.opening;
  }

  private async openAttempts(): Promise<Connection> {
    const attempts = Math.max(1, this.options.openAttempts ?? 3);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.open();
      } catch (error) {
        if (!isSessionNotFound(error) || attempt >= attempts || this.closed) throw error;
      }
    }
  }

  private async open(): Promise<Connection> {
    const client = this.clientFactory();
    const transport = new StreamableHTTPClientTransport(this.url, {
      ...this.options.transportOptions,
      fetch: this.fetch,
    });
    const limit = this.options.connectTimeoutMs ?? 30_000;
    try {
      await bounded(client.connect(transport, { timeout: limit }), limit);
    } catch (error) {
      await client.close().catch(() => {});
      throw error;
    }
    return { client, transport, sessionId: transport.sessionId, lost: false };
  }

  /** `error` as the application should see it, given the session it came from. */
  private lostOr(conn: Connection, error: unknown): unknown {
    const closedUnderfoot =
      (error instanceof McpError && error.code === ErrorCode.ConnectionClosed) ||
      (error instanceof Error && error.name === "AbortError");
    return conn.lost && closedUnderfoot ? new SessionLostError(conn.sessionId, { cause: error }) : error;
  }
}

interface Attempt {
  /** One of its requests was answered 404: the server never ran it. */
  notRun: boolean;
}

/** Whether a POST body holds a JSON-RPC request (not only notifications or responses). */
function carriesRequest(body: RequestInit["body"]): boolean {
  if (typeof body !== "string") return false;
  try {
    const parsed: unknown = JSON.parse(body);
    const messages: unknown[] = Array.isArray(parsed) ? parsed : [parsed];
    return messages.some((m) => {
      const { method, id } = (m ?? {}) as { method?: unknown; id?: unknown };
      return typeof method === "string" && id !== undefined && id !== null;
    });
  } catch {
    return false;
  }
}

/** `promise`, or a rejection after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
