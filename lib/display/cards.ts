/**
 * Caption cards: an image with the captions a model gave it, the reference captions and scores,
 * as one HTML block for a notebook output. Images are embedded as bytes (data URIs), not linked,
 * so the notebook and its HTML export show them anywhere.
 */

export interface CaptionCard {
  title: string;
  /** JPEG or PNG bytes (see transforms' thumbnail()). */
  image: Uint8Array;
  mime?: "image/jpeg" | "image/png";
  /** The model's captions, e.g. { greedy: "...", "beam 3": "..." }. */
  captions: Record<string, string>;
  references?: string[];
  /** Per-image scores, e.g. { CIDEr: 1.2 }. */
  scores?: Record<string, number>;
}

export function cardsHtml(cards: CaptionCard[]): string {
  return `<div style="display:flex;flex-wrap:wrap;gap:12px">${cards.map(cardHtml).join("")}</div>`;
}

function cardHtml(card: CaptionCard): string {
  const src = `data:${card.mime ?? "image/jpeg"};base64,${Buffer.from(card.image).toString("base64")}`;
  const captions = Object.entries(card.captions)
    .map(([k, v]) => `<div><b>${escapeHtml(k)}:</b> ${escapeHtml(v)}</div>`)
    .join("");
  const refs = (card.references ?? []).map((r) => `<li>${escapeHtml(r)}</li>`).join("");
  const scores = Object.entries(card.scores ?? {})
    .map(([k, v]) => `${escapeHtml(k)} ${v.toFixed(3)}`)
    .join(" · ");
  return `<div class="caption-card" style="width:300px;border:1px solid #ddd;border-radius:6px;padding:8px;font:13px sans-serif">
<img src="${src}" alt="${escapeHtml(card.title)}" style="width:100%;border-radius:4px"/>
<div style="color:#666;margin:4px 0">${escapeHtml(card.title)}${scores ? ` · ${scores}` : ""}</div>
${captions}
${refs ? `<details style="margin-top:4px"><summary>references</summary><ul style="margin:2px 0;padding-left:18px">${refs}</ul></details>` : ""}
</div>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
