#!/usr/bin/env node
// The CLI entry point. The TypeScript sources are compiled to out/ by `npm run build` (run by `npm ci`).
'use strict';
let cli;
try {
  cli = require('../out/server/src/cli/main.js');
} catch (error) {
  process.stderr.write(`bpf-stack-lens: not built yet (run "npm run build"): ${error.message}\n`);
  process.exit(2);
}
cli.main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (error) => { process.stderr.write(`bpf-stack-lens: internal error: ${error.stack || error}\n`); process.exitCode = 3; },
);
