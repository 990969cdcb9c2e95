/**
 * Every quick fix, asked of the real server and applied to a copy of a fixture, must give C that
 * clang-19 compiles for BPF, whose frames `check` measures smaller by exactly the bytes the fix's
 * title claims ("frees 32 B", "frees nothing"), and that the running kernel's verifier loads with
 * the stack depth `check` prints, where bpf() is allowed. The fixes are asked where a user would:
 * at a printk, at a large local's declaration, and on the diagnostic of a rejected program.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { CodeAction, Diagnostic } from 'vscode-languageserver-protocol';
import { type ProgramReport, analyzeObject } from '../../server/src/object/analyzeObject';
import { LspSession, REPO, SEED_SOURCE, applyEdits, compileBpf, hasClang, poll } from './harness';
import { skipPartOrFail, skipUnlessCI } from '../support/unavailable';

/** The running kernel's rules, which `check` holds the fixed objects to; the session also judges 6.1, where the seed's tail call is rejected. */
const KERNEL = '6.18';
const SETTINGS = { kernels: ['6.1', KERNEL] };

/** What the tests write to: node's TestContext, whose type this @types/node does not export. */
interface TestContext {
  skip(message?: string): void;
  diagnostic(message: string): void;
}
const SCRATCH_SOURCE = join(REPO, 'test', 'fixtures', 'quickfixes', 'scratch.bpf.c');
const SEED_PRINTK = '\tstack_printk("acl-test, overlay saddr=0x%08x daddr=0x%08x\\n", tun.saddr, tun.daddr);\n';
/** The seed with a second printk after the first: its 18-byte format reuses the first one's slots. */
const TWO_PRINTKS = readFileSync(SEED_SOURCE, 'utf8').replace(SEED_PRINTK, `${SEED_PRINTK}\tstack_printk("second printk %u\\n", tun.vni);\n`);
/** The first lines of a libbpf-style tc program named entry, up to its opening brace. */
const TC_ENTRY_OPENING = ['#include <linux/bpf.h>', '#include <bpf/bpf_helpers.h>', '', 'SEC("tc")', 'int entry(struct __sk_buff *skb)', '{'];
/** A libbpf-style program built with -DBPF_NO_GLOBAL_DATA: bpf_printk's format is a local array. */
const NO_GLOBAL_DATA = [
  ...TC_ENTRY_OPENING,
  '\t__u64 len = skb->len;',
  '',
  '\tbpf_printk("classify len %llu mark %u proto %u\\n", len, skb->mark, skb->protocol);',
  '\treturn 0;',
  '}',
  'char LICENSE[] SEC("license") = "GPL";',
  '',
].join('\n');
/** bpf_printk with 4 arguments builds an array of them on the stack (__bpf_vprintk); its format stays in .rodata. */
const FOUR_ARGS = [
  ...TC_ENTRY_OPENING,
  '\tbpf_printk("len %u mark %u proto %u prio %u\\n", skb->len, skb->mark, skb->protocol, skb->priority);',
  '\treturn 0;',
  '}',
  'char LICENSE[] SEC("license") = "GPL";',
  '',
].join('\n');
/** One function whose 600-byte local makes clang itself refuse to compile ("BPF stack limit is exceeded"). */
const OVER_CLANG_LIMIT = [
  '#include <linux/bpf.h>',
  '#include <bpf/bpf_helpers.h>',
  '',
  'SEC("xdp")',
  'int big(struct xdp_md *xdp)',
  '{',
  '\tchar copy[600] = {};',
  '',
  '\tif (bpf_xdp_load_bytes(xdp, 0, copy, sizeof(copy)) < 0)',
  '\t\treturn XDP_DROP;',
  '\treturn copy[0] == 0x45 ? XDP_PASS : XDP_DROP;',
  '}',
  'char LICENSE[] SEC("license") = "GPL";',
  '',
].join('\n');

const skip = skipUnlessCI(hasClang() ? false : 'clang-19 is not installed (apt-get install clang-19)');

