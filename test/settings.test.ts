/**
 * The settings table (lib/train/settings.ts): each setting declared once, and everything that
 * lists settings (the presets, the checks, the resume rules, the notebooks' table) follows it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PRESETS, SYNTHETIC_CONFIG } from "../lib/train/config";
import { defaultConfig, parseTrainConfig, RESUME_RULES, SETTINGS, type TrainConfig } from "../lib/train/settings";
import { settingsTableHtml } from "../lib/notebook";
import { escapeHtml } from "../lib/display/cards";

const KEYS = Object.keys(SETTINGS) as (keyof TrainConfig)[];

test("every default passes its own check, and every preset is a complete, valid configuration", () => {
  for (const key of KEYS) assert.ok(SETTINGS[key].check[0](SETTINGS[key].default), `${key}: default ${JSON.stringify(SETTINGS[key].default)}`);
  for (const [name, preset] of Object.entries(PRESETS)) {
    assert.deepEqual(Object.keys(preset), KEYS, `${name}: the table's settings, in its order`);
    assert.deepEqual(parseTrainConfig(JSON.parse(JSON.stringify(preset)), name), preset);
  }
  assert.deepEqual(SYNTHETIC_CONFIG, defaultConfig(), "the embedded preset is the table's defaults");
});

test("a preset is a copy: changing one does not change the table's defaults", () => {
  const config = defaultConfig();
  (config.encoder as { filters: number[] }).filters.push(128);
  assert.deepEqual(defaultConfig().encoder, SETTINGS.encoder.default);
  assert.notDeepEqual(config.encoder, SETTINGS.encoder.default);
});

test("a wrong value is refused by the setting's own check, naming the file, the setting and what it must be", () => {
  const bad = { ...SYNTHETIC_CONFIG, batching: "sorted" };
  assert.throws(() => parseTrainConfig(bad, "run/config.json"), { message: 'run/config.json: "batching" must be "length" or "padded", got "sorted"' });
  assert.throws(() => parseTrainConfig({ ...SYNTHETIC_CONFIG, colour: 1 }, "x.json"), /x\.json: unknown setting "colour"/);
});

test("the resume rules are the table's, and the notebooks' table shows every setting with its meaning", () => {
  assert.deepEqual(Object.keys(RESUME_RULES), KEYS);
  for (const key of KEYS) assert.equal(RESUME_RULES[key], SETTINGS[key].resume);
  const html = settingsTableHtml(SYNTHETIC_CONFIG);
  for (const key of KEYS) {
    assert.ok(html.includes(`>${key}<`), `${key} is in the table`);
    assert.ok(html.includes(escapeHtml(SETTINGS[key].meaning)), `${key}'s meaning`);
  }
  assert.equal(html.match(/<tr>/g)?.length, KEYS.length + 1, "one row per setting, and the header");
});
