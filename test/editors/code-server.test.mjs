// The packaged extension (a .vsix of the current dist/, made here with vsce) in a real VS Code: code-server 4.139 (VS Code
// 1.139) on Node 24, both from .cache/editors/ (scripts/editors.sh installs them once from npm),
// driven through Debian's Chromium with playwright-core, the way a person would use it:
// double-click the seed in the Explorer, see the squiggle on the tail call, read it in Problems,
// hover the function for its frame bytes, apply the quick fix that removes the printk, save,
// rebuild with clang-19, and see the squiggle go; then verify on real kernels from the command
// palette (this machine's kernel) and read the report. Screenshots of each step go to
// test/editors/screenshots/. Skips when code-server cannot be installed, Chromium or clang-19 is
// missing, or dist/ has not been built (`npm test` builds it first); in CI it fails instead.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  buildWorkspace,
  copyWorkspace,
  editorTools,
  freePort,
  hasCommand,
  launchBrowser,
  openFromExplorer,
  openWorkbench,
  repo,
  startCodeServer,
} from './code-server-driver.mjs';
import { skipUnlessCI } from '../../out/test/support/unavailable.js';
import { applyQuickFix, diagnosticLines, goToLine, hoverWord, squiggles, waitForSquiggleOn } from './code-server-ui.mjs';

const screenshots = join(repo, 'test', 'editors', 'screenshots');
const TAIL_CALL_MESSAGE = 'tail_calls are not allowed when call stack of previous frames is 256 bytes';

function skipReason() {
  if (!hasCommand('clang-19')) return 'clang-19 is not installed';
  if (!existsSync(join(repo, 'dist', 'client.js')) || !existsSync(join(repo, 'dist', 'server.js'))) return 'dist/ is not built (npm run build)';
  const { reason } = editorTools();
  return reason ?? false;
}

const skip = skipUnlessCI(skipReason());

