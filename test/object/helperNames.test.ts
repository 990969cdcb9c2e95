import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KNOWN_HELPER_COUNT, helperName } from '../../server/src/object/helperNames';
import { skipOrFail } from '../support/unavailable';

const ROOT = path.resolve(__dirname, '../../..');
const GENERATOR = path.join(ROOT, 'scripts/gen-helper-names.mjs');
const UAPI_HEADER = '/usr/include/linux/bpf.h';
const LIBBPF_HEADER = '/usr/include/bpf/bpf_helper_defs.h';

test('helper ids the stack analysis cares about', () => {
  assert.equal(helperName(1), 'bpf_map_lookup_elem');
  assert.equal(helperName(6), 'bpf_trace_printk');
  assert.equal(helperName(12), 'bpf_tail_call');
  assert.equal(helperName(113), 'bpf_probe_read_kernel');
  assert.equal(helperName(165), 'bpf_snprintf');
  assert.equal(helperName(170), 'bpf_timer_set_callback');
  assert.equal(helperName(177), 'bpf_trace_vprintk');
  assert.equal(helperName(181), 'bpf_loop');
  assert.equal(helperName(0), undefined, 'BPF_FUNC_unspec is not a helper');
  assert.equal(helperName(-1), undefined);
  assert.equal(helperName(1.5), undefined);
  assert.equal(helperName(KNOWN_HELPER_COUNT), undefined);
  assert.ok(KNOWN_HELPER_COUNT >= 210);
});

test('every helper libbpf declares has the same id here', (t) => {
  if (!existsSync(LIBBPF_HEADER)) return skipOrFail(t, `${LIBBPF_HEADER} is not installed`);
  const declared = [...readFileSync(LIBBPF_HEADER, 'utf8').matchAll(/\(\s*\*\s*(bpf_\w+)\s*\)\s*\([^;]*?\)\s*=\s*\(void\s*\*\)\s*(\d+)\s*;/gs)];
  assert.ok(declared.length > 200);
  for (const [, name, id] of declared) assert.equal(helperName(Number(id)), name, `id ${id}`);
});

test('the committed table is what the generator makes from the installed headers', (t) => {
  if (!existsSync(UAPI_HEADER)) return skipOrFail(t, `${UAPI_HEADER} is not installed`);
  const directory = mkdtempSync(path.join(tmpdir(), 'helper-names-'));
  try {
    const output = path.join(directory, 'helperNames.ts');
    const run = spawnSync(process.execPath, [GENERATOR, UAPI_HEADER, LIBBPF_HEADER, output], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const committed = readFileSync(path.join(ROOT, 'server/src/object/helperNames.ts'), 'utf8');
    const generated = readFileSync(output, 'utf8');
    // Headers from other package versions may legitimately differ; only the list must agree.
    const rows = (text: string) => text.split('\n').filter((line) => /^\s+\/\*\s+\d+ \*\//.test(line));
    const sharedLength = Math.min(rows(committed).length, rows(generated).length);
    assert.deepEqual(rows(generated).slice(0, sharedLength), rows(committed).slice(0, sharedLength));
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('the generator reads the newer FN(name, id, ##ctx) form and checks the ids', () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'helper-names-'));
  try {
    const body = Array.from({ length: 120 }, (_, id) => `\tFN(helper_${id}, ${id}, ##ctx)\t\t\\`).join('\n');
    const header = path.join(directory, 'bpf.h');
    writeFileSync(header, `#define ___BPF_FUNC_MAPPER(FN, ctx...)\t\\\n${body}\n\t/* */\n`);
    const output = path.join(directory, 'out.ts');
    const run = spawnSync(process.execPath, [GENERATOR, header, path.join(directory, 'none.h'), output], { encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const text = readFileSync(output, 'utf8');
    assert.match(text, /\/\* {3}1 \*\/ 'bpf_helper_1',/);
    assert.match(text, /\/\* 119 \*\/ 'bpf_helper_119',/);

    writeFileSync(header, `#define ___BPF_FUNC_MAPPER(FN, ctx...)\t\\\n${body.replace('helper_7, 7,', 'helper_7, 8,')}\n`);
    const mismatch = spawnSync(process.execPath, [GENERATOR, header, path.join(directory, 'none.h'), output], { encoding: 'utf8' });
    assert.notEqual(mismatch.status, 0);
    assert.match(mismatch.stderr, /helper bpf_helper_7|helper helper_7 has id 8 but is at position 7/);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
