#!/usr/bin/env node
// The CLI entry point. The TypeScript sources are compiled to out/ by `npm run build` (run by `npm ci`),
// which also bundles the command line into dist/cli.js (scripts/bundle.mjs): one file loads faster
// than the forty modules it holds. The bundle is used only when it is at least as new as the
// compiled main.js, so a plain `tsc` rebuild is never shadowed by a stale bundle.
'use strict';
const { statSync } = require('node:fs');
const { join } = require('node:path');

function entry() {
  const compiled = join(__dirname, '..', 'out', 'server', 'src', 'cli', 'main.js');
  const bundled = join(__dirname, '..', 'dist', 'cli.js');
  const bundleTime = statSync(bundled, { throwIfNoEntry: false })?.mtimeMs;
  const compiledTime = statSync(compiled, { throwIfNoEntry: false })?.mtimeMs;
  return bundleTime !== undefined && (compiledTime === undefined || bundleTime >= compiledTime) ? bundled : compiled;
}

let cli;
try {
  cli = require(entry());
} catch (error) {
  process.stderr.write(`bpf-stack-lens: not built yet (run "npm run build"): ${error.message}\n`);
  process.exit(2);
}
cli.main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`bpf-stack-lens: internal error: ${error.stack || error}\n`);
    process.exitCode = 3;
  },
);
