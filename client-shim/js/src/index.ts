/**
 * tether-client-shim: lets fetch-based MCP clients (the official
 * TypeScript SDK on Node) work behind balancers that pin by cookie, and
 * recover when the session's replica is gone.
 *
 * - {@link withCookies}: a `fetch` with an RFC 6265 cookie jar, for the
 *   `fetch` option of `StreamableHTTPClientTransport`.
 * - {@link connectWithRecovery}: a client that opens a new session when
 *   its session is gone (HTTP 404) and retries what never ran.
 */

export { type CookieFetch, type CookieOptions, type FetchLike, withCookies } from "./cookies.js";
export {
  connectWithRecovery,
  isSessionNotFound,
  type RecoveredEvent,
  RecoveringClient,
  type RecoveryOptions,
  SessionLostError,
  type SessionLostEvent,
} from "./recovery.js";
export { CookieJar } from "tough-cookie";
