// The analytics page: KPIs, revenue and orders by month and by day, revenue
// by country (top 10 + rest), top products and return rate. Every panel
// follows the same filter (from, to, country), kept in the URL hash.
import { get, type Breakdown, type Summary, type TopProducts, type ReturnRate, type Params } from "./api";
import { chart, palette, type Option } from "./charts";
import { count, esc, money, month, percent, plot } from "./format";
import { Panel } from "./panel";

export interface Filter { from?: string; to?: string; country?: string }

let countries: string[] | undefined;

const kpis: [string, string][] = [
  ["net_revenue", "Net revenue"],
  ["gross_sales", "Gross sales"],
  ["returns", "Returns"],
  ["orders", "Orders"],
  ["average_order_value", "Average order value"],
  ["customers", "Customers"],
  ["return_rate_count", "Return rate (documents)"],
  ["return_rate_value", "Return rate (value)"],
];

export function renderAnalytics(root: HTMLElement, f: Filter, signal: AbortSignal, go: (f: Filter) => void): void {
  root.innerHTML = `
<h1>Analytics</h1>
<form class="filters" id="filters">
  <label>From<input type="date" id="f-from" value="${esc(f.from)}"></label>
  <label>To<input type="date" id="f-to" value="${esc(f.to)}"></label>
  <label>Country<select id="f-country"><option value="">All countries</option></select></label>
  <button type="submit" id="f-apply">Apply</button>
  <button type="button" class="secondary" id="f-reset">Reset</button>
  <span class="hint">Calendar days and months in Europe/London. Money in GBP, exact.</span>
</form>
<section class="kpis panel" id="p-kpis">
  ${kpis.map(([k, l]) => `<div class="kpi"><div class="label">${l}</div><div class="value" id="kpi-${k}">–</div></div>`).join("")}
</section>
<div class="grid">
  <section class="panel wide" id="p-month">
    <div class="head"><h2>Net revenue and orders by month</h2></div>
    <div class="chart" id="c-month"></div>
    <div><table id="t-month"><thead><tr><th>Month</th><th class="num">Net revenue</th><th class="num">Orders</th>
      <th class="num">Gross sales</th><th class="num">Returns</th><th class="num">Avg order value</th><th class="num">Customers</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section class="panel wide" id="p-day">
    <div class="head"><h2>Net revenue and orders by day</h2></div>
    <div class="chart" id="c-day"></div>
  </section>
  <section class="panel" id="p-country">
    <div class="head"><h2>Net revenue by country (top 10 + rest)</h2></div>
    <div class="chart tall" id="c-country"></div>
  </section>
  <section class="panel" id="p-products">
    <div class="head"><h2>Top products</h2><div class="tools">
      <select id="top-by"><option value="revenue">by net revenue</option><option value="quantity">by quantity</option></select></div></div>
    <div class="chart tall" id="c-products"></div>
  </section>
</div>`;
  const $ = <T extends HTMLElement>(id: string) => root.querySelector<T>("#" + id)!;
  const form = $<HTMLFormElement>("filters");
  const sel = $<HTMLSelectElement>("f-country");
  const fillCountries = (list: string[]) => {
    for (const c of list) sel.add(new Option(c, c, false, c === f.country));
    if (f.country && !list.includes(f.country)) sel.add(new Option(f.country, f.country, true, true));
  };
  if (countries) fillCountries(countries);
  else {
    get<Breakdown>("/api/v1/analytics/revenue", { by: "country" }, signal)
      .then((b) => { countries = b.rows.map((r) => r.key).sort(); fillCountries(countries); })
      .catch(() => { if (f.country) fillCountries([]); });
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go({ from: $<HTMLInputElement>("f-from").value || undefined, to: $<HTMLInputElement>("f-to").value || undefined, country: sel.value || undefined });
  });
  $("f-reset").addEventListener("click", () => go({}));

  const p: Params = { from: f.from, to: f.to, country: f.country };

  const kp = new Panel($("p-kpis"));
  void kp.run(async () => {
    const [s, rr] = await Promise.all([
      get<Summary>("/api/v1/analytics/summary", p, signal),
      get<ReturnRate>("/api/v1/analytics/return-rate", p, signal),
    ]);
    for (const k of ["net_revenue", "gross_sales", "returns", "average_order_value"] as const) {
      const el = $("kpi-" + k);
      el.textContent = money(s[k]);
      el.dataset.value = s[k];
    }
    $("kpi-orders").textContent = count(s.orders);
    $("kpi-customers").textContent = count(s.customers);
    const rc = $("kpi-return_rate_count");
    rc.textContent = percent(rr.return_rate_count);
    rc.dataset.value = rr.return_rate_count;
    rc.title = `${count(rr.credit_notes)} credit notes / ${count(rr.orders)} orders`;
    const rv = $("kpi-return_rate_value");
    rv.textContent = percent(rr.return_rate_value);
    rv.dataset.value = rr.return_rate_value;
    rv.title = `returns ${money(rr.returns)} / gross sales ${money(rr.gross_sales)}`;
  }, signal);

  const mp = new Panel($("p-month"));
  const mc = chart($("c-month"));
  void mp.run(async () => {
    const b = await get<Breakdown>("/api/v1/analytics/revenue", { ...p, by: "month" }, signal);
    mc.setOption(revenueOrders(b, month));
    $("t-month").querySelector("tbody")!.innerHTML = b.rows.map((r) => `<tr data-month="${esc(r.key)}">
      <td>${esc(month(r.key))}</td><td class="num" data-field="net_revenue" data-value="${esc(r.net_revenue)}">${esc(money(r.net_revenue))}</td>
      <td class="num" data-field="orders">${count(r.orders)}</td><td class="num">${esc(money(r.gross_sales))}</td>
      <td class="num">${esc(money(r.returns))}</td><td class="num">${esc(money(r.average_order_value))}</td>
      <td class="num">${count(r.customers)}</td></tr>`).join("") || `<tr><td colspan="7">No orders in this range.</td></tr>`;
  }, signal);

  const dp = new Panel($("p-day"));
  const dc = chart($("c-day"));
  void dp.run(async () => {
    const b = await get<Breakdown>("/api/v1/analytics/revenue", { ...p, by: "day" }, signal);
    dc.setOption(revenueOrders(b, (k) => k));
  }, signal);

  const cp = new Panel($("p-country"));
  const cc = chart($("c-country"));
  void cp.run(async () => {
    const b = await get<Breakdown>("/api/v1/analytics/revenue", { ...p, by: "country", top: 10 }, signal);
    const rows = b.rows.map((r) => ({ label: r.key, value: r.net_revenue, orders: r.orders }));
    if (b.rest) rows.push({ label: `Rest (${b.rest.countries} countries)`, value: b.rest.net_revenue, orders: b.rest.orders });
    cc.setOption(horizontalBars(rows.reverse(), (r) => `${esc(r.label)}<br>Net revenue <b>${esc(money(r.value))}</b><br>Orders ${count(r.orders)}`));
  }, signal);

  const pp = new Panel($("p-products"));
  const pc = chart($("c-products"));
  const by = $<HTMLSelectElement>("top-by");
  const loadProducts = () => pp.run(async () => {
    const t = await get<TopProducts>("/api/v1/analytics/top-products", { ...p, by: by.value, limit: 10 }, signal);
    const rows = t.rows.map((r) => ({
      label: `${r.stock_code} ${r.description}`.slice(0, 38),
      value: t.by === "revenue" ? r.net_revenue : String(r.quantity), product: r,
    }));
    pc.setOption(horizontalBars(rows.reverse(), (r) =>
      `${esc(r.product.stock_code)} ${esc(r.product.description)}<br>Net revenue <b>${esc(money(r.product.net_revenue))}</b><br>Quantity ${count(r.product.quantity)}`,
    t.by === "revenue"), true);
  }, signal);
  by.addEventListener("change", () => void loadProducts());
  void loadProducts();
}

