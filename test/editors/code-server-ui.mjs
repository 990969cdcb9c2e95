// Small helpers over VS Code's DOM for the code-server test: the editor only renders the lines in
// view, so each check first moves there (Ctrl+G), then maps squiggles to line numbers by position.

/** Ctrl+G LINE Enter in the active editor; waits until the line number is rendered. */
export async function goToLine(page, line) {
  await page.keyboard.press('Control+1'); // focus the editor (the first editor group)
  await page.keyboard.press('Control+G');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ timeout: 10000 });
  await input.fill(`:${line}`);
  await page.keyboard.press('Enter');
  await page
    .locator('.monaco-editor .margin-view-overlays .line-numbers', { hasText: new RegExp(`^${line}$`) })
    .first()
    .waitFor({ timeout: 10000 });
}

/** [{ line, kind }] for every squiggle rendered in the active editor. */
export function squiggles(page) {
  return page.evaluate(() => {
    const editor = document.querySelector('.monaco-editor');
    if (!editor) return [];
    const numbers = [...editor.querySelectorAll('.margin-view-overlays .line-numbers')].map((element) => ({
      line: Number(element.textContent.trim()),
      rect: element.getBoundingClientRect(),
    }));
    return [...editor.querySelectorAll('.squiggly-error, .squiggly-warning')].map((element) => {
      const rect = element.getBoundingClientRect();
      const middle = rect.top + rect.height / 2;
      const number = numbers.find((candidate) => candidate.rect.top <= middle && middle <= candidate.rect.bottom);
      return { line: number ? number.line : -1, kind: element.classList.contains('squiggly-error') ? 'error' : 'warning' };
    });
  });
}

/** Waits for a squiggle on `line` (1-based) and returns it, or undefined after `timeout` ms. */
export async function waitForSquiggleOn(page, line, { timeout = 30000 } = {}) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const found = (await squiggles(page)).find((squiggle) => squiggle.line === line);
    if (found) return found;
    await page.waitForTimeout(200);
  }
  return undefined;
}

/** The rows of the Problems panel (open it first), as text. */
export function diagnosticLines(page) {
  return page.locator('.markers-panel .monaco-list-row').allInnerTexts();
}

/**
 * Moves the mouse onto the token `word` in the editor's rendered lines and waits for a hover
 * containing `expect`. Retries with a fresh mouse move: a CodeLens or view zone arriving while the
 * mouse rests can shift the line away from under it.
 */
export async function hoverWord(page, word, expect, { attempts = 5 } = {}) {
  const hover = page.locator('.monaco-hover-content').filter({ hasText: expect }).first();
  for (let attempt = 1; ; attempt += 1) {
    await page.mouse.move(1, 1);
    const token = page.locator('.monaco-editor .view-line span span', { hasText: new RegExp(`^${word}$`) }).first();
    await token.hover();
    try {
      await hover.waitFor({ timeout: 3000 });
      return hover;
    } catch (error) {
      if (attempt >= attempts) throw error;
    }
  }
}

/**
 * Ctrl+. at the cursor, then the action whose title contains `title`: the mouse moves onto it (which
 * focuses it) and Enter applies it. `beforeAccept` runs while the menu is open (a screenshot).
 * Retries when the edit did not land (the menu can be rebuilt under the mouse when diagnostics
 * arrive). Returns the action's full title.
 */
export async function applyQuickFix(page, title, { beforeAccept = async () => {}, attempts = 3 } = {}) {
  for (let attempt = 1; ; attempt += 1) {
    await page.keyboard.press('Control+.');
    const action = page.locator('.action-widget .monaco-list-row', { hasText: title }).first();
    await action.waitFor({ timeout: 15000 });
    const fullTitle = (await action.innerText()).trim();
    await action.hover();
    if (attempt === 1) await beforeAccept();
    await page.keyboard.press('Enter');
    try {
      await page.locator('.tabs-container .tab.active.dirty').waitFor({ timeout: 5000 });
      return fullTitle;
    } catch (error) {
      if (attempt >= attempts) throw new Error(`the quick fix "${fullTitle}" did not change the file`, { cause: error });
      await page.keyboard.press('Escape');
    }
  }
}
