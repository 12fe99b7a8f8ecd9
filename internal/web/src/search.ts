// The order search page (text, filters, facets, results with search_after
// pagination) and the order detail page.
import { get, type Order, type SearchResult } from "./api";
import { count, esc, londonTime, money } from "./format";
import { Panel } from "./panel";

export interface SearchState {
  q?: string; product?: string; country?: string; customer?: string; kind?: string; status?: string;
  from?: string; to?: string; sort?: string; after?: string;
}

const pageSize = 20;
/** Cursors of the pages before the current one, for "Previous". */
let cursors: (string | undefined)[] = [];
let lastKey = "";

const facetNames: Record<string, string> = { country: "Country", kind: "Kind", status: "Status" };

export function renderSearch(root: HTMLElement, s: SearchState, signal: AbortSignal, go: (s: SearchState) => void): void {
  const key = JSON.stringify({ ...s, after: undefined });
  if (key !== lastKey) { cursors = []; lastKey = key; }
  const opt = (vals: string[], cur?: string) =>
    `<option value="">any</option>` + vals.map((v) => `<option${v === cur ? " selected" : ""}>${v}</option>`).join("");
  root.innerHTML = `
<h1>Orders</h1>
<form class="filters" id="s-form">
  <label>Search<input type="search" id="s-q" size="28" placeholder="product text or order number" value="${esc(s.q)}"></label>
  <label>Stock code<input id="s-product" size="9" value="${esc(s.product)}"></label>
  <label>Country<input id="s-country" size="14" value="${esc(s.country)}"></label>
  <label>Customer<input id="s-customer" size="7" value="${esc(s.customer)}"></label>
  <label>Kind<select id="s-kind">${opt(["sale", "credit_note", "adjustment"], s.kind)}</select></label>
  <label>Status<select id="s-status">${opt(["placed", "paid", "shipped", "cancelled", "refunded"], s.status)}</select></label>
  <label>From<input type="date" id="s-from" value="${esc(s.from)}"></label>
  <label>To<input type="date" id="s-to" value="${esc(s.to)}"></label>
  <label>Sort<select id="s-sort"><option value="">best match</option><option value="date"${s.sort === "date" ? " selected" : ""}>newest first</option><option value="total"${s.sort === "total" ? " selected" : ""}>largest total</option></select></label>
  <button type="submit" id="s-go">Search</button>
  <button type="button" class="secondary" id="s-clear">Clear</button>
</form>
<div class="search-layout">
  <aside class="panel facets" id="s-facets"></aside>
  <section class="panel" id="s-results">
    <div class="head"><h2 id="s-total">Results</h2></div>
    <table id="s-table"><thead><tr><th>Order</th><th>Placed (London)</th><th>Kind</th><th>Status</th><th>Customer</th><th>Country</th>
      <th class="num">Lines</th><th class="num">Total</th></tr></thead><tbody></tbody></table>
    <div class="pager"><button type="button" class="secondary" id="s-prev">Previous</button>
      <span id="s-page"></span><button type="button" class="secondary" id="s-next">Next</button></div>
  </section>
</div>`;
  const $ = <T extends HTMLElement>(id: string) => root.querySelector<T>("#" + id)!;
  const val = (id: string) => ($<HTMLInputElement>(id).value.trim() || undefined);
  $<HTMLFormElement>("s-form").addEventListener("submit", (e) => {
    e.preventDefault();
    go({ q: val("s-q"), product: val("s-product"), country: val("s-country"), customer: val("s-customer"),
      kind: val("s-kind"), status: val("s-status"), from: val("s-from"), to: val("s-to"), sort: val("s-sort") });
  });
  $("s-clear").addEventListener("click", () => go({}));

  const panel = new Panel($("s-results"));
  void panel.run(async () => {
    const r = await get<SearchResult>("/api/v1/orders/search", { ...s, size: pageSize }, signal);
    const page = cursors.length + 1;
    $("s-total").textContent = `${count(r.total)} order${r.total === 1 ? "" : "s"}`;
    $("s-table").querySelector("tbody")!.innerHTML = r.hits.map((h) => `<tr class="clickable" data-id="${esc(h.id)}">
      <td><a href="#/orders/${encodeURIComponent(h.id)}">${esc(h.order_number)}</a></td><td>${esc(londonTime(h.placed_at))}</td>
      <td><span class="badge ${esc(h.kind)}">${esc(h.kind.replace("_", " "))}</span></td><td><span class="badge ${esc(h.status)}">${esc(h.status)}</span></td>
      <td>${esc(h.customer_id ?? "guest")}</td><td>${esc(h.country)}</td><td class="num">${count(h.line_count)}</td>
      <td class="num" data-value="${esc(h.total)}">${esc(money(h.total))}</td></tr>`).join("")
      || `<tr><td colspan="8">No orders match.</td></tr>`;
    for (const tr of root.querySelectorAll<HTMLTableRowElement>("tr.clickable")) {
      tr.addEventListener("click", (e) => {
        if ((e.target as HTMLElement).tagName !== "A") location.hash = "#/orders/" + encodeURIComponent(tr.dataset.id!);
      });
    }
    const first = (page - 1) * pageSize + 1;
    $("s-page").textContent = r.hits.length ? `Page ${page} · ${count(first)}–${count(first + r.hits.length - 1)} of ${count(r.total)}` : "";
    const prev = $<HTMLButtonElement>("s-prev");
    const next = $<HTMLButtonElement>("s-next");
    prev.disabled = page === 1;
    next.disabled = !r.next;
    prev.addEventListener("click", () => { const c = cursors.pop(); go({ ...s, after: c }); });
    next.addEventListener("click", () => { cursors.push(s.after); go({ ...s, after: r.next }); });
    $("s-facets").innerHTML = Object.keys(facetNames).filter((k) => r.facets[k]?.length).map((k) => `<div class="facet"><h3>${facetNames[k]}</h3>
      ${r.facets[k].map((v) => `<a href="#" data-facet="${k}" data-value="${esc(v.value)}" class="${(s as Record<string, string | undefined>)[k] === v.value ? "on" : ""}">
        <span>${esc(v.value)}</span><span>${count(v.count)}</span></a>`).join("")}</div>`).join("") || `<span class="loading">No facets.</span>`;
    for (const a of root.querySelectorAll<HTMLAnchorElement>("a[data-facet]")) {
      a.addEventListener("click", (e) => {
        e.preventDefault();
        const k = a.dataset.facet as keyof SearchState;
        go({ ...s, after: undefined, [k]: s[k] === a.dataset.value ? undefined : a.dataset.value });
      });
    }
  }, signal);
}

