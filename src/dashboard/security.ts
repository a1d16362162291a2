// Who may use the dashboard, and proof that an action came from one of its own pages.
//
// Authentication is a shared token or basic-auth credentials, compared in constant time. A
// browser given the token once (?token=...) keeps it in an HttpOnly, SameSite=Strict cookie.
//
// Cross-site requests: every action is a POST, and a POST must pass two checks. hono's csrf()
// refuses a form sent from another site (by Sec-Fetch-Site, or failing that by Origin, compared by
// host so that a TLS-terminating proxy does not break it), and the form must carry this session's
// token: an HMAC of the session cookie under a key that lives only in this process.
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";

export type DashboardAuth = { token: string } | { basic: { user: string; password: string } };

const SESSION_COOKIE = "pgq_session";
const TOKEN_COOKIE = "pgq_token";

function same(a: string, b: string): boolean {
  // Digests first: timingSafeEqual needs equal lengths, and the length must not leak either.
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

/** null when the request may go on; otherwise the response that refuses it. */
export function authenticate(c: Context, auth: DashboardAuth | undefined, cookiePath: string): Response | null {
  if (!auth) return null;
  if ("token" in auth) {
    const bearer = /^Bearer (.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
    const cookie = getCookie(c, TOKEN_COOKIE);
    if ((bearer !== undefined && same(bearer, auth.token)) || (cookie !== undefined && same(cookie, auth.token))) return null;
    const given = c.req.query("token");
    if (c.req.method === "GET" && given !== undefined && same(given, auth.token)) {
      setCookie(c, TOKEN_COOKIE, auth.token, { httpOnly: true, sameSite: "Strict", path: cookiePath });
      const url = new URL(c.req.url);
      url.searchParams.delete("token");
      return c.redirect(url.pathname + url.search, 303);
    }
    return c.text("pgq dashboard: a token is needed: open the URL `pgq dashboard` printed, or send Authorization: Bearer <token>\n", 401);
  }
  const basic = /^Basic (.+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (basic !== undefined) {
    const decoded = Buffer.from(basic, "base64").toString();
    const colon = decoded.indexOf(":");
    if (colon >= 0 && same(decoded.slice(0, colon), auth.basic.user) && same(decoded.slice(colon + 1), auth.basic.password)) return null;
  }
  c.header("WWW-Authenticate", 'Basic realm="pgq", charset="UTF-8"');
  return c.text("pgq dashboard: sign in\n", 401);
}

/** Per-process: restarting the dashboard invalidates forms that were open, never more. */
export class CsrfTokens {
  readonly #key = randomBytes(32);
  /** A session started by this request: a page asks for its token more than once. */
  readonly #started = new WeakMap<Request, string>();

  /** This session's form token, starting a session (a cookie) if the browser has none. */
  tokenFor(c: Context, cookiePath: string): string {
    let session = this.#started.get(c.req.raw) ?? getCookie(c, SESSION_COOKIE);
    if (!session || !/^[A-Za-z0-9_-]{43}$/.test(session)) {
      session = randomBytes(32).toString("base64url");
      setCookie(c, SESSION_COOKIE, session, { httpOnly: true, sameSite: "Strict", path: cookiePath });
      this.#started.set(c.req.raw, session);
    }
    return this.#sign(session);
  }

  verify(c: Context, token: unknown): boolean {
    const session = getCookie(c, SESSION_COOKIE);
    return typeof token === "string" && session !== undefined && same(token, this.#sign(session));
  }

  #sign(session: string): string {
    return createHmac("sha256", this.#key).update(session).digest("base64url");
  }
}

/** For hono's csrf(): the form's Origin names this host (scheme aside: a proxy may end TLS). */
export function sameHost(origin: string, c: Context): boolean {
  try {
    return new URL(origin).host === c.req.header("host");
  } catch {
    return false;
  }
}
