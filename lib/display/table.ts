/** A small HTML table for notebook outputs (metrics side by side). */
import { escapeHtml } from "./cards";

/** Rows of named values → an HTML table; numbers are shown with `digits` decimals. */
export function tableHtml(rows: Record<string, string | number>[], digits = 3): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: string | number | undefined) =>
    v === undefined ? "" : typeof v === "number" ? v.toFixed(digits) : escapeHtml(v);
  const head = columns.map((c) => `<th style="padding:2px 10px">${escapeHtml(c)}</th>`).join("");
  const body = rows
    .map((r) => `<tr>${columns.map((c) => `<td style="padding:2px 10px;text-align:right">${cell(r[c])}</td>`).join("")}</tr>`)
    .join("");
  return `<table class="captioner-table" style="border-collapse:collapse;font:13px sans-serif"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}