/**
 * Net revenue (bars, top) and orders (bars, bottom) per bucket: two grids on
 * one category axis, so that neither scale distorts the other.
 */
function revenueOrders(b: Breakdown, label: (k: string) => string): Option {
  const rows = b.rows;
  const keys = rows.map((r) => label(r.key));
  return {
    color: palette,
    grid: [
      { left: 80, right: 24, top: 28, height: "52%" },
      { left: 80, right: 24, top: "72%", bottom: 26 },
    ],
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    tooltip: {
      trigger: "axis",
      formatter: (ps: { dataIndex: number }[]) => {
        const r = rows[ps[0].dataIndex];
        return `<b>${esc(label(r.key))}</b><br>Net revenue <b>${esc(money(r.net_revenue))}</b><br>Orders ${count(r.orders)}`;
      },
    },
    xAxis: [
      { type: "category", gridIndex: 0, data: keys, axisLabel: { show: false }, axisTick: { show: false } },
      { type: "category", gridIndex: 1, data: keys },
    ],
    yAxis: [
      { type: "value", gridIndex: 0, name: "Net revenue (GBP)", nameTextStyle: { align: "left" }, axisLabel: { formatter: compact } },
      { type: "value", gridIndex: 1, name: "Orders", nameTextStyle: { align: "left" }, splitNumber: 2, minInterval: 1 },
    ],
    series: [
      { name: "Net revenue (GBP)", type: "bar", xAxisIndex: 0, yAxisIndex: 0, data: rows.map((r) => plot(r.net_revenue)) },
      { name: "Orders", type: "bar", xAxisIndex: 1, yAxisIndex: 1, itemStyle: { color: palette[1] }, data: rows.map((r) => r.orders) },
    ],
  };
}

function horizontalBars<R extends { label: string; value: string }>(rows: R[], tip: (r: R) => string, isMoney = true): Option {
  return {
    color: palette,
    grid: { left: 250, right: 30, top: 10, bottom: 24 },
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, formatter: (ps: { dataIndex: number }[]) => tip(rows[ps[0].dataIndex]) },
    xAxis: { type: "value", axisLabel: { formatter: isMoney ? compact : undefined } },
    yAxis: { type: "category", data: rows.map((r) => r.label), axisLabel: { width: 240, overflow: "truncate" } },
    series: [{ type: "bar", barMaxWidth: 26, data: rows.map((r) => plot(r.value)) }],
  };
}

function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (v / 1e3).toFixed(0) + "k";
  return String(v);
}
