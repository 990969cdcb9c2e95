// The fast loop for contributors (npm run test:unit): every compiled test under out/test except the
// few that need clang, the kernel's bpf(), a spawned language server or editor, or the real-world
// corpus, which `npm test` runs. A test file is in the loop unless it is listed below with why, so a
// new test cannot be left out by accident; a listed file that no longer exists fails the run, so
// the list stays true. Run after `tsc -p .` (the script does not build).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Test sources (relative to the repository) that stay out of the fast loop, with why. */
const OUT_OF_THE_FAST_LOOP = new Map([
  ['test/fixtures.kernel.test.ts', 'loads the fixtures into the running kernel and compiles them with clang-19'],
  ['test/realworld.estimate.test.ts', 'the real-world corpus from source: minutes'],
  ['test/realworld.object.test.ts', 'the real-world corpus objects: a minute or more'],
  ['test/cli/commands.test.ts', 'compiles with clang-19 and asks the running kernel'],
  ['test/cli/estimateCompile.test.ts', 'compiles the buffer with clang-19'],
  ['test/source/realWorldIdioms.test.ts', 'holds estimates to clang-19 -fstack-usage, file by file'],
  ['test/source/layout.test.ts', 'holds the layout engine to clang-19'],
  ['test/source/preprocessor.test.ts', 'holds the preprocessor to clang-19 -E'],
  ['test/source/vmlinux.test.ts', "the running kernel's vmlinux.h through bpftool and clang-19"],
  ['test/source/runningKernelHeader.test.ts', 'bpftool on /sys/kernel/btf'],
  ['test/probe/kernelProbe.test.ts', 'probes the running kernel with bpf()'],
  ['test/fuzz/hostileProtocol.test.ts', 'a spawned language server'],
  ['test/lsp/server.test.ts', 'a spawned language server, with clang-19'],
  ['test/lsp/sourceEstimate.test.ts', 'a spawned language server, with clang-19'],
  ['test/lsp/sourceEstimateSetting.test.ts', 'a spawned language server, with clang-19'],
  ['test/lsp/printkEstimate.test.ts', 'a spawned language server, with clang-19'],
  ['test/lsp/estimateWorker.test.ts', 'a spawned language server, with clang-19'],
  ['test/lsp/bufferCompile.test.ts', 'a spawned language server compiling with clang-19'],
  ['test/lsp/quickFixes.test.ts', 'compiles each fix with clang-19 and loads it into the kernel'],
  ['test/lsp/settings.test.ts', 'a spawned language server'],
  ['test/lsp/outputLog.test.ts', 'a spawned language server'],
  ['test/lsp/bundle.test.ts', 'the bundled server in dist/, spawned (needs the whole build)'],
  ['test/lab/kernelLab.test.ts', 'boots five Debian kernels under QEMU'],
  ['test/lab/corpus.test.ts', 'the real-world corpus in five Debian kernels under QEMU (cached after the first run)'],
  ['test/cli/verify.test.ts', 'verify in the running kernel and in a lab kernel under QEMU'],
  ['test/lsp/verify.test.ts', 'a spawned language server verifying in the running kernel and under QEMU'],
  ['test/cli/closedPipe.test.ts', 'reads objects of the real-world corpus, which is fetched and built'],
  ['test/ide/adviceKernel.test.ts', 'builds with clang-19 and loads into the running kernel'],
]);

function testSources(directory) {
  const found = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const full = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...testSources(full));
    else if (entry.name.endsWith('.test.ts')) found.push(relative(root, full).split('\\').join('/'));
  }
  return found;
}

const sources = testSources(join(root, 'test')).sort();
const stale = [...OUT_OF_THE_FAST_LOOP.keys()].filter((source) => !sources.includes(source));
if (stale.length > 0) {
  console.error(`scripts/test-unit.mjs lists tests that no longer exist; remove them:\n  ${stale.join('\n  ')}`);
  process.exit(2);
}
const compiled = (source) => join(root, 'out', source.replace(/\.ts$/, '.js'));
const inLoop = sources.filter((source) => !OUT_OF_THE_FAST_LOOP.has(source));
const notBuilt = inLoop.filter((source) => !existsSync(compiled(source)));
if (notBuilt.length > 0) {
  console.error(`not compiled (run tsc -p . first):\n  ${notBuilt.join('\n  ')}`);
  process.exit(2);
}
console.log(`test:unit: ${inLoop.length} test files; ${OUT_OF_THE_FAST_LOOP.size} left to npm test (and test/editors/):`);
for (const [source, why] of OUT_OF_THE_FAST_LOOP) console.log(`  ${source}: ${why}`);
const run = spawnSync(process.execPath, ['--test', ...inLoop.map(compiled)], { stdio: 'inherit', cwd: root });
process.exit(run.status ?? 1);
