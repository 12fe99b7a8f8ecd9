// The orderstream dashboard: hash routes #/analytics, #/search, #/orders/ID
// (one table, routes, below); any other route shows a not-found view.
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

/** The nav links of index.html, by id nav-<name>. */
type Nav = "analytics" | "search";

/**
 * A route of the hash: the view it renders and the nav link it highlights
 * (none for the not-found view). `match` returns the route's argument ("" if
 * it takes none) or null when the path is not this route's.
 */
interface Route {
  view: string;
  nav: Nav | null;
  match: (path: string) => string | null;
  render: (arg: string, params: Record<string, string>, signal: AbortSignal) => void;
}

/** The one route table: it decides both the view and the highlighted nav link. */
const routes: Route[] = [
  {
    view: "analytics", nav: "analytics", match: (p) => (p === "/analytics" ? "" : null),
    render: (_, params, signal) => renderAnalytics(app, params as Filter, signal, (f) => { location.hash = toHash("/analytics", f); }),
  },
  {
    view: "search", nav: "search", match: (p) => (p === "/search" ? "" : null),
    render: (_, params, signal) => renderSearch(app, params as SearchState, signal, (s) => { location.hash = toHash("/search", s); }),
  },
  {
    view: "order", nav: "search", match: (p) => (p.startsWith("/orders/") && p.length > "/orders/".length ? p.slice("/orders/".length) : null),
    render: (id, _, signal) => renderOrder(app, decodeURIComponent(id), signal),
  },
];

/** Rendered for a path no route matches; highlights no nav link. */
const notFound: Route = {
  view: "not-found", nav: null, match: () => "",
  render: (path) => {
    app.innerHTML = `<div class="signin" id="not-found"><h1>Page not found</h1>
      <p>The dashboard has no page <code>#${esc(path)}</code>.</p>
      <p><a href="#/analytics">Analytics</a> · <a href="#/search">Orders</a></p></div>`;
  },
};

function route(): void {
  if (authRequired() && !accessToken()) { showSignIn(); return; }
  inflight.abort();
  inflight = new AbortController();
  disposeAll();
  renderUser();
  const { path, params } = parseHash();
  let r = notFound;
  let arg: string | null = path;
  for (const candidate of routes) {
    const a = candidate.match(path);
    if (a !== null) { r = candidate; arg = a; break; }
  }
  for (const nav of ["analytics", "search"] as const) {
    document.getElementById("nav-" + nav)!.classList.toggle("active", r.nav === nav);
  }
  app.dataset.view = r.view;
  r.render(arg, params, inflight.signal);
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
