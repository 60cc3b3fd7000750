/**
 * The import rules of lib/ (issue 18), checked by `npx depcruise lib` and by test/layers.test.ts.
 * The stage folders, in reading order, import only from earlier stages and from the plumbing
 * (io/, runtime/); the plumbing imports no stage and no root module. Type imports count.
 */
const STAGES = ["data", "model", "features", "inference", "evaluation", "train", "display", "explain"];
const PLUMBING = "lib/(io|runtime)/";

/** One rule per stage: it may not reach a later stage or a root module (lib/*.ts). */
const stageRules = STAGES.map((stage, i) => ({
  name: `${stage}-imports-earlier-stages`,
  comment: `lib/${stage}/ may import ${STAGES.slice(0, i).join(", ") || "no other stage"}, io/ and runtime/ only`,
  severity: "error",
  from: { path: `^lib/${stage}/` },
  to: { path: `^lib/(${[...STAGES.slice(i + 1)].join("|")}/|[^/]+\\.ts$)` },
}));

module.exports = {
  forbidden: [
    { name: "no-cycles", severity: "error", from: {}, to: { circular: true } },
    {
      name: "plumbing-imports-no-stage",
      comment: "io/ and runtime/ import no stage folder and no root module",
      severity: "error",
      from: { path: `^${PLUMBING}` },
      to: { path: "^lib/", pathNot: `^${PLUMBING}` },
    },
    ...stageRules,
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^lib/dist/" },
    tsPreCompilationDeps: true, // keep type-only imports: a type is a dependency too
    tsConfig: { fileName: "tsconfig.json" },
  },
};
