/**
 * One printk model, over the real protocol: hover and the quick fixes take a printk's bytes from the
 * items the source estimate put in the frame for that call, which sees the macros as they expand,
 * where libbpf's rules read from the unexpanded call would say otherwise. Without an estimate (it is
 * turned off here at the end) they fall back to libbpf's rules, and the hover says so.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeAction, Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { LspSession, poll } from './harness';

const SETTINGS = { kernels: ['6.1'] };
const FROM_ESTIMATE = /As the source estimate counts|The source estimate finds nothing/;

/**
 * Each case on a line of its own. `#define BPF_NO_GLOBAL_DATA` after bpf_helpers.h is too late to
 * change bpf_printk, which picked `static const` when the header was read.
 */
const DIFFERING = [
  '#include <linux/bpf.h>',
  '#include <bpf/bpf_helpers.h>',
  '#define BPF_NO_GLOBAL_DATA',
  '#define log_msg(fmt, ...) ({ char msg[64] = fmt; bpf_trace_printk(msg, sizeof(msg), ##__VA_ARGS__); })',
  '#define PAIR(x) x, x',
  '',
  'SEC("tc")',
  'int entry(struct __sk_buff *skb)',
  '{',
  '\tint a = skb->len, b = skb->mark;',
  '\tbpf_printk("late define: %d\\n", a);',
  '\tlog_msg("hello %d\\n", a);',
  '\tbpf_printk("%d %d %d %d\\n", PAIR(a), b, b);',
  '\tbpf_printk("%d %d %d %d %d\\n", a, b, a, b, a);',
  '\treturn 0;',
  '}',
  'char LICENSE[] SEC("license") = "GPL";',
  '',
].join('\n');
const LATE_DEFINE_LINE = 10;
const LOG_MSG_LINE = 11;
const PAIR_LINE = 12;
const FIVE_ARGS_LINE = 13;

/** BPF_NO_GLOBAL_DATA before the include: bpf_printk's format is `char ____fmt[]` on the stack, also in an inlined helper. */
const ON_STACK = [
  '#define BPF_NO_GLOBAL_DATA',
  '#include <linux/bpf.h>',
  '#include <bpf/bpf_helpers.h>',
  '',
  'static __always_inline void helper(int a)',
  '{',
  '\tbpf_printk("in helper %d\\n", a);',
  '}',
  '',
  'SEC("tc")',
  'int entry(struct __sk_buff *skb)',
  '{',
  '\thelper(skb->len);',
  '\tbpf_printk("acl-test, overlay saddr=0x%08x daddr=0x%08x\\n", skb->len, skb->mark);',
  '\treturn 0;',
  '}',
  'char LICENSE[] SEC("license") = "GPL";',
  '',
].join('\n');
const HELPER_PRINTK_LINE = 6;
const ENTRY_PRINTK_LINE = 13;

let session: LspSession;
let workspace: string;
let differingUri: string;
let onStackUri: string;

async function hoverAt(uri: string, line: number): Promise<string> {
  const hover: Hover | null = await session.connection.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line, character: 3 } });
  return (hover?.contents as MarkupContent | undefined)?.value ?? '';
}

/** The hover once the estimate of the text has come in (requests never wait for it). */
function estimatedHoverAt(uri: string, line: number): Promise<string> {
  return poll(
    () => hoverAt(uri, line),
    (value) => FROM_ESTIMATE.test(value),
    'the estimate in the hover',
  );
}

async function fixTitlesAt(uri: string, line: number): Promise<string[]> {
  const actions: CodeAction[] = await session.connection.sendRequest('textDocument/codeAction', {
    textDocument: { uri },
    range: { start: { line, character: 2 }, end: { line, character: 2 } },
    context: { diagnostics: [] },
  });
  return actions.map((action) => action.title);
}

async function open(name: string, text: string): Promise<string> {
  const filePath = join(workspace, name);
  writeFileSync(filePath, text);
  const uri = pathToFileURL(filePath).href;
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
  return uri;
}

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-printk-'));
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS);
  differingUri = await open('differing.bpf.c', DIFFERING);
  onStackUri = await open('onstack.bpf.c', ON_STACK);
});

