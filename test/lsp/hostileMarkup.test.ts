/**
 * Markdown injection: the hover interpolates a program's SEC() string, an object's symbol names and
 * path, and the source's identifiers, all of which a repository writes. Rendered by a CommonMark
 * renderer in its most permissive setting (raw HTML on, bare URLs linked), the hover must show that
 * text as text: no image, no link, no HTML element the file wrote.
 *
 * markdown-it is the renderer @vscode/vsce (a dev dependency) brings; VS Code's own is marked, which
 * follows the same CommonMark escaping rules.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { MARKDOWN_TEXT_CAP, markdownCode, markdownText } from '../../server/src/common/markdown';
import { craftObject } from '../fuzz/craftObject';
import { random } from '../fuzz/fuzz';
import { skipOrFail } from '../support/unavailable';
import { LspSession, poll } from './harness';

const HOSTILE_SECTION = 'kprobe/![x](http://e/x.png)<img src=x onerror=alert(1)>[l](https://e/)';
const HOSTILE = [
  HOSTILE_SECTION,
  '<script>alert(1)</script>',
  '**bold** _em_ __strong__ `code` ``two``',
  '# heading\n\n- item\n> quote\n\n<b>x</b>',
  'https://example.com/a www.example.com a@example.com',
  '&lt;img&gt; &#60;b&#62; &amp;',
  '[ref]: http://e/ "t"\n[ref]',
  '\\`escaped\\` \\\\ \\*',
  '$(zap) | a | b |\n|---|---|',
  'a\u202eb\u0000c\u001bd',
  '````',
  '` leading and trailing `',
  '',
];

type Renderer = { render(text: string): string };

function renderer(t: { skip(message?: string): void; diagnostic(message: string): void }): Renderer | undefined {
  try {
    const MarkdownIt = require('markdown-it') as new (options: object) => Renderer;
    return new MarkdownIt({ html: true, linkify: true });
  } catch (error) {
    skipOrFail(t, `markdown-it (from @vscode/vsce) is not installed: ${String(error)}`);
    return undefined;
  }
}

const escapeHtml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** What the helpers promise to show: one line, controls and bidi overrides as U+FFFD, cut at the cap. */
const shown = (text: string) =>
  (text.length > MARKDOWN_TEXT_CAP ? `${text.slice(0, MARKDOWN_TEXT_CAP)}…` : text)
    .replace(/\r\n?|\n/g, ' ')
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '\uFFFD');

/** Only the elements the hover's own markdown makes: no image, link or HTML the text could have made. */
function assertInert(html: string, what: string, allowed = ['p', 'code']): void {
  for (const [, tag] of html.matchAll(/<\/?([a-z0-9]+)/gi)) assert.ok(allowed.includes(tag.toLowerCase()), `${what} made a <${tag}>: ${html}`);
}

test('markdownText renders as exactly its text, whatever the text', (t) => {
  const md = renderer(t);
  if (!md) return;
  const next = random(0xa11);
  const alphabet = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~ \nab1<img src=x>http://e.x';
  const generated = Array.from({ length: 2000 }, () =>
    Array.from({ length: Math.floor(next() * 40) }, () => alphabet[Math.floor(next() * alphabet.length)]).join(''),
  );
  for (const text of [...HOSTILE, ...generated, 'x'.repeat(500)]) {
    const html = md.render(`before ${markdownText(text)} after`);
    assert.equal(html.trim(), `<p>before ${escapeHtml(shown(text))} after</p>`, JSON.stringify(text));
  }
});

test('markdownCode is one code span holding the text, whatever backticks it holds', (t) => {
  const md = renderer(t);
  if (!md) return;
  for (const text of HOSTILE) {
    const html = md.render(`in ${markdownCode(text)} here`).trim();
    assertInert(html, JSON.stringify(text));
    const code = /^<p>in <code>(.*)<\/code> here<\/p>$/s.exec(html);
    assert.ok(code, `${JSON.stringify(text)} is not one code span: ${html}`);
    // A code span strips one space from each end of its text when both are there.
    const expected = shown(text) === '' ? ' ' : shown(text);
    assert.equal(code[1], escapeHtml(expected), JSON.stringify(text));
  }
});

test('the hover shows a hostile SEC() string, symbol and object path as text', async (t) => {
  const md = renderer(t);
  if (!md) return;
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-markup-'));
  const source = join(workspace, 'prog.c');
  // The estimate reads the SEC() string from the source; the object carries it as its section name,
  // in a file whose own name is markup too.
  const text = `__attribute__((section("${HOSTILE_SECTION}"))) int p0(void *ctx) { volatile char buf[64]; buf[0] = 1; return buf[0]; }\n`;
  writeFileSync(source, text);
  writeFileSync(join(workspace, '![o](http:e)<b>.o'), craftObject({ chain: 0, programs: 1, section: HOSTILE_SECTION, lineInfoFile: source }));
  const session = new LspSession({ kernels: ['6.18'] });
  try {
    await session.initialize(workspace, { kernels: ['6.18'] });
    const uri = pathToFileURL(source).href;
    await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
    const position = { line: 0, character: text.indexOf('p0(') + 1 };
    const value = await poll(
      async () =>
        (
          ((await session.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position })) as Hover | null)?.contents as
            MarkupContent | undefined
        )?.value ?? '',
      (markdown) => /measured in/.test(markdown) && /estimated from the source/i.test(markdown),
      'a hover with the object and the estimate',
    );
    const html = md.render(value);
    assertInert(html, 'the hover', ['p', 'code', 'strong', 'hr', 'em', 'ul', 'li']);
    assert.ok(html.includes(escapeHtml(`SEC("${HOSTILE_SECTION}")`)), `the SEC() string is shown as written: ${html}`);
    assert.ok(html.includes(escapeHtml('![o](http:e)<b>.o')), `the object's name is shown as written: ${html}`);
  } finally {
    await session.close();
    rmSync(workspace, { recursive: true, force: true });
  }
});
