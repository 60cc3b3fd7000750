/**
 * `npm run caption -- --explain DIR`: for each captioned image, `DIR/<name>.json` (explain-image.ts)
 * and a self-contained `DIR/<name>.html` with the word maps over the photo, where <name> is the
 * file name without its extension. Two inputs with the same name (a/dog.jpg, b/dog.png) get
 * `dog` and `dog-2`, said on stderr: one never overwrites the other.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Captioner } from "../inference/captioner";
import type { Caption } from "../inference/greedy";
import { explainImage } from "./explain-image";
import { explanationPage, wordFigures } from "./word-maps-html";

/** The output name of each file: its stem, with -2, -3 ... for the second, third ... of the same stem (any case). */
export function explanationNames(files: string[]): string[] {
  const taken = new Set<string>();
  return files.map((file) => {
    const stem = path.parse(file).name;
    let name = stem;
    for (let k = 2; taken.has(name.toLowerCase()); k++) name = `${stem}-${k}`;
    taken.add(name.toLowerCase());
    return name;
  });
}

/**
 * Writes the explanations of `captions` (index into `files` → its caption) into `dir`; returns how
 * many images failed (each reported through `err`).
 */
export async function writeExplanations(
  model: Captioner,
  files: string[],
  captions: Map<number, Caption>,
  dir: string,
  err: (line: string) => void,
): Promise<number> {
  fs.mkdirSync(dir, { recursive: true });
  const names = explanationNames(files);
  let failed = 0;
  for (const [index, caption] of [...captions].sort(([a], [b]) => a - b)) {
    const file = files[index];
    const name = names[index];
    if (name !== path.parse(file).name) err(`${file}: another input has the name ${path.parse(file).name}; its maps are ${name}.json and ${name}.html`);
    try {
      const { explanation, maps } = await explainImage(model, file, caption);
      fs.writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(explanation) + "\n");
      fs.writeFileSync(path.join(dir, `${name}.html`), explanationPage(explanation, await wordFigures(file, explanation.words, maps)));
    } catch (error) {
      failed += 1;
      err(`${file}: could not explain the caption (${(error as Error).message})`);
    }
  }
  const count = captions.size - failed;
  err(`wrote the word maps of ${count} image${count === 1 ? "" : "s"} to ${dir}`);
  return failed;
}
