// What the steps scripts share: `check`, which says what it saw when it fails, and `runIfMain`, which
// runs a script's steps when node runs that script (tests/sdk_ts_run.py): the config as JSON on stdin
// (`readConfig`), one JSON line per step on stdout, {"operation", "ok", "error"?} (`runSteps`).
// Imported, a script only exports them.

export function check(condition, what, seen) {
  if (!condition) throw new Error(`${what} (saw ${JSON.stringify(seen)})`);
}

export async function readConfig() {
  return JSON.parse(await new Promise((resolve) => {
    let text = "";
    process.stdin.on("data", (d) => { text += d; });
    process.stdin.on("end", () => resolve(text));
  }));
}

export async function runSteps(steps) {
  for (const [operation, step] of Object.entries(steps)) {
    if (!step) continue; // a step that does not apply to this config
    try {
      await step();
      console.log(JSON.stringify({ operation, ok: true }));
    } catch (err) {
      const detail = err?.cause ? `${err}: ${err.cause}` : String(err?.stack ?? err);
      console.log(JSON.stringify({ operation, ok: false, error: detail.slice(0, 4000) }));
    }
  }
}

export async function runIfMain(moduleUrl, stepsOf) {
  if (moduleUrl === `file://${process.argv[1]}`) await runSteps(stepsOf(await readConfig()));
}
