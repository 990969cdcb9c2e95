/**
 * The vmlinux.h oracle. The running kernel's BTF knows the exact size of every struct and union it
 * was built with; bpftool turns the same BTF into vmlinux.h. The layout engine reads vmlinux.h and
 * must reproduce BTF's sizes. Where it cannot — bpftool 7.1 writes 1-byte enums as plain 4-byte
 * enums and the kernel's 24-byte x86 va_list as BPF's 8-byte one, so the header itself no longer
 * says what BTF says — clang-19 compiling the same vmlinux.h must agree with the engine, and it
 * must agree for every other type too.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Btf, readBtf } from '../../server/src/object/btf';
import { typesReport } from '../../server/src/source/typesReport';
import { HeaderIndex } from '../../server/src/source/headerIndex';
import { hasClang, runClang, temporaryDirectory } from './helpers';
import { skipPartOrFail, skipUnlessCI } from '../support/unavailable';

const KERNEL_BTF = '/sys/kernel/btf/vmlinux';

function bpftoolAvailable(): boolean {
  return spawnSync('bpftool', ['version'], { encoding: 'utf8' }).status === 0;
}

const skip = skipUnlessCI(
  !fs.existsSync(KERNEL_BTF) ? `${KERNEL_BTF} is absent: no kernel BTF to compare against` : !bpftoolAvailable() ? 'bpftool is not installed' : false,
);

/** Sizes of every named struct and union in raw BTF (`[12] STRUCT 'name' size=N vlen=M`); names can repeat. */
function btfRecordSizes(rawDump: string): Map<string, Set<number>> {
  const sizes = new Map<string, Set<number>>();
  for (const match of rawDump.matchAll(/^\[\d+\] (?:STRUCT|UNION) '([^']+)' size=(\d+)/gm)) {
    let set = sizes.get(match[1]);
    if (!set) sizes.set(match[1], (set = new Set()));
    set.add(Number(match[2]));
  }
  return sizes;
}

/**
 * Whether BTF's record holds, by value, something bpftool 7.1's C output cannot express: an enum
 * whose size is not 4 (written as a plain enum, so 4 bytes) or the kernel's va_list (written as
 * BPF's __builtin_va_list). A record that differs from BTF for any other reason is the engine's fault.
 */
function lossyInHeader(btf: Btf, typeId: number, seen = new Set<number>()): boolean {
  if (seen.has(typeId)) return false;
  seen.add(typeId);
  const type = btf.types[typeId];
  if (!type) return false;
  switch (type.kind) {
    case 'enum':
      return type.size !== 4;
    case 'typedef':
      return /^(__builtin_va_list|va_list|__gnuc_va_list)$/.test(type.name) || lossyInHeader(btf, type.type!, seen);
    case 'const':
    case 'volatile':
    case 'restrict':
    case 'type_tag':
      return lossyInHeader(btf, type.type!, seen);
    case 'array':
      return lossyInHeader(btf, type.elemType!, seen);
    case 'struct':
    case 'union':
      return (type.members ?? []).some((member) => lossyInHeader(btf, member.type, seen));
    default:
      return false;
  }
}