after(async () => {
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('a BPF_NO_GLOBAL_DATA defined after bpf_helpers.h changes nothing: 0 B, and no fixes', async () => {
  const value = await estimatedHoverAt(differingUri, LATE_DEFINE_LINE);
  assert.match(value, /\*\*bpf_printk\*\* puts \*\*0 B\*\* on the stack of `entry`/);
  // libbpf's rules see the #define and would have said 24 B: the hover names the difference.
  assert.match(value, /libbpf's rules, reading the call as written, would count 24 B/);
  assert.deepEqual(await fixTitlesAt(differingUri, LATE_DEFINE_LINE), []);
});

test('a macro that builds its format in a sized local of another name costs that local', async () => {
  const value = await estimatedHoverAt(differingUri, LOG_MSG_LINE);
  // By the rules the format would be 10 bytes, 16 in slots; the array is 64.
  assert.match(value, /\*\*log_msg\*\* puts \*\*64 B\*\* on the stack of `entry`/);
  assert.match(value, /`msg` \(`char\[64\]`\) 64 B/);
  const titles = await fixTitlesAt(differingUri, LOG_MSG_LINE);
  // The frame loses less than the 64 B: the other printks' objects on the lines below reuse its slots.
  assert.equal(titles[0], 'Remove this log_msg (frees 24 B of the frame of entry)');
  assert.ok(
    titles.some((title) => title.startsWith('Move this log_msg into a noinline helper entry_printk_0() (frees 24 B of the frame of entry; the helper')),
    titles.join('\n'),
  );
});

test('a printk whose arguments a macro multiplies builds ___param for all of them', async () => {
  // Written with 3 arguments, which the rules keep in .rodata; expanded it has 4: ___param[4].
  const value = await estimatedHoverAt(differingUri, PAIR_LINE);
  assert.match(value, /\*\*bpf_printk\*\* puts \*\*32 B\*\* on the stack of `entry`/);
  assert.match(value, /its arguments \(`unsigned long long\[4\]`\) 32 B/);
  assert.equal((await fixTitlesAt(differingUri, PAIR_LINE))[0], `Remove this bpf_printk (frees nothing: shares its slots with line ${LOG_MSG_LINE + 1})`);
});

test('a printk with 5 arguments costs its ___param array, as the estimate counts it', async () => {
  const value = await estimatedHoverAt(differingUri, FIVE_ARGS_LINE);
  assert.match(value, /\*\*bpf_printk\*\* puts \*\*40 B\*\* on the stack of `entry`/);
  assert.match(value, /its arguments \(`unsigned long long\[5\]`\) 40 B/);
});

test('BPF_NO_GLOBAL_DATA before the include: the 45-byte ____fmt is 48 B in the frame, in an inlined helper too', async () => {
  const value = await estimatedHoverAt(onStackUri, ENTRY_PRINTK_LINE);
  assert.match(value, /\*\*bpf_printk\*\* puts \*\*48 B\*\* on the stack of `entry`/);
  assert.match(value, /its format `[^`]+` \(`char\[45\]`, copied to the stack\) 48 B/);
  assert.match(value, /Format string: `"[^`]*"`, 45 bytes with the NUL/);
  // The inlined helper's 16-byte format shares the slots: clang-19 measures 48 B with the call, 16 B without.
  assert.equal((await fixTitlesAt(onStackUri, ENTRY_PRINTK_LINE))[0], 'Remove this bpf_printk (frees 32 B of the frame of entry)');

  const inHelper = await estimatedHoverAt(onStackUri, HELPER_PRINTK_LINE);
  assert.match(inHelper, /puts \*\*16 B\*\* on the stack of `helper`/);
  assert.match(inHelper, /`helper` is inlined: these bytes count in the frames of its callers/);
});

test("with the estimate turned off, libbpf's rules answer, and the hover says so", async () => {
  await session.changeSettings({ ...SETTINGS, sourceEstimate: { enabled: false } });
  const value = await poll(
    () => hoverAt(differingUri, LOG_MSG_LINE),
    (text) => /source estimate is off/.test(text),
    'the hover without an estimate',
  );
  assert.match(value, /\*\*log_msg\*\* puts \*\*16 B\*\* on the stack of `entry`/);
  assert.match(value, /The source estimate is off \(`bpfStackLens\.sourceEstimate\.enabled`\): these bytes follow libbpf's rules/);
  assert.match(await hoverAt(differingUri, LATE_DEFINE_LINE), /puts \*\*24 B\*\*/);
  await session.changeSettings(SETTINGS);
  assert.match(await estimatedHoverAt(differingUri, LOG_MSG_LINE), /puts \*\*64 B\*\*/);
});
