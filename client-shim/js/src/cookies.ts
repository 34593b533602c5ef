/**
 * A `fetch` that keeps cookies, for clients (like the official MCP SDK on
 * Node) whose `fetch` keeps none.
 *
 * Balancers that pin a client by cookie (ALB stickiness, HAProxy
 * `cookie ... insert`, tether's own `tether_route`) only work when the
 * client sends the cookie back on every request: the POSTs, the GET stream
 * and each of its reconnections. The cookie rules themselves (Domain, Path,
 * Secure, HttpOnly, Max-Age over Expires, deletion, public suffixes) are
 * RFC 6265's, applied by `tough-cookie`; this module only decides which jar
 * a request uses and moves headers in and out of it.
 */

import { type Cookie, CookieJar } from "tough-cookie";

/** The `fetch` shape the MCP SDK accepts as its `fetch` option. */
export type FetchLike = (url: string | URL, init?: RequestInit) => Promise<Response>;

/** Options of {@link withCookies}. */
export interface CookieOptions {
  /**
   * Which requests share cookies.
   *
   * - `"origin"` (default): one jar per origin (scheme, host and port).
   *   Cookies set by `http://127.0.0.1:8080` go back to it alone: not to
   *   another port of the same host (two local clusters both use the
   *   cookie name `TETHER_LB`, and would otherwise re-pin each other's
   *   sessions), not to another host (an OAuth server reached through the
   *   same `fetch`), not to `https` on the same host. Within the origin,
   *   RFC 6265 applies in full; a `Domain` attribute must still match the
   *   host, or the cookie is refused.
   * - `"domain"`: one jar for every request, with RFC 6265's own scoping:
   *   a cookie goes to every port of its host, and with `Domain=` to
   *   subdomains too.
   */
  scope?: "origin" | "domain";
  /**
   * A jar of your own (e.g. with a persistent store). It is shared by every
   * request, so it implies `scope: "domain"`.
   */
  jar?: CookieJar;
  /**
   * Treat `http://localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]` as
   * secure contexts, as browsers do, so that `Secure` cookies are stored
   * and sent on a local cluster without TLS. Default `true`. Has no effect
   * on a `jar` you pass (set `allowSecureOnLocal` on it).
   */
  localhostIsSecure?: boolean;
  /**
   * Redirects followed, one hop at a time so that each hop's cookies are
   * stored and sent, when a request asks `fetch` to follow them (the
   * default `redirect: "follow"`). Default 20, as in `fetch`. Requests with
   * `redirect: "manual"` (the MCP SDK's own) get every hop back as it is.
   */
  maxRedirects?: number;
}

/** A `fetch` with a cookie jar; pass it as the SDK transport's `fetch`. */
export interface CookieFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The cookies a request to `url` would carry now. */
  cookies(url: string | URL): Promise<Cookie[]>;
  /** Forgets every cookie. */
  clear(): Promise<void>;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers that describe a body; dropped when a redirect turns a request into a GET. */
const BODY_HEADERS = ["content-encoding", "content-language", "content-location", "content-type", "content-length"];

/**
 * Wraps `baseFetch` (default: the global `fetch`) with a cookie jar: each
 * request carries the cookies stored for its URL (after any `Cookie` header
 * of its own), and each response's `Set-Cookie` headers are stored before
 * the response is returned, so the next request (however soon) has them.
 *
 * ```ts
 * const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: withCookies() });
 * ```
 *
 * Cookies that RFC 6265 says to refuse (a `Domain` that does not match the
 * host, a public suffix, `Secure` over plain http outside localhost) are
 * ignored without an error. `SameSite` is not enforced: there is no
 * browsing context, every request is the client's own.
 */
