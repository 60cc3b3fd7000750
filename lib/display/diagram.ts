/**
 * The model as a picture, drawn by code: encoder → image vector → LSTM unrolled over a caption →
 * linear layer → words, with the sizes of the model it is given. An SVG string for a notebook output.
 */
import { escapeHtml } from "./cards";

export interface DiagramSizes {
  /** What the encoder is, e.g. "small CNN" or "MobileNet V2 (frozen)". */
  encoder: string;
  /** The encoder's input side in pixels. */
  inputSize: number;
  embedSize: number;
  hiddenSize: number;
  vocabSize: number;
  /** The first words of an example caption (three or four read best). */
  words: string[];
}

const BOX = { width: 130, height: 38 };
const COLUMN0 = 400; // x of the first unrolled step
const STEP = 160; // horizontal distance between steps
const ROW = { word: 22, linear: 44, lstm: 124, input: 214, fed: 282 };
const COLORS = { encoder: "#fde0c5", input: "#dbe9f6", lstm: "#c7e9c0", linear: "#f2d7ee", line: "#555" };

/** The architecture of Show and Tell with the given sizes, as an SVG element. */
export function architectureSvg(sizes: DiagramSizes): string {
  const steps = sizes.words.length + 1; // step 0 reads the image, then one step per input token
  const width = COLUMN0 + steps * STEP;
  const parts: string[] = [arrowMarker()];
  parts.push(box(10, ROW.input, 120, `image ${sizes.inputSize}×${sizes.inputSize}×3`, COLORS.encoder));
  parts.push(box(165, ROW.input, 200, `${sizes.encoder} → linear → BN`, COLORS.encoder));
  parts.push(arrow(130, ROW.input + BOX.height / 2, 165, ROW.input + BOX.height / 2));
  parts.push(arrow(365, ROW.input + BOX.height / 2, COLUMN0, ROW.input + BOX.height / 2));
  parts.push(label(265, ROW.input + BOX.height + 18, "encoder (BN: batch norm)"));
  const fed = ["<start>", ...sizes.words.slice(0, -1)];
  const targets = sizes.words;
  for (let t = 0; t < steps; t++) parts.push(...column(t, sizes, t === 0 ? null : fed[t - 1], t === 0 ? null : targets[t - 1]));
  parts.push(label(COLUMN0 + (steps * STEP) / 2, ROW.fed + 26, "decoder, unrolled over the caption: each step's output word is the next step's input"));
  return `<svg class="captioner-diagram" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} 320" width="100%" style="max-width:${width}px;font:13px sans-serif">${parts.join("")}</svg>`;
}

/** One time step: input box, LSTM, linear layer, the word it predicts; `fed` null for step 0 (the image). */
function column(t: number, sizes: DiagramSizes, fed: string | null, target: string | null): string[] {
  const x = COLUMN0 + t * STEP;
  const mid = x + BOX.width / 2;
  const out: string[] = [];
  out.push(box(x, ROW.input, BOX.width, fed === null ? `image vector [${sizes.embedSize}]` : `embed [${sizes.embedSize}]`, COLORS.input));
  out.push(box(x, ROW.lstm, BOX.width, `LSTM [${sizes.hiddenSize}]`, COLORS.lstm));
  out.push(arrow(mid, ROW.input, mid, ROW.lstm + BOX.height));
  if (fed !== null) out.push(label(mid, ROW.fed, fed), arrow(mid, ROW.fed - 14, mid, ROW.input + BOX.height));
  if (t > 0) out.push(arrow(x - STEP + BOX.width, ROW.lstm + BOX.height / 2, x, ROW.lstm + BOX.height / 2), label(x - 15, ROW.lstm - 4, "h, c"));
  if (target === null) {
    out.push(label(mid, ROW.linear + 24, "(not scored)", "#999"));
    return out;
  }
  out.push(box(x, ROW.linear, BOX.width, `linear [${sizes.vocabSize}]`, COLORS.linear));
  out.push(arrow(mid, ROW.lstm, mid, ROW.linear + BOX.height));
  out.push(label(mid, ROW.word - 4, target, "#000", true));
  out.push(arrow(mid, ROW.linear, mid, ROW.word + 2));
  return out;
}

function box(x: number, y: number, width: number, text: string, fill: string): string {
  return `<rect x="${x}" y="${y}" width="${width}" height="${BOX.height}" rx="6" fill="${fill}" stroke="${COLORS.line}"/>` +
    label(x + width / 2, y + BOX.height / 2 + 4, text);
}

function label(x: number, y: number, text: string, color = "#000", bold = false): string {
  return `<text x="${x}" y="${y}" text-anchor="middle" fill="${color}"${bold ? ' font-weight="bold"' : ""}>${escapeHtml(text)}</text>`;
}

function arrow(x1: number, y1: number, x2: number, y2: number): string {
  return `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}" stroke="${COLORS.line}" stroke-width="1.5" marker-end="url(#captioner-arrow)"/>`;
}

function arrowMarker(): string {
  return `<defs><marker id="captioner-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">` +
    `<path d="M0,0 L10,5 L0,10 z" fill="${COLORS.line}"/></marker></defs>`;
}