let session: LspSession;
let workspace: string;

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

interface Opened {
  uri: string;
  text: string;
  name: string;
}

async function open(name: string, text: string): Promise<Opened> {
  const filePath = join(workspace, name);
  writeFileSync(filePath, text);
  const uri = pathToFileURL(filePath).href;
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text } });
  return { uri, text, name };
}

/** The code actions at a 0-based line (or a diagnostic's range) once `ready` holds for them: the estimate comes in on its own thread. */
async function actionsAt(file: Opened, where: number | Diagnostic, ready: (titles: string[]) => boolean): Promise<CodeAction[]> {
  const range = typeof where === 'number' ? { start: { line: where, character: 1 }, end: { line: where, character: 1 } } : where.range;
  const diagnostics = typeof where === 'number' ? [] : [where];
  return poll(
    (): Promise<CodeAction[]> =>
      session.connection.sendRequest('textDocument/codeAction', { textDocument: { uri: file.uri }, range, context: { diagnostics } }),
    (actions) => ready(actions.map((action) => action.title)),
    `the fixes at ${file.name}:${typeof where === 'number' ? where + 1 : 'a diagnostic'}`,
  );
}

function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `"${needle}" in the fixture`);
  return text.slice(0, index).split('\n').length - 1;
}

function titled(actions: CodeAction[], prefix: string): CodeAction {
  const action = actions.find((candidate) => candidate.title.startsWith(prefix));
  assert.ok(action, `a fix starting with "${prefix}" among:\n${actions.map((candidate) => candidate.title).join('\n')}`);
  return action;
}

function applied(file: Opened, action: CodeAction): string {
  const edits = action.edit?.changes?.[file.uri];
  assert.ok(edits, `"${action.title}" edits the document`);
  return applyEdits(file.text, edits);
}

/** The bytes a title claims the frame of `owner` loses: "frees N B of the frame of owner", or "frees nothing". */
function claimedBytes(title: string): number {
  if (/frees nothing/.test(title)) return 0;
  const match = /frees (\d+) B/.exec(title);
  assert.ok(match, `an exact byte count in "${title}"`);
  return Number(match[1]);
}

/** Builds `source` under `name`, as `check` measures it. */
function measured(name: string, source: string, flags: string[] = []): { object: string; program: ProgramReport; frames: Map<string, number> } {
  const sourcePath = join(workspace, `${name}.bpf.c`);
  const object = join(workspace, `${name}.bpf.o`);
  writeFileSync(sourcePath, source);
  compileBpf(sourcePath, object, flags);
  const [program] = analyzeObject(new Uint8Array(readFileSync(object)), object, [{ version: KERNEL, jit: true }]).report.programs;
  return { object, program, frames: new Map(program.subprograms.map((sub) => [sub.name, sub.stackDepth])) };
}