test('every named struct and union of vmlinux.h has the size BTF (or clang on the same header) gives it', { skip, timeout: 120_000 }, (t) => {
  const directory = temporaryDirectory('vmlinux');
  const header = path.join(directory, 'vmlinux.h');
  const dumpC = spawnSync('bpftool', ['btf', 'dump', 'file', KERNEL_BTF, 'format', 'c'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  assert.equal(dumpC.status, 0, dumpC.stderr);
  fs.writeFileSync(header, dumpC.stdout);
  const dumpRaw = spawnSync('bpftool', ['btf', 'dump', 'file', KERNEL_BTF], { encoding: 'utf8', maxBuffer: 1 << 30 });
  assert.equal(dumpRaw.status, 0, dumpRaw.stderr);
  const btf = btfRecordSizes(dumpRaw.stdout);

  const main = path.join(directory, 'main.bpf.c');
  fs.writeFileSync(main, '#include "vmlinux.h"\n');
  const cacheDir = path.join(directory, 'cache');

  const coldStart = performance.now();
  const cold = typesReport(main, { index: new HeaderIndex({ cacheDir }) });
  const coldMs = performance.now() - coldStart;
  const warmIndex = new HeaderIndex({ cacheDir });
  const warmStart = performance.now();
  const warm = typesReport(main, { index: warmIndex });
  const warmMs = performance.now() - warmStart;
  t.diagnostic(`typesReport over vmlinux.h: cold ${coldMs.toFixed(0)} ms, warm (disk cache) ${warmMs.toFixed(0)} ms`);
  assert.equal(warmIndex.statistics.diskHits, 1, 'the warm run reads vmlinux.h from the disk cache');
  assert.deepEqual(warm.types, cold.types, 'the disk cache gives back what was indexed');
  assert.deepEqual(cold.problems, []);

  const types = cold.types;
  assert.ok(types.length > 1000, `only ${types.length} named records`);
  const mismatches: string[] = [];
  let exact = 0;
  for (const entry of types) {
    // bpftool renames the second and later types of one name to name___2, name___3, ...
    const btfName = entry.name.replace(/___\d+$/, '');
    const sizes = btf.get(btfName);
    if (sizes?.has(entry.size)) exact++;
    else mismatches.push(`${entry.kind} ${entry.name}: engine ${entry.size}, BTF ${sizes ? [...sizes].join('|') : 'none'}`);
  }
  t.diagnostic(`${exact}/${types.length} records exactly as BTF sizes them`);
  for (const mismatch of mismatches.slice(0, 10)) t.diagnostic(`differs from BTF: ${mismatch}`);

  // Every difference must be one the header itself carries: each BTF record of that name holds a
  // small enum or va_list by value.
  const { btf: kernelBtf } = readBtf(new Uint8Array(fs.readFileSync(KERNEL_BTF)), true);
  assert.ok(kernelBtf, 'the kernel BTF decodes');
  const recordsByName = new Map<string, number[]>();
  for (const type of kernelBtf.types) {
    if ((type.kind === 'struct' || type.kind === 'union') && type.name) {
      recordsByName.set(type.name, [...(recordsByName.get(type.name) ?? []), type.id]);
    }
  }
  const unexplained = mismatches.filter((mismatch) => {
    const name = mismatch
      .split(':')[0]
      .split(' ')[1]
      .replace(/___\d+$/, '');
    const ids = recordsByName.get(name) ?? [];
    return ids.length === 0 || !ids.every((id) => lossyInHeader(kernelBtf, id));
  });
  assert.deepEqual(unexplained, [], 'records that differ from BTF although the header describes them fully');
  t.diagnostic(`the other ${mismatches.length} hold a non-4-byte enum or va_list by value, which bpftool 7.1's header cannot express`);

  if (!hasClang()) {
    skipPartOrFail(t, 'clang-19 is not installed: the engine is held to BTF alone');
    return;
  }
  // Hold the engine to clang on the very same header, for every record.
  const asserts = types.map(
    ({ kind, name, size, align }) => `_Static_assert(sizeof(${kind} ${name}) == ${size} && _Alignof(${kind} ${name}) == ${align}, "${name}");`,
  );
  const check = path.join(directory, 'check.c');
  fs.writeFileSync(check, `#include "vmlinux.h"\n${asserts.join('\n')}\n`);
  const result = runClang(['-fsyntax-only', '-ferror-limit=0', `-I${directory}`, check]);
  const failures = result.stderr.split('\n').filter((line) => line.includes('error:'));
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} records where clang disagrees with the engine`);
  t.diagnostic(
    `clang-19 agrees with the engine on all ${types.length} records (size and alignment); the ${mismatches.length} BTF differences are the header's`,
  );
});
