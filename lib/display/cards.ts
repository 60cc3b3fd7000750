/**
 * Caption cards: an image with the captions a model gave it, the reference captions and scores,
 * as one HTML block for a notebook output. Images are embedded as bytes (data URIs), not linked,
 * so the notebook and its HTML export show them anywhere.
 */
import type { DisplayImage } from "../data/transforms";

/** The width of a card's image area, in CSS pixels (pass it to `displayImage`). */
export const CARD_IMAGE_BOX = 288;

export interface CaptionCard {
  title: string;
  /** The image, from transforms' `displayImage(file, CARD_IMAGE_BOX)`. */
  image: DisplayImage;
  /** The model's captions, e.g. { greedy: "...", "beam 3": "..." }. */
  captions: Record<string, string>;
  references?: string[];
  /** Per-image scores, e.g. { CIDEr: 1.2 }. */
  scores?: Record<string, number>;
  /** A line under the title, e.g. what is in the scene. */
  note?: string;
}

export function cardsHtml(cards: CaptionCard[]): string {
  return `<div style="display:flex;flex-wrap:wrap;gap:12px">${cards.map(cardHtml).join("")}</div>`;
}

/** An <img> of a DisplayImage at its intended size (pixelated when it is a small image enlarged). */
export function imageHtml(image: DisplayImage, alt: string): string {
  const src = `data:${image.mime};base64,${image.bytes.toString("base64")}`;
  const rendering = image.pixelated ? "image-rendering:pixelated;" : "";
  return `<img src="${src}" alt="${escapeHtml(alt)}" width="${image.cssWidth}" style="${rendering}max-width:100%;border-radius:4px"/>`;
}

/** Images side by side, each with a line of text under it (e.g. a file before and after preprocessing). */
export function figuresHtml(figures: { image: DisplayImage; caption: string }[]): string {
  const items = figures.map(
    (f) => `<figure class="captioner-figure" style="margin:0;text-align:center">${imageHtml(f.image, f.caption)}` +
      `<figcaption style="font:13px sans-serif;color:#444;max-width:${Math.max(f.image.cssWidth, 260)}px">${escapeHtml(f.caption)}</figcaption></figure>`,
  );
  return `<div style="display:flex;flex-wrap:wrap;gap:24px;align-items:flex-end">${items.join("")}</div>`;
}

function cardHtml(card: CaptionCard): string {
  const captions = Object.entries(card.captions)
    .map(([k, v]) => `<div><b>${escapeHtml(k)}:</b> ${escapeHtml(v)}</div>`)
    .join("");
  const scores = Object.entries(card.scores ?? {})
    .map(([k, v]) => `${escapeHtml(k)} ${v.toFixed(3)}`)
    .join(" · ");
  // The title may be cut (with an ellipsis, whole in the tooltip); the scores never wrap.
  const title =
    `<div style="display:flex;gap:8px;color:#666;margin:4px 0">` +
    `<span title="${escapeHtml(card.title)}" style="flex:1;min-width:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap">${escapeHtml(card.title)}</span>` +
    (scores ? `<span class="card-scores" style="white-space:nowrap">${scores}</span>` : "") +
    `</div>`;
  const note = card.note ? `<div style="color:#666;margin-bottom:4px">${escapeHtml(card.note)}</div>` : "";
  return `<div class="caption-card" style="width:${CARD_IMAGE_BOX}px;border:1px solid #ddd;border-radius:6px;padding:8px;font:13px sans-serif">
<div style="text-align:center">${imageHtml(card.image, card.title)}</div>
${title}${note}${captions}${referencesHtml(card.references ?? [])}
</div>`;
}

/** The reference captions, folded; the summary is a list item so that its ▸ marker shows whatever the page's CSS. */
function referencesHtml(references: string[]): string {
  if (references.length === 0) return "";
  const items = references.map((r) => `<li>${escapeHtml(r)}</li>`).join("");
  return `<details style="margin-top:4px"><summary style="display:list-item;cursor:pointer;color:#444">${references.length} reference captions</summary>` +
    `<ul style="margin:2px 0;padding-left:18px">${items}</ul></details>`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}
