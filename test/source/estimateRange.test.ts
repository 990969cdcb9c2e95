/**
 * Where the estimate cannot know a frame (spills of a long function), it gives a range, never only
 * a confident low number: spill_pressure.bpf.c's compiled frames (the committed object, whose 6.18
 * line the kernel test holds to the verifier) must lie inside the estimate's range, a short function
 * must get no range, and a range that crosses a stack limit must say which kernel would reject it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { test } from 'node:test';
import { formatEstimateText } from '../../server/src/ide/estimateText';
import { frameText, lensTitle } from '../../server/src/ide/codeLens';
import { functionHover } from '../../server/src/ide/hover';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { parseKernelProfiles } from '../../server/src/rules/kernelProfile';
import { estimateSource } from '../../server/src/source/estimateSource';
import { nakedAsmStackDepth, spillAllowance } from '../../server/src/source/frameEstimate';
import { listFixtures } from '../support/fixtures';

const { profiles } = parseKernelProfiles(['6.18'], true);

function spillFixture() {
  const fixture = listFixtures().find((candidate) => basename(candidate.source) === 'spill_pressure.bpf.c');
  assert.ok(fixture, 'spill_pressure.bpf.c');
  return fixture;
}

test('the compiled frames of spill_pressure.bpf.c lie inside the estimate, or its range where it gives one', async () => {
  const fixture = spillFixture();
  const estimate = await estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), profiles);
  const compiled = analyzeObject(new Uint8Array(readFileSync(fixture.object)), fixture.object, profiles).report;
  const programOf = (name: string) => {
    const ours = estimate.programs.find((program) => program.name === name);
    const theirs = compiled.programs.find((program) => program.name === name);
    assert.ok(ours && theirs, name);
    return { ours, theirs, frame: estimate.functions.find((fn) => fn.name === name)! };
  };

  // Sixteen values across 40 calls: clang spills 136 B; the locals alone are 0.
  const many = programOf('many_live_values');
  assert.equal(many.theirs.stackDepths, '136');
  assert.equal(many.ours.stackDepths, '0', 'the low end counts the locals');
  assert.ok(many.frame.upTo !== undefined && many.frame.upTo >= 136, `upper bound ${many.frame.upTo} holds the compiled 136`);
  assert.match(many.frame.uncertainty ?? '', /register pressure/);
  assert.equal(many.ours.stackDepthsUpTo, String(many.frame.upTo));
  assert.equal(many.ours.subprograms[0].stackDepthUpTo, many.frame.upTo);
  assert.match(many.ours.uncertainty?.[0] ?? '', /^many_live_values: long function/);

  // Short: no spills, no range, exact.
  const few = programOf('few_live_values');
  assert.equal(few.ours.stackDepths, few.theirs.stackDepths);
  assert.equal(few.frame.upTo, undefined);
  assert.equal(few.ours.stackDepthsUpTo, undefined);

  // The asm's buffer at a copy of r10 is the stack, in a naked function and in an ordinary one.
  const naked = programOf('naked_r10_copy');
  assert.equal(naked.ours.stackDepths, naked.theirs.stackDepths);
  assert.equal(naked.ours.stackDepths, '24');

  const inC = programOf('asm_below_frame');
  assert.equal(inC.ours.stackDepths, inC.theirs.stackDepths);
  assert.equal(inC.ours.stackDepths, '32');

  // The CLI text shows the range and why.
  const text = formatEstimateText(estimate);
  assert.match(text, new RegExp(`many_live_values \\(line \\d+\\) SEC\\("tc"\\): >= 0 bytes, up to ~${many.frame.upTo} bytes: long function`));
  assert.match(
    text,
    new RegExp(`program many_live_values SEC\\("tc"\\) \\[sched_cls\\] stack depth 0, up to ~${many.frame.upTo}\\n  range: many_live_values: `),
  );
});

test('a range that crosses the 512-byte limit says which kernel would reject the program at its upper bound', async () => {
  // 480 B of locals in a long function: accepted at the low end, over 512 B at the upper one.
  const body = Array.from({ length: 40 }, (_, index) => `\tbuf[${index}] = bpf_get_prandom_u32() ^ buf[${(index * 7) % 60}];`).join('\n');
  const text = `#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("tc")\nint near_the_limit(struct __sk_buff *skb)\n{\n\tvolatile __u64 buf[60];\n${body}\n\treturn buf[skb->len & 31] & 1;\n}\nchar LICENSE[] SEC("license") = "GPL";\n`;
  const estimate = await estimateSource('/virtual/near_the_limit.bpf.c', text, profiles);
  const program = estimate.programs.find((candidate) => candidate.name === 'near_the_limit');
  assert.ok(program);
  assert.equal(program.stackDepths, '480');
  assert.ok(program.verdicts[0].accepted, 'the low end passes');
  assert.ok(Number(program.stackDepthsUpTo) > 512, `upper line ${program.stackDepthsUpTo}`);
  assert.ok(
    program.uncertainty?.some((reason) => /^at the upper bound kernel 6\.18 would reject it: combined stack size/.test(reason)),
    `reasons: ${program.uncertainty?.join(' | ')}`,
  );
});

test('the allowance starts at 300 syntax nodes and grows with nodes and calls, up to its cap', () => {
  assert.equal(spillAllowance(299, 50), 0);
  assert.ok(spillAllowance(300, 0) > 0);
  assert.ok(spillAllowance(2000, 10) > spillAllowance(800, 10));
  assert.ok(spillAllowance(800, 40) > spillAllowance(800, 4));
  assert.equal(spillAllowance(100000, 1000), spillAllowance(200000, 2000), 'capped');
  assert.equal(spillAllowance(800, 40) % 8, 0, 'whole slots');
});

test('the lens and the hover of a function with a range show it, and why', async () => {
  const fixture = spillFixture();
  const estimate = await estimateSource(fixture.source, readFileSync(fixture.source, 'utf8'), profiles);
  const upTo = estimate.functions.find((fn) => fn.name === 'many_live_values')!.upTo!;
  const analyses = [
    {
      origin: 'source estimate' as const,
      label: 'spill_pressure.bpf.c',
      path: fixture.source,
      programs: estimate.programs,
      profiles,
      frames: estimate.functions,
    },
  ];
  assert.match(lensTitle('many_live_values', analyses) ?? '', new RegExp(`^frame ≥ 0 B, up to ~${upTo} B`));
  assert.match(lensTitle('few_live_values', analyses) ?? '', /^frame ≈0 B/);
  const hover = functionHover('many_live_values', analyses) ?? '';
  assert.match(hover, new RegExp(`frame \\*\\*≥ 0 B, up to ~${upTo} B\\*\\*`));
  assert.match(hover, /_Range: long function with high register pressure/);
});

test('lens and hover frame text: one number, or the range', () => {
  assert.equal(frameText([{ stackDepth: 48 }]), '48 B');
  assert.equal(frameText([{ stackDepth: 48, stackDepthUpTo: 288 }]), '≥ 48 B, up to ~288 B');
  assert.equal(frameText([{ stackDepth: 48, stackDepthUpTo: 96 }, { stackDepth: 64 }]), '≥ 64 B, up to ~96 B');
});

test('naked asm: the stack through a copy of r10, its accesses and what a helper may write through it', () => {
  assert.equal(nakedAsmStackDepth('r1 = 0; *(u64 *)(r10 - 16) = r1;'), 16);
  assert.equal(nakedAsmStackDepth('r2 = r10; r2 += -8; call %[bpf_map_lookup_elem];'), 8);
  assert.equal(nakedAsmStackDepth('r6 = r10; r6 += -16; r0 = *(u32 *)(r6 + 4);'), 16);
  assert.equal(nakedAsmStackDepth('r6 = r10; r6 += -32; r7 = r6; *(u8 *)(r7 - 8) = r1;'), 40);
  // A register given something else is no stack pointer any more; a call clobbers r0-r5.
  assert.equal(nakedAsmStackDepth('r2 = r10; r2 = 5; r2 += -64;'), 0);
  assert.equal(nakedAsmStackDepth('r2 = r10; call %[f]; r2 += -64;'), 0);
});
