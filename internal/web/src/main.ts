// The orderstream dashboard: hash routes #/analytics, #/search, #/orders/ID.
import { get, type DashboardConfig } from "./api";
import { accessToken, authRequired, init, setUnauthorizedHandler, signIn, signOut } from "./auth";
import { renderAnalytics, type Filter } from "./analytics";
import { disposeAll } from "./charts";
import { esc } from "./format";
import { renderOrder, renderSearch, type SearchState } from "./search";

const app = document.getElementById("app")!;
const user = document.getElementById("user")!;
let inflight = new AbortController();

function parseHash(): { path: string; params: Record<string, string> } {
  const h = location.hash.replace(/^#/, "") || "/analytics";
  const [path, qs] = h.split("?", 2);
  const params: Record<string, string> = {};
  new URLSearchParams(qs ?? "").forEach((v, k) => { if (v) params[k] = v; });
  return { path, params };
}

function toHash(path: string, params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, String(v));
  const s = q.toString();
  return "#" + path + (s ? "?" + s : "");
}

function showSignIn(reason?: string): void {
  inflight.abort();
  disposeAll();
  user.textContent = "";
  app.innerHTML = `<div class="signin"><h1>Sign in</h1>
    <p>The orderstream dashboard needs an account of your organisation's identity provider.</p>
    ${reason ? `<p class="loading">${esc(reason)}</p>` : ""}
    <button id="signin">Sign in</button></div>`;
  document.getElementById("signin")!.addEventListener("click", () => {
    signIn().catch((e) => showError("Sign-in could not start: " + (e as Error).message));
  });
}

function showError(msg: string): void {
  app.innerHTML = `<div class="signin"><h1>Something went wrong</h1><p>${esc(msg)}</p><p><a href="/">Start again</a></p></div>`;
}

function renderUser(): void {
  if (!authRequired()) {
    user.textContent = "local mode: no sign-in";
    return;
  }
  user.innerHTML = `signed in <button class="secondary" id="signout">Sign out</button>`;
  document.getElementById("signout")!.addEventListener("click", () => { signOut(); showSignIn(); });
}

function route(): void {
  if (authRequired() && !accessToken()) { showSignIn(); return; }
  inflight.abort();
  inflight = new AbortController();
  disposeAll();
  renderUser();
  const { path, params } = parseHash();
  document.getElementById("nav-analytics")!.classList.toggle("active", path === "/analytics");
  document.getElementById("nav-search")!.classList.toggle("active", path !== "/analytics");
  if (path.startsWith("/orders/")) {
    renderOrder(app, decodeURIComponent(path.slice("/orders/".length)), inflight.signal);
  } else if (path === "/search") {
    renderSearch(app, params as SearchState, inflight.signal, (s) => { location.hash = toHash("/search", s); });
  } else {
    renderAnalytics(app, params as Filter, inflight.signal, (f) => { location.hash = toHash("/analytics", f); });
  }
}

async function start(): Promise<void> {
  let cfg: DashboardConfig;
  try {
    cfg = await get<DashboardConfig>("/api/v1/config");
  } catch (e) {
    showError("The server's configuration could not be loaded: " + (e as Error).message);
    return;
  }
  setUnauthorizedHandler((reason) => showSignIn(reason));
  try {
    const hash = await init(cfg);
    if (hash && hash !== location.hash) history.replaceState(null, "", location.pathname + hash);
  } catch (e) {
    showSignIn((e as Error).message);
    return;
  }
  addEventListener("hashchange", route);
  route();
}

void start();
