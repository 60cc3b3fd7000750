/**
 * `--dangling-ends allow|forbid` (and `--scst-dangling-ends`), shared by caption, evaluate and
 * train: whether `<end>` is forbidden right after "a", "the", "in"... (lib/inference/greedy.ts,
 * DANGLING_WORDS). Undefined when the flag is not given, so that the model's or the preset's own
 * choice applies.
 */
export function danglingEndsFlag(flag: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value !== "allow" && value !== "forbid") throw new Error(`--${flag} must be allow or forbid, got ${value}`);
  return value === "forbid";
}
