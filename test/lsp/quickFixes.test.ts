/**
 * Every printk quick fix, applied to a copy of the seed, must give C that clang-19 compiles for BPF,
 * that the analyzer then passes on 6.1 (where the seed is rejected), and that the running kernel's
 * verifier loads, where bpf() is allowed.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { quickFixes } from '../../server/src/lsp/codeActions';
import { lspQueries } from '../../server/src/lsp/syntax';
import { DEFAULT_SETTINGS } from '../../server/src/lsp/settings';
import { CDocument } from '../../server/src/source/parser';
import { compileBpf, hasClang, seedWorkspace } from './harness';
import { skipPartOrFail, skipUnlessCI } from '../support/unavailable';

const PROFILES = [
  { version: '6.1', jit: true },
  { version: '6.18', jit: true },
];
const PRINTK_CALL = 'stack_printk("acl-test';

/** Why the kernel cannot be asked here, or undefined when it can. */
function kernelUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  if (!existsSync('/sys/fs/bpf')) return 'no bpffs at /sys/fs/bpf';
  try {
    execFileSync('bpftool', ['version'], { stdio: 'ignore' });
  } catch {
    return 'bpftool is not installed';
  }
  return undefined;
}

/** The fixed source for the fix whose title starts with `prefix`. */
async function applyFix(text: string, file: string, prefix: string): Promise<string> {
  const parsed = await CDocument.create(text);
  try {
    const uri = pathToFileURL(file).href;
    const document = TextDocument.create(uri, 'c', 1, text);
    const at = text.indexOf(PRINTK_CALL) + 2;
    const snapshot = { uri, path: file, text, tree: parsed.tree, document, queries: await lspQueries() };
    const fix = quickFixes(snapshot, { start: at, end: at }, [], [], DEFAULT_SETTINGS).find((candidate) => candidate.title.startsWith(prefix));
    assert.ok(fix, `a fix starting with "${prefix}"`);
    return TextDocument.applyEdits(document, fix.edits.map((edit) => ({ range: { start: document.positionAt(edit.start), end: document.positionAt(edit.end) }, newText: edit.newText })));
  } finally {
    parsed.dispose();
  }
}

const FIXES: [string, string, (fixed: string) => void][] = [
  ['Remove this', 'remove', (fixed) => assert.ok(!fixed.includes('acl-test'))],
  ['Move the format', 'rodata', (fixed) => assert.match(fixed, /static const char fmt_0\[\] = "acl-test[^\n]*";\n\nSEC\("tc"\)\nint entry/)],
  ['Move this stack_printk into a noinline helper', 'helper', (fixed) => assert.match(fixed, /static __attribute__\(\(noinline\)\) void entry_printk_0\(unsigned long long arg0, unsigned long long arg1\)/)],
];

for (const [prefix, name, check] of FIXES) {
  test(`quick fix "${name}" compiles, passes on 6.1 and loads`, { skip: skipUnlessCI(hasClang() ? false : 'clang-19 is not installed') }, async (t) => {
    const { workspace, source } = seedWorkspace(`bpf-stack-lens-fix-${name}-`);
    try {
      const fixed = await applyFix(readFileSync(source, 'utf8'), source, prefix);
      check(fixed);
      writeFileSync(source, fixed);
      const object = join(workspace, 'seed.bpf.o');
      compileBpf(source, object);

      const analysis = analyzeObject(new Uint8Array(readFileSync(object)), object, PROFILES);
      const [program] = analysis.report.programs;
      assert.equal(program.name, 'entry');
      assert.ok(program.subprograms[0].stackDepth <= 152, `entry's frame lost the printk's 48 B: ${program.stackDepths}`);
      assert.deepEqual(program.verdicts.map((verdict) => [verdict.kernel, verdict.accepted]), [['6.1', true], ['6.18', true]]);

      const unavailable = kernelUnavailable();
      if (unavailable) {
        skipPartOrFail(t, `kernel load: ${unavailable}`);
        return;
      }
      const pin = `/sys/fs/bpf/bpf-stack-lens-fix-${name}-${process.pid}`;
      try {
        const load = spawnSync('bpftool', ['-d', 'prog', 'loadall', object, pin], { encoding: 'utf8' });
        const log = `${load.stdout}${load.stderr}`;
        if (load.status !== 0 && /Operation not permitted|EPERM/.test(log)) {
          skipPartOrFail(t, 'kernel load: bpf() is not permitted here');
          return;
        }
        assert.equal(load.status, 0, `the kernel rejected the fixed program:\n${log.split('\n').slice(-30).join('\n')}`);
        // The verifier's own per-subprogram depths, in libbpf's order, must be the analyzer's.
        assert.match(log, new RegExp(`stack depth ${program.stackDepths.replace(/\+/g, '\\+')}\\b`));
      } finally {
        rmSync(pin, { recursive: true, force: true });
      }
    } finally {
      rmSync(workspace, { recursive: true, force: true });
    }
  });
}
