/**
 * The editor's verify report, without a kernel: which kernels names mean, which objects a file
 * stands for, and that a kernel disagreeing with the prediction is said plainly, which way, at the
 * top, with the targets that gave no answer one line each. (What the kernels really say is
 * test/lsp/verify.test.ts and test/cli/verify.test.ts.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { DocumentStackAnalysis } from '../../server/src/ide/analysis';
import { type VerifyEntry, formatVerifyReport, formatVerifyText, objectsToVerify, verifyTargetsOf } from '../../server/src/ide/verify';

function entry(program: string, real: VerifyEntry['real'], predicted: VerifyEntry['predicted']): VerifyEntry {
  const agrees =
    predicted !== undefined && predicted.verdict === real.verdict && predicted.error === real.error && predicted.stackDepthLine === real.stackDepthLine;
  return {
    object: '/w/a.bpf.o',
    program,
    kernel: '6.1.170',
    real,
    predicted,
    agrees,
    subprograms: [{ index: 0, name: program, file: '/w/a.bpf.c', line: 10 }],
  };
}

const TOO_LARGE = 'combined stack size of 2 calls is 544. Too large';

test('a kernel that disagrees is said plainly and which way, above the listing', () => {
  const entries = [
    entry('same', { verdict: 'accepted', stackDepthLine: 'stack depth 8' }, { verdict: 'accepted', stackDepthLine: 'stack depth 8' }),
    entry(
      'false_accept',
      { verdict: 'rejected', error: TOO_LARGE, stackDepthLine: 'stack depth 256+264' },
      { verdict: 'accepted', stackDepthLine: 'stack depth 256+264' },
    ),
    entry(
      'false_reject',
      { verdict: 'accepted', stackDepthLine: 'stack depth 256+264' },
      { verdict: 'rejected', error: TOO_LARGE, stackDepthLine: 'stack depth 256+264' },
    ),
    entry('line_only', { verdict: 'accepted', stackDepthLine: 'stack depth 237+13' }, { verdict: 'accepted', stackDepthLine: 'stack depth 240+16' }),
    entry('refused', { verdict: 'error', errno: 1 }, { verdict: 'accepted', stackDepthLine: 'stack depth 8' }),
  ];
  const report = formatVerifyReport(
    ['/w/a.bpf.o'],
    ['host', '6.1'],
    { entries, failures: ['qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)'], cancelled: false },
    ['a.bpf.o is older than a.bpf.c: the kernels judge the object as it was built'],
  );
  const lines = report.split('\n');
  assert.deepEqual(lines.slice(0, 9), [
    'Verify on real kernels: /w/a.bpf.o',
    'kernels: host, 6.1',
    'note: a.bpf.o is older than a.bpf.c: the kernels judge the object as it was built',
    '',
    'The real kernels DISAGREE with the prediction on 3 of 5 program verdicts:',
    `  false_accept on 6.1.170: the analyzer passes a program this kernel rejects: kernel rejected (${TOO_LARGE}), predicted accepted`,
    `  false_reject on 6.1.170: the analyzer rejects a program this kernel accepts: kernel accepted, predicted rejected (${TOO_LARGE})`,
    '  line_only on 6.1.170: same verdict, different stack depth line: kernel "stack depth 237+13", predicted "stack depth 240+16"',
    '1 program(s) got no verdict: the verifier never judged them (no verdict (errno 1: bpf() refused before the verifier ran)).',
  ]);
  assert.equal(lines[9], 'no answer: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)');
  // Then the listing `bpf-stack-lens verify` prints, unchanged.
  assert.ok(report.endsWith(`\n\n${formatVerifyText(entries)}`));
  assert.match(report, /^ {2}false_accept on 6\.1\.170: DIFFERS$/m);
});

test("libbpf's messages say why a load got no verdict, and that a kernel refused the object's BTF", () => {
  const noTarget = entry(
    'fentry_prog',
    {
      verdict: 'error',
      errno: 3,
      loaderMessages: [
        "libbpf: prog 'fentry_prog': failed to find kernel BTF type ID of 'no_such_function': -3",
        "libbpf: prog 'fentry_prog': failed to prepare load attributes: -3",
        "libbpf: failed to load object '/w/a.bpf.o'",
      ],
    },
    { verdict: 'accepted', stackDepthLine: 'stack depth 8' },
  );
  const withoutBtf = entry(
    'uses_callback',
    {
      verdict: 'rejected',
      error: 'unrecognized bpf_ld_imm64 insn',
      stackDepthLine: 'stack depth 0',
      // As libbpf prints them when 5.10 refuses an empty DATASEC (from the lab, abridged).
      loaderMessages: [
        'libbpf: BTF loading error: -22',
        'libbpf: -- BEGIN BTF LOAD LOG ---',
        'magic: 0xeb9f',
        'version: 1',
        '[4] DATASEC .rodata size=0 vlen=0 vlen == 0',
        '-- END BTF LOAD LOG --',
        'libbpf: Error loading .BTF into kernel: -22. BTF is optional, ignoring.',
        "libbpf: prog 'uses_callback': BPF program load failed: Invalid argument",
        "libbpf: prog 'uses_callback': failed to load: -22",
      ],
    },
    { verdict: 'rejected', error: 'unrecognized bpf_ld_imm64 insn', stackDepthLine: 'stack depth 0' },
  );
  const listing = formatVerifyText([noTarget, withoutBtf]).split('\n');
  // The first message names the reason; "failed to load object" only says that it failed.
  assert.ok(listing.includes("    kernel:    no verdict (errno 3: libbpf: prog 'fentry_prog': failed to find kernel BTF type ID of 'no_such_function': -3)"));
  // The kernel's BTF log is its last line; the routine failure lines are left to the verdict.
  const loaderLines = (lines: string[]): string[] => lines.filter((line) => line.startsWith('    loader:'));
  assert.deepEqual(loaderLines(formatVerifyText([withoutBtf]).split('\n')), [
    '    loader:    libbpf: BTF loading error: -22',
    "    loader:    the kernel's BTF log ends: [4] DATASEC .rodata size=0 vlen=0 vlen == 0",
    '    loader:    libbpf: Error loading .BTF into kernel: -22. BTF is optional, ignoring.',
  ]);
  // Four a program in text; the rest are in the JSON.
  const chatty = entry('chatty', { verdict: 'accepted', loaderMessages: ['a', 'b', 'c', 'd', 'e', 'f'].map((word) => `libbpf: ${word}`) }, undefined);
  assert.deepEqual(loaderLines(formatVerifyText([chatty]).split('\n')).slice(3), [
    '    loader:    libbpf: d',
    '    loader:    (2 more lines in --format json)',
  ]);
  assert.match(
    formatVerifyReport(['/w/a.bpf.o'], ['6.1'], { entries: [noTarget], failures: [], cancelled: false }),
    /^1 program\(s\) got no verdict: the verifier never judged them \(no verdict \(errno 3: libbpf: prog 'fentry_prog': failed to find kernel BTF type ID/m,
  );
});

test('all agreeing, and cancelled part-way, are said too', () => {
  const entries = [entry('same', { verdict: 'accepted', stackDepthLine: 'stack depth 8' }, { verdict: 'accepted', stackDepthLine: 'stack depth 8' })];
  assert.match(
    formatVerifyReport(['/w/a.bpf.o'], ['host'], { entries, failures: [], cancelled: false }),
    /^Every kernel agrees with the prediction \(1 program verdict: verdict, error and stack depth line, word for word\)\.$/m,
  );
  assert.match(
    formatVerifyReport(['/w/a.bpf.o'], ['host', '7.3'], { entries, failures: [], cancelled: true }),
    /^Cancelled: the kernels below are those that finished before\.$/m,
  );
});

test('kernel names: host, a label, an exact release or a package; an unknown one is one line', () => {
  const parsed = verifyTargetsOf(['host', '6.1', '6.12.107', 'linux-binary-7.3-amd64']);
  assert.ok('targets' in parsed);
  assert.deepEqual(
    parsed.targets.map((target) => (target.kind === 'host' ? 'host' : target.kernel.label)),
    ['host', '6.1', '6.12', '7.3'],
  );
  assert.deepEqual(verifyTargetsOf(['4.19']), { error: 'no lab kernel "4.19" (lab kernels: host, 5.10, 6.1, 6.12, 7.2, 7.3)' });
});

test('the objects of a file: an object is itself; a source, its built objects but not the buffer compiles', () => {
  const analysis = (path: string, extra: Partial<DocumentStackAnalysis> = {}): DocumentStackAnalysis => ({
    origin: 'object',
    label: path,
    path,
    programs: [],
    profiles: [],
    ...extra,
  });
  assert.deepEqual(objectsToVerify('/w/x.o', []), { objects: ['/w/x.o'], notes: [] });
  const analyses = [
    analysis('/w/a.bpf.o', { staleReason: 'a.bpf.o is older than a.bpf.c' }),
    analysis('/tmp/buffer.o', { compiledFromBuffer: true }),
    { ...analysis('/w/a.bpf.c'), origin: 'source estimate' as const },
    analysis('/w/a.bpf.o'),
  ];
  assert.deepEqual(objectsToVerify('/w/a.bpf.c', analyses), {
    objects: ['/w/a.bpf.o'],
    notes: ['a.bpf.o is older than a.bpf.c: the kernels judge the object as it was built'],
  });
  assert.deepEqual(objectsToVerify('/w/b.bpf.c', []), { objects: [], notes: [] });
});