test('code-server: squiggle, Problems, hover and the printk quick fix on the seed', { skip, timeout: 180000 }, async (t) => {
  const { tools } = editorTools({ install: false });
  const scratch = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-code-server-'));
  rmSync(screenshots, { recursive: true, force: true });
  mkdirSync(screenshots, { recursive: true });
  const workspace = copyWorkspace(join(scratch, 'workspace'));
  buildWorkspace(workspace);
  const seedLines = readFileSync(join(workspace, 'seed.bpf.c'), 'utf8').split('\n');
  const lineOf = (text) => seedLines.findIndex((line) => line.includes(text)) + 1;
  const tailCallLine = lineOf('bpf_tail_call(');
  const printkLine = lineOf('stack_printk("acl-test');
  const entryLine = lineOf('int entry(');

  // Package what `npm run build` just built, exactly as `npm run package` does (without its rebuild).
  const vsix = join(scratch, 'bpf-stack-lens.vsix');
  execFileSync(join(repo, 'node_modules', '.bin', 'vsce'), ['package', '--no-dependencies', '-o', vsix], { cwd: repo, stdio: 'ignore' });
  const server = await startCodeServer({ tools, dataDir: join(scratch, 'code-server'), port: await freePort(), vsix });
  const { context, page } = await launchBrowser({ tools, profileDir: join(scratch, 'chromium') });
  let step = 0;
  const shot = async (name) => {
    step += 1;
    await page.screenshot({ path: join(screenshots, `${String(step).padStart(2, '0')}-${name}.png`) });
  };
  try {
    await openWorkbench(page, server, workspace);
    await shot('workbench');

    // 1. Open the seed from the Explorer; the tail call gets a squiggle.
    await openFromExplorer(page, 'seed.bpf.c');
    await goToLine(page, tailCallLine);
    const squiggle = await waitForSquiggleOn(page, tailCallLine, { timeout: 30000 });
    assert.ok(squiggle, `a squiggle on line ${tailCallLine}`);
    await shot('squiggle-on-tail-call');

    // 2. Problems (Ctrl+Shift+M) lists the verifier's message.
    await page.keyboard.press('Control+Shift+M');
    const problem = page.locator('.markers-panel .monaco-list-row', { hasText: TAIL_CALL_MESSAGE }).first();
    await problem.waitFor({ timeout: 15000 });
    const problemText = await problem.innerText();
    t.diagnostic(`Problems: ${problemText.replace(/\s+/g, ' ')}`);
    assert.match(problemText, /tail_calls are not allowed when call stack of previous frames is 256 bytes\. Too large/);
    await page.locator('.statusbar-item', { hasText: 'BPF stack: rejected on 6.1; passes on 6.18' }).waitFor({ timeout: 10000 });
    await shot('problems-panel');

    // 2b. Type a character, then undo it: the tab is clean again, and so is the verdict (no "stale").
    await goToLine(page, 1);
    await page.keyboard.type('x');
    await page.locator('.tabs-container .tab.dirty').waitFor({ timeout: 10000 });
    await page.locator('.statusbar-item', { hasText: 'seed.bpf.o stale' }).waitFor({ timeout: 10000 });
    await page.keyboard.press('Control+Z');
    await page.locator('.tabs-container .tab.dirty').waitFor({ state: 'detached', timeout: 10000 });
    await page.waitForFunction(
      () =>
        [...document.querySelectorAll('.statusbar-item')].some(
          (item) => item.textContent?.includes('BPF stack: rejected on 6.1; passes on 6.18') && !item.textContent.includes('stale'),
        ),
      undefined,
      { timeout: 10000 },
    );
    await page.keyboard.press('Control+Shift+M');
    // The status item answers a request; Problems redraws from the published diagnostics a moment
    // later, so give it until it settles before reading what it says.
    let rows = [];
    for (let attempt = 0; attempt < 20; attempt++) {
      rows = await page.locator('.markers-panel .monaco-list-row').allInnerTexts();
      if (rows.length > 0 && rows.every((row) => !/stale|unsaved/.test(row))) break;
      await page.waitForTimeout(500);
    }
    t.diagnostic(`Problems after the undo: ${rows.map((row) => row.replace(/\s+/g, ' ')).join(' | ')}`);
    assert.ok(
      rows.some((row) => row.includes(TAIL_CALL_MESSAGE)),
      'the error is still listed',
    );
    assert.ok(
      rows.every((row) => !/stale|unsaved/.test(row)),
      'nothing says stale or unsaved',
    );
    await shot('undo-back-to-saved');

    // 3. Hover the function name: its frame bytes, per kernel.
    await goToLine(page, entryLine);
    const hover = await hoverWord(page, 'entry', 'frame');
    const hoverText = await hover.innerText();
    t.diagnostic(`hover: ${hoverText.split('\n')[0]}`);
    assert.match(hoverText, /entry\W{1,4}frame 200 B/);
    assert.match(hoverText, /6\.1/);
    await shot('hover-frame-bytes');
    await page.keyboard.press('Escape');

    // 4. Ctrl+. on the printk (the cursor on its name, past the indentation), pick "Remove this ...", save.
    await goToLine(page, printkLine);
    await page.keyboard.press('Home'); // from column 1 to the first non-blank: the printk's name
    const fixTitle = await applyQuickFix(page, 'Remove this', { beforeAccept: () => shot('quick-fix-menu') });
    t.diagnostic(`quick fix: ${fixTitle}`);
    await page.keyboard.press('Control+S');
    await page.locator('.tabs-container .tab.dirty').waitFor({ state: 'detached', timeout: 10000 });
    const fixed = readFileSync(join(workspace, 'seed.bpf.c'), 'utf8');
    assert.ok(!fixed.includes('stack_printk("acl-test'), 'the printk is gone from the saved file');
    assert.equal(fixed.split('\n').length, seedLines.length - 1, 'exactly the printk line is gone');
    await shot('printk-removed-and-saved');

    // 5. Rebuild the object with the workspace's build script; the squiggle goes away.
    buildWorkspace(workspace);
    await goToLine(page, tailCallLine);
    await page.waitForFunction(() => document.querySelectorAll('.monaco-editor .squiggly-error, .monaco-editor .squiggly-warning').length === 0, undefined, {
      timeout: 30000,
    });
    assert.deepEqual(await squiggles(page), []);
    await page.keyboard.press('Control+Shift+M');
    await page.locator('.markers-panel .monaco-list-row', { hasText: TAIL_CALL_MESSAGE }).waitFor({ state: 'detached', timeout: 10000 });
    // Nothing is left of the seed; Problems lists the workspace, so combined.bpf.c, never opened, is there.
    const remaining = await diagnosticLines(page);
    assert.ok(
      remaining.every((row) => !row.includes('seed.bpf.c') && !row.includes(TAIL_CALL_MESSAGE)),
      remaining.join('\n'),
    );
    assert.ok(
      remaining.some((row) => row.startsWith('combined.bpf.c')),
      `the unopened combined.bpf.c is listed: ${remaining.join(' | ')}`,
    );
    await page.locator('.statusbar-item', { hasText: 'BPF stack: passes on 6.1, 6.18' }).waitFor({ timeout: 10000 });
    await shot('rebuilt-squiggle-gone');

    // 6. The combined 512-byte rule in the CodeLens, as a link to the stack report.
    await openFromExplorer(page, 'combined.bpf.c');
    const lens = page.locator('.codelens-decoration', { hasText: 'of 512: rejected on 6.1' }).first();
    await lens.waitFor({ timeout: 30000 });
    const lensText = await lens.innerText();
    t.diagnostic(`combined lens: ${lensText}`);
    assert.match(lensText, /^frame \d+ B · \d+ B of 512: rejected on 6\.1 · \d+ B of 512: passes on 6\.18$/);
    await lens.locator('a').first().click();
    await page.locator('.tabs-container .tab', { hasText: 'combined.bpf.c — stack report' }).waitFor({ timeout: 15000 });
    await shot('combined-rule-lens-and-report');

    // 7. Verify on real kernels… from the command palette: the pick offers this machine's kernel
    // (preselected when the editor runs as root, as here) and the lab kernels; its report opens.
    await page
      .locator('.tabs-container .tab', { hasText: /^combined\.bpf\.c$/ })
      .first()
      .click();
    await page.keyboard.press('F1');
    const palette = page.locator('.quick-input-widget input');
    await palette.waitFor({ timeout: 10000 });
    await palette.fill('>BPF Stack Lens: Verify on real kernels');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Verify on real kernels' }).first().waitFor({ timeout: 10000 });
    await page.keyboard.press('Enter');
    await page.locator('.quick-input-widget .monaco-list-row', { hasText: "This machine's kernel" }).first().waitFor({ timeout: 15000 });
    assert.ok(await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'Linux 7.3 under QEMU' }).count(), 'the lab kernels are offered');
    await shot('verify-pick');
    if (process.getuid?.() === 0) {
      await page.keyboard.press('Enter');
      await page.locator('.tabs-container .tab', { hasText: 'combined.bpf.c — verified on real kernels' }).waitFor({ timeout: 60000 });
      await page.locator('.view-line', { hasText: 'Verify on real kernels: ' }).first().waitFor({ timeout: 15000 });
      // Monaco renders spaces as no-break spaces.
      const verified = (await page.locator('.view-line').allInnerTexts()).join('\n').replace(/\u00a0/g, ' ');
      t.diagnostic(`verify report: ${verified.split('\n').slice(0, 4).join(' | ')}`);
      assert.match(verified, /combined\.bpf\.o/);
      assert.match(verified, /^ {2}xdp_record on host \(.*\): (agrees|DIFFERS)$/m);
      assert.match(verified, /^(Every kernel agrees with the prediction|The real kernels DISAGREE with the prediction)/m);
      await shot('verify-report');
    } else {
      t.diagnostic("not root: the verify report step needs this machine's kernel");
      await page.keyboard.press('Escape');
    }
  } catch (error) {
    await shot('failure').catch(() => {});
    error.message += `\n--- code-server log (tail) ---\n${server.log().slice(-2000)}`;
    throw error;
  } finally {
    await context.close();
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
});