export function withCookies(baseFetch?: FetchLike, options: CookieOptions = {}): CookieFetch {
  const base: FetchLike = baseFetch ?? ((url, init) => globalThis.fetch(url, init));
  const scope = options.scope ?? (options.jar ? "domain" : "origin");
  if (options.jar && scope !== "domain") {
    throw new TypeError('withCookies: a shared `jar` implies scope "domain"');
  }
  const maxRedirects = options.maxRedirects ?? 20;
  const newJar = () => new CookieJar(undefined, { allowSecureOnLocal: options.localhostIsSecure ?? true });
  let shared = scope === "domain" ? (options.jar ?? newJar()) : undefined;
  const byOrigin = new Map<string, CookieJar>();

  /** The jar of `url`, or none for schemes cookies do not apply to. */
  function jarOf(url: URL): CookieJar | undefined {
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    if (shared) return shared;
    let jar = byOrigin.get(url.origin);
    if (!jar) {
      jar = newJar();
      byOrigin.set(url.origin, jar);
    }
    return jar;
  }

  async function cookieHeader(url: URL): Promise<string> {
    return (await jarOf(url)?.getCookieString(url.href)) ?? "";
  }

  async function store(url: URL, response: Response): Promise<void> {
    const jar = jarOf(url);
    if (!jar) return;
    // In order: a later header for the same cookie wins.
    for (const line of setCookieLines(response.headers)) {
      await jar.setCookie(line, url.href, { ignoreError: true });
    }
  }

  /** One request, one response: cookies in, cookies out. */
  async function hop(input: string | URL | Request, url: URL, init: RequestInit | undefined, own: string | null) {
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    const cookie = [own, await cookieHeader(url)].filter(Boolean).join("; ");
    if (cookie) headers.set("cookie", cookie);
    else headers.delete("cookie");
    const response = await base(input as string | URL, { ...init, headers });
    // A base fetch that followed redirects itself reports where it ended.
    await store(response.url ? new URL(response.url) : url, response);
    return response;
  }

  async function follow(start: URL, init: RequestInit, own: string | null): Promise<Response> {
    let url = start;
    let method = (init.method ?? "GET").toUpperCase();
    let body = init.body;
    const headers = new Headers(init.headers);
    for (let hops = 0; ; hops++) {
      const response = await hop(url.href, url, { ...init, method, body, headers, redirect: "manual" },
        // The caller's own Cookie header is for the origin it asked for.
        url.origin === start.origin ? own : null);
      const location = REDIRECT_STATUSES.has(response.status) ? response.headers.get("location") : null;
      if (location === null) return response;
      await response.body?.cancel();
      if (hops >= maxRedirects) throw new TypeError(`fetch failed: more than ${maxRedirects} redirects`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new TypeError(`fetch failed: invalid redirect location ${JSON.stringify(location)}`);
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") {
        throw new TypeError(`fetch failed: redirect to a ${next.protocol} URL`);
      }
      // The fetch standard's HTTP-redirect fetch, steps 12 and 13.
      if (((response.status === 301 || response.status === 302) && method === "POST") ||
          (response.status === 303 && method !== "GET" && method !== "HEAD")) {
        method = "GET";
        body = null;
        for (const name of BODY_HEADERS) headers.delete(name);
      }
      if (next.origin !== url.origin) headers.delete("authorization");
      url = next;
    }
  }

  const cookieFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (input instanceof Request) {
      // A Request's body is a stream that cannot be sent twice: redirects,
      // if any, are left to the base fetch.
      const own = new Headers(init?.headers ?? input.headers).get("cookie");
      return hop(input, new URL(input.url), init, own);
    }
    const url = new URL(input);
    const own = new Headers(init?.headers).get("cookie");
    const mode = init?.redirect ?? "follow";
    if (mode !== "follow" || !replayable(init?.body)) {
      return hop(input, url, init, own);
    }
    return follow(url, init ?? {}, own);
  };

  return Object.assign(cookieFetch, {
    async cookies(url: string | URL): Promise<Cookie[]> {
      const u = new URL(url);
      return (await jarOf(u)?.getCookies(u.href)) ?? [];
    },
    async clear(): Promise<void> {
      byOrigin.clear();
      if (shared) {
        if (options.jar) await options.jar.removeAllCookies();
        else shared = newJar();
      }
    },
  });
}

/** Every `Set-Cookie` header of a response, one cookie each. */
function setCookieLines(headers: Headers): string[] {
  // Node >= 19.7 and every fetch-standard Headers; a single combined
  // header cannot be split reliably (Expires has a comma).
  if (typeof headers.getSetCookie === "function") return headers.getSetCookie();
  const one = headers.get("set-cookie");
  return one ? [one] : [];
}

/** Whether a body can be sent again on the next hop of a redirect. */
function replayable(body: RequestInit["body"]): boolean {
  return body === undefined || body === null || typeof body === "string" ||
    body instanceof URLSearchParams || body instanceof ArrayBuffer || ArrayBuffer.isView(body) ||
    body instanceof Blob || body instanceof FormData;
}
