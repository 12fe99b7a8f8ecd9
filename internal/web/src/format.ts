// Display formatting. Money strings are shown exactly as the API sent them,
// only grouped by thousands: the digits are never parsed into a float.

/** "9747747.934" → "£9,747,747.934"; "-12.300" → "−£12.300". */
export function money(s: string | undefined): string {
  if (s === undefined || s === null) return "";
  let neg = false;
  let v = s;
  if (v.startsWith("-")) { neg = true; v = v.slice(1); }
  const [int, frac] = v.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "−" : "") + "£" + grouped + (frac !== undefined ? "." + frac : "");
}

/** Integers with thousands separators. */
export function count(n: number | undefined): string {
  return n === undefined ? "" : n.toLocaleString("en-GB");
}

/** A ratio string shown as a percentage with 2 decimals (display only). */
export function percent(s: string): string {
  const n = Number(s);
  return Number.isFinite(n) ? (n * 100).toFixed(2) + " %" : s;
}

/** Chart value of a money string (for drawing only; labels use money()). */
export function plot(s: string): number { return Number(s); }

const london = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});

/** An RFC 3339 UTC time in Europe/London, as the business saw it. */
export function londonTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : london.format(d);
}

const monthName = new Intl.DateTimeFormat("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });

/** "2011-03" → "Mar 2011". */
export function month(key: string): string {
  const d = new Date(key + "-01T00:00:00Z");
  return Number.isNaN(d.getTime()) ? key : monthName.format(d);
}

/** Escapes text for innerHTML. */
export function esc(s: string | number | undefined): string {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
