// Drives a real VS Code (code-server, from .cache/editors/, installed by scripts/editors.sh) with
// the packaged extension, through Debian's Chromium and playwright-core. Shared by
// code-server.test.mjs and `scripts/main-job.sh --check` (code-server-check.mjs).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const toolsDir = process.env.BPF_STACK_LENS_EDITORS_DIR ?? join(repo, '.cache', 'editors');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const vsixPath = join(repo, 'dist', 'bpf-stack-lens.vsix');
export const exampleWorkspace = join(repo, 'examples', 'workspace');

/**
 * Installs (or finds in the cache) code-server, Node 24, playwright-core and Neovim 0.10 with
 * scripts/editors.sh. Returns { tools } or { reason } for a skip.
 */
export function editorTools({ install = true } = {}) {
  if (install) {
    const run = spawnSync('bash', [join(repo, 'scripts', 'editors.sh')], { encoding: 'utf8', timeout: 15 * 60 * 1000 });
    if (run.status !== 0)
      return { reason: `code-server could not be installed (scripts/editors.sh: ${lastLine(run.stderr) || run.error?.message || `exit ${run.status}`})` };
  }
  const envFile = join(toolsDir, 'env.sh');
  if (!existsSync(envFile)) return { reason: `code-server is not installed (run bash scripts/editors.sh)` };
  const env = Object.fromEntries(
    readFileSync(envFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  for (const key of ['NODE24', 'CODE_SERVER', 'PLAYWRIGHT_CORE']) {
    if (!env[key] || !existsSync(env[key])) return { reason: `${key} missing from ${toolsDir} (run bash scripts/editors.sh)` };
  }
  if (!existsSync(chromiumPath)) return { reason: `${chromiumPath} is missing (apt-get install chromium)` };
  const nvimCurrent = env.NVIM_CURRENT && existsSync(env.NVIM_CURRENT) ? env.NVIM_CURRENT : undefined;
  return { tools: { node24: env.NODE24, codeServer: env.CODE_SERVER, playwrightCore: env.PLAYWRIGHT_CORE, nvimCurrent } };
}

function lastLine(text) {
  return (text ?? '').trim().split('\n').filter(Boolean).slice(-1)[0] ?? '';
}

export function hasCommand(command, args = ['--version']) {
  try {
    execFileSync(command, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A copy of examples/workspace (sources, settings, build script; no objects) in `target`. */
export function copyWorkspace(target) {
  mkdirSync(target, { recursive: true });
  cpSync(exampleWorkspace, target, { recursive: true, filter: (source) => !source.endsWith('.o') });
  return target;
}

/** Runs the workspace's build script (clang-19). */
export function buildWorkspace(workspace) {
  execFileSync('bash', [join(workspace, 'build.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts code-server with the .vsix installed into a fresh extensions dir under `dataDir`.
 * Resolves to { url, folderUrl(path), stop(), log() } once it answers HTTP.
 */
export async function startCodeServer({ tools, dataDir, port, vsix = vsixPath, log = () => {} }) {
  const extensionsDir = join(dataDir, 'extensions');
  const userDataDir = join(dataDir, 'user');
  mkdirSync(userDataDir, { recursive: true });
  const base = ['--config', '/dev/null', '--extensions-dir', extensionsDir, '--user-data-dir', userDataDir];
  execFileSync(tools.node24, [tools.codeServer, ...base, '--install-extension', vsix], { stdio: 'ignore' });
  // Settings that keep the page quiet and deterministic: no welcome page, no trust prompt, no
  // auto-save (the test saves), no minimap hiding the squiggles' column.
  const settings = {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'security.workspace.trust.enabled': false,
    'files.autoSave': 'off',
    'editor.minimap.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.ignoreRecommendations': true,
    'window.commandCenter': false,
    'workbench.colorTheme': 'Default Dark Modern',
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'editor.stickyScroll.enabled': false,
  };
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));

  const args = [
    tools.codeServer,
    ...base,
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
  ];
  const child = spawn(tools.node24, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const collect = (chunk) => {
    output += chunk;
    log(String(chunk));
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let exited = false;
  child.on('exit', () => {
    exited = true;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) throw new Error(`code-server exited:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`code-server did not answer on ${url}:\n${output}`);
    await sleep(100);
  }
  return {
    url,
    folderUrl: (folder) => `${url}/?folder=${encodeURIComponent(folder).replace(/%2F/g, '/')}`,
    log: () => output,
    async stop() {
      if (exited) return;
      const done = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // The group exited between the SIGTERM and now.
        }
      }, 3000);
      await done;
      clearTimeout(timer);
    },
  };
}

/** Headless Chromium (Debian's) with a fresh profile under `profileDir`, and its one page. */
export async function launchBrowser({ tools, profileDir }) {
  const require = createRequire(import.meta.url);
  const { chromium } = require(tools.playwrightCore);
  rmSync(profileDir, { recursive: true, force: true });
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

/** Opens the workbench on `folder` and waits for the Explorer to list it. */
export async function openWorkbench(page, server, folder) {
  await page.goto(server.folderUrl(folder));
  await page.waitForSelector('.monaco-workbench', { timeout: 30000 });
  await page.waitForSelector('.explorer-folders-view .monaco-list-row', { timeout: 30000 });
}

/** Opens a file by double-clicking its row in the Explorer; waits for its editor tab. */
export async function openFromExplorer(page, name) {
  const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
  await row.waitFor({ timeout: 20000 });
  await row.dblclick();
  await page.locator('.tabs-container .tab', { hasText: name }).first().waitFor({ timeout: 20000 });
  await page.locator('.monaco-editor .view-lines').first().waitFor({ timeout: 20000 });
}

/** Files of a directory, sorted, for messages. */
export function listDir(dir) {
  try {
    return readdirSync(dir).sort().join(', ');
  } catch {
    return '';
  }
}
