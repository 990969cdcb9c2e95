/**
 * The stack bytes of each printk form by libbpf's rules (the fallback when there is no source
 * estimate), with the format length taken from tree-sitter's string literal (escapes count one
 * byte, the NUL is added, the total is rounded up to 8-byte slots).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findPrintkCalls } from '../../server/src/ide/printk';
import { DEFAULT_SETTINGS, type LensSettings } from '../../server/src/lsp/settings';
import { lspQueries } from '../../server/src/ide/syntax';
import { CDocument } from '../../server/src/source/parser';

async function costs(source: string, settings: Partial<LensSettings> = {}): Promise<[string, number, number | undefined][]> {
  const document = await CDocument.create(source);
  try {
    const calls = findPrintkCalls(document.tree, await lspQueries(), { ...DEFAULT_SETTINGS, ...settings });
    return calls.map((call) => [call.callee, call.libbpfCost.stackBytes, call.formatBytes]);
  } finally {
    document.dispose();
  }
}

const BODY = (calls: string) => `int f(int a, int b) {\n${calls}\n  return 0;\n}\n`;

test('libbpf bpf_printk: .rodata with up to 3 args, 8 bytes per arg from 4', async () => {
  assert.deepEqual(await costs(BODY('  bpf_printk("a=%d\\n", a);\n  bpf_printk("%d %d %d %d", a, b, a, b);')), [
    ['bpf_printk', 0, 6],
    ['bpf_printk', 32, 12],
  ]);
});

test('BPF_NO_GLOBAL_DATA, the defines setting, or printkModel "stack" put the format on the stack', async () => {
  const call = '  bpf_printk("hello %d\\n", a);';
  const expected: [string, number, number | undefined][] = [['bpf_printk', 16, 10]];
  assert.deepEqual(await costs(`#define BPF_NO_GLOBAL_DATA\n${BODY(call)}`), expected);
  assert.deepEqual(await costs(BODY(call), { defines: { BPF_NO_GLOBAL_DATA: '1' } }), expected);
  assert.deepEqual(await costs(BODY(call), { printkModel: 'stack' }), expected);
  assert.deepEqual(await costs(`#define BPF_NO_GLOBAL_DATA\n${BODY(call)}`, { printkModel: 'rodata' }), [['bpf_printk', 0, 10]]);
});

test('a hand-written macro with a local char array costs the format rounded to 8', async () => {
  const macro = '#define my_printk(fmt, ...) ({ char ____fmt[] = fmt; bpf_trace_printk(____fmt, sizeof(____fmt), ##__VA_ARGS__); })\n';
  // 44 characters, escapes included, plus the NUL: 45, in 8-byte slots 48 (the seed's printk).
  assert.deepEqual(await costs(macro + BODY('  my_printk("acl-test, overlay saddr=0x%08x daddr=0x%08x\\n", a, b);')), [['my_printk', 48, 45]]);
  assert.deepEqual(await costs(macro + BODY('  my_printk("x" "\\x41\\101" "é");')), [['my_printk', 8, 6]]);
});

test('bpf_trace_printk costs its local format array, and nothing for a literal or a static one', async () => {
  const source = BODY(
    '  char fmt[] = "abc %d\\n";\n  static const char sfmt[] = "abc";\n  bpf_trace_printk(fmt, sizeof(fmt), a);\n  bpf_trace_printk(sfmt, sizeof(sfmt));\n  bpf_trace_printk("lit", 4);',
  );
  assert.deepEqual(await costs(source), [
    ['bpf_trace_printk', 8, undefined],
    ['bpf_trace_printk', 0, undefined],
    ['bpf_trace_printk', 0, 4],
  ]);
});
