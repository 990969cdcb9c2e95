/**
 * The advice "X must lose N B to pass" held to the running kernel's verifier: a program that breaks
 * the combined 512-byte rule is built with clang-19 and measured; each frame the advice names is
 * shrunk by exactly N bytes, and the kernel must accept it, while N - 8 bytes (one slot less) must
 * still be rejected. So the number is the least that works, by the kernel's own rounding.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { shrinkOptions } from '../../server/src/ide/advice';
import { analyzeObject } from '../../server/src/object/analyzeObject';
import { kernelVerifierAvailable, runningKernelVersion, verifyProgram } from '../support/kernel';
import { skipUnlessCI } from '../support/unavailable';
import { compileBpf, hasClang } from '../lsp/harness';

/** outer's and inner's frames are their arrays (multiples of 8): shrinking an array shrinks its frame by as much. */
function source(outerBytes: number, innerBytes: number): string {
  return `typedef unsigned char __u8;
typedef unsigned int __u32;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;

static __attribute__((noinline)) int inner(void *ctx)
{
	volatile __u8 buf[${innerBytes}];
	bpf_probe_read_kernel((void *)buf, sizeof(buf), ctx);
	return buf[3];
}

__attribute__((section("xdp"), used)) int outer(void *ctx)
{
	volatile __u8 scratch[${outerBytes}];
	bpf_probe_read_kernel((void *)scratch, sizeof(scratch), ctx);
	return inner(ctx) + scratch[1];
}
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
`;
}

const availability = hasClang() ? kernelVerifierAvailable() : { available: false, reason: 'clang-19 is not installed (apt-get install clang-19)' };
const skip = skipUnlessCI(availability.available ? false : availability.reason);

test('each frame the advice names passes the kernel when shrunk by its bytes, and not by a slot less', { skip }, () => {
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-advice-'));
  const profile = { version: runningKernelVersion(), jit: true };
  const build = (outerBytes: number, innerBytes: number) => {
    const file = join(workspace, `advice-${outerBytes}-${innerBytes}.bpf.c`);
    const object = file.replace(/\.c$/, '.o');
    writeFileSync(file, source(outerBytes, innerBytes));
    compileBpf(file, object);
    const [program] = analyzeObject(new Uint8Array(readFileSync(object)), object, [profile]).report.programs;
    return { object, program, frame: (name: string) => program.subprograms.find((sub) => sub.name === name)?.stackDepth ?? -1 };
  };
  try {
    const original = build(264, 280);
    assert.equal(verifyProgram(original.object, 'outer').accepted, false, 'the original breaks the 512-byte rule on this kernel');
    const [violation] = original.program.verdicts[0].violations;
    assert.equal(violation?.rule, 'combined-stack');
    const options = shrinkOptions(violation, profile);
    assert.deepEqual(options.map((option) => option.name).sort(), ['inner', 'outer']);
    for (const option of options) {
      const shrunk = (by: number) => (option.name === 'outer' ? build(264 - by, 280) : build(264, 280 - by));
      const enough = shrunk(option.loseBytes);
      assert.equal(enough.frame(option.name), original.frame(option.name) - option.loseBytes, `${option.name}'s frame is smaller by what it lost`);
      assert.equal(verifyProgram(enough.object, 'outer').accepted, true, `${option.name} less ${option.loseBytes} B passes`);
      const notEnough = shrunk(option.loseBytes - 8);
      assert.equal(verifyProgram(notEnough.object, 'outer').accepted, false, `${option.name} less ${option.loseBytes - 8} B is still rejected`);
    }
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
});