export function renderOrder(root: HTMLElement, id: string, signal: AbortSignal): void {
  root.innerHTML = `<p><a href="#/search" id="o-back">← Back to results</a></p>
<section class="panel" id="o-panel"><div class="head"><h1 id="o-title">Order</h1></div><div id="o-body"></div></section>`;
  root.querySelector("#o-back")!.addEventListener("click", (e) => {
    if (history.length > 1) { e.preventDefault(); history.back(); }
  });
  const panel = new Panel(root.querySelector<HTMLElement>("#o-panel")!);
  void panel.run(async () => {
    const o = await get<Order>("/api/v1/orders/" + encodeURIComponent(id), {}, signal);
    root.querySelector("#o-title")!.textContent = `Order ${o.order_number}`;
    root.querySelector("#o-body")!.innerHTML = `
<dl class="order">
  <dt>Kind</dt><dd><span class="badge ${esc(o.kind)}">${esc(o.kind.replace("_", " "))}</span></dd>
  <dt>Status</dt><dd><span class="badge ${esc(o.status)}">${esc(o.status)}</span></dd>
  <dt>Placed (London)</dt><dd>${esc(londonTime(o.placed_at))}</dd>
  <dt>Customer</dt><dd>${esc(o.customer_id ?? "guest")}</dd>
  <dt>Country</dt><dd>${esc(o.country)}</dd>
  <dt>Total</dt><dd id="o-total" data-value="${esc(o.total)}"><b>${esc(money(o.total))}</b></dd>
  <dt>Paid</dt><dd>${esc(money(o.paid))}</dd>
  <dt>Refunded</dt><dd>${esc(money(o.refunded))}</dd>
  <dt>Lines</dt><dd>${count(o.lines.length)}</dd>
  <dt>Order id</dt><dd>${esc(o.id)}</dd>
</dl>
<div class="scroll"><table id="o-lines"><thead><tr><th class="num">#</th><th>Stock code</th><th>Description</th><th class="num">Quantity</th>
  <th class="num">Unit price</th><th class="num">Amount</th></tr></thead><tbody>
${o.lines.map((l) => `<tr><td class="num">${l.line_no}</td><td>${esc(l.stock_code)}</td><td class="wrap">${esc(l.description)}</td>
  <td class="num">${count(l.quantity)}</td><td class="num">${esc(money(l.unit_price))}</td><td class="num">${esc(money(l.amount))}</td></tr>`).join("")}
</tbody></table></div>`;
  }, signal);
}
