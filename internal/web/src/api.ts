// Client of the orderstream JSON API (see /openapi.json). Money arrives as
// exact decimal strings and stays a string: nothing here does arithmetic on
// it.
import { accessToken, onUnauthorized } from "./auth";

export type Money = string;

export interface Metrics {
  net_revenue: Money;
  gross_sales: Money;
  returns: Money;
  adjustments: Money;
  orders: number;
  credit_notes: number;
  average_order_value: Money;
  customers: number;
}
export interface RangeEcho { from?: string; to?: string; country?: string; currency: string; timezone: string }
export type Summary = RangeEcho & Metrics;
export interface Bucket extends Metrics { key: string }
export interface Breakdown extends RangeEcho {
  by: "day" | "month" | "country";
  rows: Bucket[];
  rest?: { countries: number; net_revenue: Money; gross_sales: Money; returns: Money; adjustments: Money; orders: number; credit_notes: number };
}
export interface Product { stock_code: string; description: string; net_revenue: Money; quantity: number }
export interface TopProducts extends RangeEcho { by: "revenue" | "quantity"; limit: number; rows: Product[] }
export interface ReturnRate extends RangeEcho {
  return_rate_count: string; return_rate_value: string; credit_notes: number; orders: number; returns: Money; gross_sales: Money;
}
export interface OrderSummary {
  id: string; order_number: string; kind: string; status: string; customer_id?: string;
  country: string; placed_at: string; total: Money; line_count: number; matched_lines?: number;
}
export interface OrderLine { line_no: number; stock_code: string; description: string; quantity: number; unit_price: Money; amount: Money }
export interface Order extends OrderSummary { paid: Money; refunded: Money; updated_at: string; version: number; lines: OrderLine[] }
export interface FacetValue { value: string; count: number }
export interface SearchResult { total: number; hits: OrderSummary[]; facets: Record<string, FacetValue[]>; next?: string }
export interface DashboardConfig { auth: "oidc" | "none"; issuer?: string; client_id?: string; audience?: string; scopes?: string[] }

/** An API error: the problem+json detail, ready to show. */
export class APIError extends Error {
  constructor(public status: number, message: string) { super(message); }
}

export type Params = Record<string, string | number | undefined>;

export function query(p: Params): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) {
    if (v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

/** GET path (with params) as JSON, with the bearer token when signed in. */
export async function get<T>(path: string, params: Params = {}, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const tok = accessToken();
  if (tok) headers.Authorization = "Bearer " + tok;
  let resp: Response;
  try {
    resp = await fetch(path + query(params), { headers, signal, credentials: "same-origin" });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new APIError(0, "The server cannot be reached: " + (e as Error).message);
  }
  if (resp.ok) return (await resp.json()) as T;
  let detail = `HTTP ${resp.status}`;
  try {
    const p = await resp.json();
    if (p && typeof p.detail === "string") detail = p.detail;
    else if (p && typeof p.title === "string") detail = p.title;
  } catch { /* not JSON */ }
  if (resp.status === 401) onUnauthorized(detail);
  throw new APIError(resp.status, detail);
}
