// Sign-in: OAuth 2.0 authorization code flow with PKCE (RFC 7636) against the
// OpenID Connect issuer the server names in /api/v1/config, as a public
// client. The access token lives only in this module's memory: never in
// localStorage, sessionStorage or a cookie, so a reload signs in again
// (silently when the issuer still has a session). Only the one-time PKCE
// verifier and state sit in sessionStorage between the redirect and the
// return, and are deleted on return.
import type { DashboardConfig } from "./api";

interface Discovery { authorization_endpoint: string; token_endpoint: string; end_session_endpoint?: string }

let token: string | undefined;
let expiresAt = 0;
let config: DashboardConfig = { auth: "none" };
let unauthorized: (reason: string) => void = () => {};

/** The current access token, if signed in and not expired. */
export function accessToken(): string | undefined {
  if (token && Date.now() < expiresAt) return token;
  return undefined;
}

/** Whether the dashboard needs a token at all. */
export function authRequired(): boolean { return config.auth === "oidc"; }

/** Called by the API client on 401: the token is dropped. */
export function onUnauthorized(reason: string): void {
  token = undefined;
  if (authRequired()) unauthorized(reason);
}

export function setUnauthorizedHandler(f: (reason: string) => void): void { unauthorized = f; }

const b64url = (b: ArrayBuffer | Uint8Array): string =>
  btoa(String.fromCharCode(...new Uint8Array(b as ArrayBuffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function random(bytes = 32): string {
  const a = new Uint8Array(bytes);
  crypto.getRandomValues(a);
  return b64url(a);
}

async function discover(): Promise<Discovery> {
  const url = config.issuer!.replace(/\/$/, "") + "/.well-known/openid-configuration";
  const r = await fetch(url, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`issuer discovery failed: HTTP ${r.status}`);
  return (await r.json()) as Discovery;
}

const redirectURI = (): string => location.origin + "/";

/** Sends the browser to the issuer to sign in; it comes back with ?code. */
export async function signIn(): Promise<void> {
  const d = await discover();
  const verifier = random(32);
  const challenge = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = random(16);
  sessionStorage.setItem("pkce:" + state, JSON.stringify({ verifier, hash: location.hash }));
  const p = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id!,
    redirect_uri: redirectURI(),
    scope: (config.scopes ?? ["openid"]).join(" "),
    state,
    nonce: random(16),
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  if (config.audience) p.set("audience", config.audience);
  location.assign(d.authorization_endpoint + "?" + p.toString());
}

/** Forgets the token (and leaves the issuer's session alone). */
export function signOut(): void {
  token = undefined;
  expiresAt = 0;
}

/**
 * Loads the server's auth settings and, on return from the issuer
 * (?code&state), exchanges the code for an access token. Returns the hash
 * route to show.
 */
export async function init(cfg: DashboardConfig): Promise<string> {
  config = cfg;
  if (cfg.auth !== "oidc") return location.hash;
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const state = params.get("state");
  const error = params.get("error");
  if (!code && !error) return location.hash;
  const saved = state ? sessionStorage.getItem("pkce:" + state) : null;
  if (state) sessionStorage.removeItem("pkce:" + state);
  const { verifier, hash } = saved ? JSON.parse(saved) : { verifier: "", hash: "" };
  history.replaceState(null, "", location.pathname + (hash || "#/analytics"));
  if (error) throw new Error(`sign-in failed: ${error} ${params.get("error_description") ?? ""}`);
  if (!saved) throw new Error("sign-in failed: unknown state (start again)");
  const d = await discover();
  const r = await fetch(d.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code!,
      redirect_uri: redirectURI(),
      client_id: config.client_id!,
      code_verifier: verifier,
    }),
  });
  if (!r.ok) throw new Error(`sign-in failed: token endpoint answered HTTP ${r.status}`);
  const t = (await r.json()) as { access_token: string; expires_in?: number };
  token = t.access_token;
  expiresAt = Date.now() + Math.max(30, (t.expires_in ?? 300) - 30) * 1000;
  return hash || "#/analytics";
}
