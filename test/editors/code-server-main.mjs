// The code-server half of scripts/main-job.sh (run it through that script, which builds first):
//   node test/editors/code-server-main.mjs [--check] [--port N] [--workspace DIR] [--vsix FILE]
// Starts code-server (from .cache/editors/) on 127.0.0.1:PORT with --auth none and the .vsix
// installed into a fresh extensions dir, and prints the address to open. Without --check it runs
// until Ctrl-C. With --check it opens the workspace's seed.bpf.c in headless Chromium the way a
// person would (double-click in the Explorer), waits for the extension's squiggle on the tail
// call, prints one line and exits 0 (diagnostics shown) or 1.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  editorTools,
  exampleWorkspace,
  launchBrowser,
  openFromExplorer,
  openWorkbench,
  repo,
  startCodeServer,
  toolsDir,
  vsixPath,
} from './code-server-driver.mjs';
import { goToLine, waitForSquiggleOn } from './code-server-ui.mjs';

const { values } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    port: { type: 'string', default: process.env.PORT ?? '8080' },
    workspace: { type: 'string', default: exampleWorkspace },
    vsix: { type: 'string', default: vsixPath },
    timeout: { type: 'string', default: '60' },
  },
});
const port = Number(values.port);
const workspace = values.workspace;
const say = (line) => console.log(`main-job: ${line}`);

const { tools, reason } = editorTools({ install: false });
if (!tools) {
  say(`FAIL: ${reason}`);
  process.exit(1);
}

// A fresh extensions dir (and user data) for every run, under the cache.
const dataDir = join(toolsDir, 'main-job');
rmSync(dataDir, { recursive: true, force: true });
let server;
try {
  server = await startCodeServer({ tools, dataDir, port, vsix: values.vsix });
} catch (error) {
  say(`FAIL: code-server did not start on 127.0.0.1:${port}: ${String(error.message).split('\n').slice(0, 3).join(' ')}`);
  process.exit(1);
}
const address = server.folderUrl(workspace);

if (!values.check) {
  say(`code-server ${csVersion()} with ${values.vsix.replace(`${repo}/`, '')} installed`);
  console.log(`Open ${address}`);
  say('Ctrl-C to stop');
  const stop = async () => {
    await server.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // Keep running until code-server itself ends or a signal comes.
  setInterval(() => {}, 1 << 30);
} else {
  const started = Date.now();
  const profileDir = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-main-job-'));
  let result = 1;
  let context;
  try {
    const browser = await launchBrowser({ tools, profileDir });
    context = browser.context;
    const { page } = browser;
    page.setDefaultTimeout(Number(values.timeout) * 1000);
    const seed = join(workspace, 'seed.bpf.c');
    const tailCallLine =
      readFileSync(seed, 'utf8')
        .split('\n')
        .findIndex((line) => line.includes('bpf_tail_call(')) + 1;
    await openWorkbench(page, server, workspace);
    await openFromExplorer(page, 'seed.bpf.c');
    await goToLine(page, tailCallLine);
    const squiggle = await waitForSquiggleOn(page, tailCallLine, { timeout: Number(values.timeout) * 1000 });
    const statusItem = page.locator('.statusbar-item', { hasText: 'BPF stack' }).first();
    const readStatus = async () => (await statusItem.innerText({ timeout: 5000 }).catch(() => '')).trim();
    let status = await readStatus();
    // The status bar can lag the diagnostics by a moment ("no object" until the server answers).
    for (let i = 0; i < 20 && !/rejected|passes/.test(status); i += 1) {
      await page.waitForTimeout(250);
      status = await readStatus();
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (squiggle) {
      say(`OK: ${address} shows an ${squiggle.kind} squiggle on seed.bpf.c:${tailCallLine} (status bar: "${status}") after ${seconds} s`);
      result = 0;
    } else {
      await page.screenshot({ path: join(dataDir, 'check-failure.png') }).catch(() => {});
      say(`FAIL: no squiggle on seed.bpf.c:${tailCallLine} after ${seconds} s (status bar: "${status}"; screenshot ${join(dataDir, 'check-failure.png')})`);
    }
  } catch (error) {
    say(`FAIL: ${String(error.message).split('\n')[0]}`);
  } finally {
    await context?.close().catch(() => {});
    await server.stop();
    rmSync(profileDir, { recursive: true, force: true });
  }
  process.exit(result);
}

function csVersion() {
  try {
    return JSON.parse(readFileSync(join(tools.codeServer, '..', '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    return '';
  }
}