/** Loads the object into the running kernel: it must load, and the verifier's depths must be the ones `check` printed. */
function loadsWithDepths(t: TestContext, object: string, program: ProgramReport): void {
  const unavailable = kernelUnavailable();
  if (unavailable) {
    skipPartOrFail(t, `kernel load: ${unavailable}`);
    return;
  }
  const pin = `/sys/fs/bpf/bpf-stack-lens-fix-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    const load = spawnSync('bpftool', ['-d', 'prog', 'loadall', object, pin], { encoding: 'utf8' });
    const log = `${load.stdout}${load.stderr}`;
    if (load.status !== 0 && /Operation not permitted|EPERM/.test(log)) {
      skipPartOrFail(t, 'kernel load: bpf() is not permitted here');
      return;
    }
    assert.equal(load.status, 0, `the kernel rejected the fixed program:\n${log.split('\n').slice(-30).join('\n')}`);
    assert.match(log, new RegExp(`stack depth ${program.stackDepths.replace(/\+/g, '\\+')}\\b`), "the verifier's depths are check's");
  } finally {
    rmSync(pin, { recursive: true, force: true });
  }
}

/**
 * Applies the fix, builds the result, and holds the title to it: the frame of `owner` is smaller by
 * exactly what the title says, the program passes, and it loads.
 */
function provesClaim(t: TestContext, file: Opened, action: CodeAction, owner: string, before: number, flags: string[] = []): string {
  const fixed = applied(file, action);
  const { object, program, frames } = measured(`${file.name.replace(/\.bpf\.c$/, '')}-fixed`, fixed, flags);
  const after = frames.get(owner);
  assert.ok(after !== undefined, `${owner} is a subprogram of the fixed object`);
  t.diagnostic(`${action.title}: ${owner} ${before} B -> ${after} B (${program.stackDepths})`);
  assert.equal(before - after, claimedBytes(action.title), `"${action.title}": ${owner} went from ${before} B to ${after} B`);
  assert.ok(
    program.verdicts.every((verdict) => verdict.accepted),
    `the fixed program passes: ${JSON.stringify(program.verdicts.map((verdict) => verdict.violations.map((violation) => violation.message)))}`,
  );
  loadsWithDepths(t, object, program);
  return fixed;
}

const exact = (titles: string[]) => titles.length > 0 && titles.every((title) => !/frees up to/.test(title));

before(async () => {
  if (skip) return;
  workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-fixes-'));
  session = new LspSession(SETTINGS);
  await session.initialize(workspace, SETTINGS);
});

after(async () => {
  if (skip) return;
  await session.close();
  rmSync(workspace, { recursive: true, force: true });
});

test('the seed printk: each fix frees the 48 B it says, and the program passes and loads', { skip }, async (t) => {
  const file = await open('seed.bpf.c', readFileSync(SEED_SOURCE, 'utf8'));
  const before = measured('seed', file.text).frames.get('entry') as number;
  const actions = await actionsAt(file, lineOf(file.text, 'stack_printk("acl-test'), exact);
  assert.deepEqual(
    actions.map((action) => action.title),
    [
      'Remove this stack_printk (frees 48 B of the frame of entry)',
      'Move the format of this stack_printk to .rodata (static const char fmt_0[]; frees 48 B of the frame of entry)',
      "Move this stack_printk into a noinline helper entry_printk_0() (frees 48 B of the frame of entry; the helper's frame holds them)",
    ],
  );
  for (const action of actions) provesClaim(t, file, action, 'entry', before);
  const helper = applied(file, actions[2]);
  // The seed spells its types __u32 and its attributes in full: the helper follows.
  assert.match(
    helper,
    /\/\* Prints from a frame of its own, so that the format's stack bytes stay off the caller's frame\. \*\/\nstatic __attribute__\(\(noinline\)\) void entry_printk_0\(__u64 arg0, __u64 arg1\)/,
  );
});

test('two printks sharing slots: removing the first frees 32 B, the second frees nothing', { skip }, async (t) => {
  const file = await open('two.bpf.c', TWO_PRINTKS);
  const before = measured('two', file.text).frames.get('entry') as number;
  assert.equal(before, 200);
  const first = await actionsAt(file, lineOf(file.text, 'stack_printk("acl-test'), exact);
  assert.equal(first.length, 3, "only the first call's fixes, none for the second");
  assert.equal(first[0].title, 'Remove this stack_printk (frees 32 B of the frame of entry)');
  provesClaim(t, file, first[0], 'entry', before);

  const firstLine = lineOf(file.text, 'stack_printk("acl-test') + 1;
  const second = await actionsAt(file, lineOf(file.text, 'stack_printk("second'), exact);
  assert.equal(second[0].title, `Remove this stack_printk (frees nothing: shares its slots with line ${firstLine})`);
  for (const action of second) {
    assert.match(action.title, /frees nothing/);
    provesClaim(t, file, action, 'entry', before);
  }

  // On the tail-call diagnostic, only what frees something, each naming its printk, none alike.
  const diagnostic = await poll(
    async () => session.diagnostics(file.uri)?.find((candidate) => candidate.code === 'tail-call-depth'),
    (found) => found !== undefined,
    'the tail-call diagnostic',
  );
  const onDiagnostic = await actionsAt(file, diagnostic as Diagnostic, exact);
  const titles = onDiagnostic.map((action) => action.title);
  assert.equal(new Set(titles).size, titles.length, titles.join('\n'));
  assert.ok(
    titles.every((title) => title.includes(`the stack_printk at line ${firstLine} ("acl-test, overlay saddr=…")`)),
    titles.join('\n'),
  );
  assert.ok(
    titles.every((title) => !title.includes('"second printk')),
    'the printk that frees nothing is not offered on the diagnostic',
  );
});

test('BPF_NO_GLOBAL_DATA from the settings: no .rodata fix; the helper is preferred, and adds no .rodata either', { skip }, async (t) => {
  await session.changeSettings({ ...SETTINGS, defines: { BPF_NO_GLOBAL_DATA: '1' } });
  try {
    const file = await open('noglobal.bpf.c', NO_GLOBAL_DATA);
    const flags = ['-DBPF_NO_GLOBAL_DATA'];
    const before = measured('noglobal', file.text, flags).frames.get('entry') as number;
    const actions = await actionsAt(file, lineOf(file.text, 'bpf_printk('), exact);
    const titles = actions.map((action) => action.title);
    assert.ok(
      titles.every((title) => !/\.rodata/.test(title)),
      titles.join('\n'),
    );
    const helper = titled(actions, 'Move this bpf_printk into a noinline helper');
    assert.equal(helper.isPreferred, true);
    const fixed = provesClaim(t, file, helper, 'entry', before, flags);
    assert.match(fixed, /so that the format's stack bytes stay off/);
    // clang's mergeable strings (.rodata.str1.1) are there before the fix too; a global `static const` would add .rodata itself.
    assert.doesNotMatch(execFileSync('llvm-objdump-19', ['-h', join(workspace, 'noglobal-fixed.bpf.o')], { encoding: 'utf8' }), /\s\.rodata\s/);
  } finally {
    await session.changeSettings(SETTINGS);
  }
});

test('a 4-argument bpf_printk: the helper says it moves the argument array, and frees its 32 B', { skip }, async (t) => {
  const file = await open('four.bpf.c', FOUR_ARGS);
  const before = measured('four', file.text).frames.get('entry') as number;
  const actions = await actionsAt(file, lineOf(file.text, 'bpf_printk('), exact);
  assert.deepEqual(
    actions.map((action) => action.title.split(' (')[0]),
    ['Remove this bpf_printk', 'Move this bpf_printk into a noinline helper entry_printk_0()'],
  );
  for (const action of actions) provesClaim(t, file, action, 'entry', before);
  assert.match(applied(file, actions[1]), /so that the argument array's stack bytes stay off the caller's frame/);
});

test("a large local moves into a per-CPU scratch map: at its declaration, and on the rejected program's diagnostic", { skip }, async (t) => {
  const file = await open('scratch.bpf.c', readFileSync(SCRATCH_SOURCE, 'utf8'));
  const original = measured('scratch', file.text);
  assert.equal(original.program.verdicts[0].accepted, false, 'the fixture is rejected as it stands');

  // At the struct's declaration: its own fix, which frees its 240 B less the key's slot.
  const atDeclaration = await actionsAt(file, lineOf(file.text, 'struct pkt_ctx ctx = {};'), (titles) => titles.length > 0);
  assert.equal(atDeclaration.length, 1);
  assert.equal(atDeclaration[0].title, 'Move `ctx` (struct pkt_ctx, 240 B) into a per-CPU scratch map ctx_scratch (frees 232 B of the frame of classify)');
  const structFixed = provesClaim(t, file, atDeclaration[0], 'classify', original.frames.get('classify') as number);
  assert.match(structFixed, /__type\(value, struct pkt_ctx\);\n\} ctx_scratch SEC\("\.maps"\);/);
  assert.match(
    structFixed,
    /struct pkt_ctx \*ctx = bpf_map_lookup_elem\(&ctx_scratch, &ctx_key\);\n\t__u64 \*count;\n\n\tif \(!ctx\)\n\t\treturn 0;\n\t__builtin_memset\(ctx, 0, sizeof\(\*ctx\)\);\n/,
  );
  assert.match(structFixed, /bpf_skb_load_bytes\(skb, sizeof\(ctx->eth\), ctx, sizeof\(\*ctx\)\)/);

  // On the combined-rule diagnostic: the chain's largest local, the 320-byte array in entry.
  const diagnostic = await poll(
    async () => session.diagnostics(file.uri)?.find((candidate) => candidate.code === 'combined-stack'),
    (found) => found !== undefined,
    'the combined-rule diagnostic',
  );
  const onDiagnostic = await actionsAt(file, diagnostic as Diagnostic, (titles) => titles.some((title) => title.includes('scratch map')));
  const arrayFix = titled(onDiagnostic, 'Move `buf` (__u8[320], 320 B, line 50 of entry) into a per-CPU scratch map buf_scratch');
  assert.equal(arrayFix.isPreferred, true);
  const arrayFixed = provesClaim(t, file, arrayFix, 'entry', original.frames.get('entry') as number);
  assert.match(arrayFixed, /__type\(value, __u8\[320\]\);/);
  assert.match(arrayFixed, /__u8 \*buf = bpf_map_lookup_elem\(&buf_scratch, &buf_key\);/);
  assert.match(arrayFixed, /bpf_skb_load_bytes\(skb, 0, buf, sizeof\(__u8\[320\]\)\)/);
});

test("one frame over clang's 512 bytes: clang refuses it, and the scratch-map fix on its diagnostic compiles and loads", { skip }, async (t) => {
  const file = await open('big.bpf.c', OVER_CLANG_LIMIT);
  assert.throws(() => measured('big', file.text), /stack limit is exceeded|Looks like the BPF stack limit/);
  const diagnostic = await poll(
    async () => session.diagnostics(file.uri)?.find((candidate) => candidate.severity === 1),
    (found) => found !== undefined,
    'the diagnostic of the 600-byte frame',
  );
  // clang's own refusal, predicted from the source, not "combined stack size of 1 calls".
  assert.equal(diagnostic?.code, 'clang-stack-limit');
  assert.match(String(diagnostic?.message), /^clang will refuse to compile big: its frame is 600 B, 88 B over/);
  const actions = await actionsAt(file, diagnostic as Diagnostic, (titles) => titles.some((title) => title.includes('scratch map')));
  const fix = titled(actions, 'Move `copy` (char[600], 600 B, line 7 of big) into a per-CPU scratch map copy_scratch');
  const fixed = applied(file, fix);
  assert.match(fixed, /if \(!copy\)\n\t\treturn XDP_PASS;\n\t__builtin_memset\(copy, 0, sizeof\(char\[600\]\)\);/);
  const { object, program, frames } = measured('big-fixed', fixed);
  t.diagnostic(`${fix.title}: big ${program.stackDepths} after`);
  // Before, the estimate counts 600 B; clang cannot say, since it refuses to build it.
  assert.equal(600 - (frames.get('big') as number), claimedBytes(fix.title));
  loadsWithDepths(t, object, program);
});

test('bpfStackLens.quickFixes.scratchMapMinBytes decides which locals get the scratch-map fix', { skip }, async () => {
  const file = await open('threshold.bpf.c', readFileSync(SCRATCH_SOURCE, 'utf8'));
  const line = lineOf(file.text, 'struct pkt_ctx ctx = {};');
  await actionsAt(file, line, (titles) => titles.length === 1);
  await session.changeSettings({ ...SETTINGS, quickFixes: { scratchMapMinBytes: 241 } });
  try {
    // 240 B is under the threshold now: the declaration has no fix.
    await actionsAt(file, line, (titles) => titles.length === 0);
  } finally {
    await session.changeSettings(SETTINGS);
  }
});
