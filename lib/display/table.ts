/** A small HTML table for notebook outputs (metrics side by side). */
import { escapeHtml } from "./cards";

/**
 * Rows of named values → an HTML table; numbers are shown with `digits` decimals. A column of
 * numbers (or of numerals given as text, e.g. counts) is right-aligned, so that the digits line up;
 * a column of text is left-aligned, as it is read.
 */
export function tableHtml(rows: Record<string, string | number>[], digits = 3): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const numeric = (v: string | number | undefined) => v === undefined || typeof v === "number" || /^-?[\d.,]+$/.test(v);
  const align = new Map(columns.map((c) => [c, rows.every((r) => numeric(r[c])) ? "right" : "left"]));
  const cell = (v: string | number | undefined) =>
    v === undefined ? "" : typeof v === "number" ? v.toFixed(digits) : escapeHtml(v);
  const style = (c: string) => `padding:2px 10px;text-align:${align.get(c)}`;
  const head = columns.map((c) => `<th style="${style(c)}">${escapeHtml(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${columns.map((c) => `<td style="${style(c)}">${cell(r[c])}</td>`).join("")}</tr>`).join("");
  return `<table class="captioner-table" style="border-collapse:collapse;font:13px sans-serif"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
