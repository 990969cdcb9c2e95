/**
 * "Verify on real kernels…" through the protocol, as the editor sends it: the server's verify request
 * on a source whose object is in the workspace gives the same per-program listing as
 * `bpf-stack-lens verify` (one core), says plainly where a kernel disagrees with the prediction,
 * reports work-done progress on the client's token, answers a missing QEMU with one line while the
 * other kernels still run, and on $/cancelRequest stops the QEMU it started.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { CancellationTokenSource, ResponseError } from 'vscode-jsonrpc/node';
import type { Hover, MarkupContent } from 'vscode-languageserver-protocol';

import { LAB_KERNELS } from '../../server/src/lab/kernelLab';
import { FILE_STATUS_REQUEST, VERIFY_REQUEST, VERIFY_TARGETS_REQUEST, type VerifyParams, type VerifyTargetChoice } from '../../server/src/lsp/protocol';
import type { FileStatus } from '../../server/src/ide/status';
import type { VerifyEntry } from '../../server/src/ide/verify';
import { runCli } from '../support/cli';
import { fixturesDirectory } from '../support/fixtures';
import { kernelVerifierAvailable } from '../support/kernel';
import { skipOrFail } from '../support/unavailable';
import { LspSession, poll, sleep } from './harness';

const FIXTURE = 'private_stack.bpf';
const MISSING_QEMU = '/nonexistent/qemu-system-x86_64';

/** A workspace holding the fixture's source and its committed object, as a user's build leaves them. */
function fixtureWorkspace(): { workspace: string; source: string; object: string } {
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-verify-'));
  for (const suffix of ['.c', '.o']) copyFileSync(join(fixturesDirectory(), `${FIXTURE}${suffix}`), join(workspace, `${FIXTURE}${suffix}`));
  return { workspace, source: join(workspace, `${FIXTURE}.c`), object: join(workspace, `${FIXTURE}.o`) };
}

/** Starts a server on the workspace with the source open, once it has found the object built from it. */
async function openSession(source: string, workspace: string, settings: Record<string, unknown>, options: Record<string, unknown> = {}): Promise<LspSession> {
  const session = new LspSession(settings);
  await session.initialize(workspace, settings, { workDoneProgress: true }, options);
  const uri = pathToFileURL(source).href;
  await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text: readFileSync(source, 'utf8') } });
  await poll(
    () => session.connection.sendRequest<FileStatus>(FILE_STATUS_REQUEST, { uri }),
    (status) => status.state !== 'none',
    'the object of the fixture',
  );
  return session;
}

/** `workDoneToken` null sends none: the server then creates its own progress. */
function verify(
  session: LspSession,
  source: string,
  kernels: string[],
  token?: CancellationTokenSource,
  workDoneToken: string | null = 'verify-test',
): Promise<string> {
  const params: VerifyParams = { uri: pathToFileURL(source).href, kernels, ...(workDoneToken === null ? {} : { workDoneToken }) };
  // An undefined token would be sent as a second parameter.
  return token ? session.connection.sendRequest<string>(VERIFY_REQUEST, params, token.token) : session.connection.sendRequest<string>(VERIFY_REQUEST, params);
}

/** The progress messages the server sent on a token, in order. */
function progressOn(session: LspSession, token: string): { kind: string; message?: string }[] {
  return session.progress.flatMap((event) => (event.kind === 'progress' && event.token === token ? [event.value] : []));
}

/** Processes whose parent is `pid` and whose command is `name`, from /proc. */
function childrenNamed(pid: number, name: RegExp): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const parent = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      const command = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '';
      if (parent === pid && name.test(command)) found.push(Number(entry));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return found;
}

function qemuMissing(): string | undefined {
  const qemu = spawnSync('qemu-system-x86_64', ['--version']);
  return qemu.error || qemu.status !== 0 ? 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)' : undefined;
}

test(
  'verify request on this machine: the same listing as `bpf-stack-lens verify`, disagreements said plainly, progress on the token',
  { timeout: 120_000 },
  async (t) => {
    const availability = kernelVerifierAvailable();
    if (!availability.available) {
      skipOrFail(t, availability.reason ?? 'bpf() is not available');
      return;
    }
    const { workspace, source, object } = fixtureWorkspace();
    const session = await openSession(source, workspace, {});
    try {
      const report = await verify(session, source, ['host']);
      const cliText = await runCli(['verify', object]);
      const cliJson = JSON.parse((await runCli(['verify', '--format', 'json', object])).stdout) as { results: VerifyEntry[] };
      assert.ok(cliText.stdout.length > 0, cliText.stderr);
      assert.ok(report.includes(cliText.stdout.trimEnd()), `the report lacks the CLI's listing:\n${report}\n--- CLI:\n${cliText.stdout}`);
      assert.match(report, new RegExp(`^Verify on real kernels: ${object.replace(/[.+]/g, '\\$&')}\nkernels: host\n`));
      const differing = cliJson.results.filter((entry) => !entry.agrees);
      if (differing.length === 0)
        assert.match(report, new RegExp(`^Every kernel agrees with the prediction \\(${cliJson.results.length} program verdicts: `, 'm'));
      else {
        assert.match(
          report,
          new RegExp(`^The real kernels DISAGREE with the prediction on ${differing.length} of ${cliJson.results.length} program verdicts:$`, 'm'),
        );
        for (const entry of differing) assert.match(report, new RegExp(`^  ${entry.program} on host \\(`, 'm'));
      }
      // The rejected program's error is mapped to its source line through BTF line info.
      assert.match(
        report,
        /socket_400_400 on host \(.*\): (agrees|DIFFERS)\n {4}kernel: {4}rejected: combined stack size of 2 calls is 800\. Too large\n.*\n {4}at \.\/private_stack\.bpf\.c:\d+/,
      );
      const progress = progressOn(session, 'verify-test');
      assert.equal(progress[0]?.kind, 'begin');
      assert.ok(
        progress.some((value) => value.kind === 'report' && value.message === "loading into this machine's kernel (1/1)"),
        JSON.stringify(progress),
      );
      assert.equal(progress.at(-1)?.kind, 'end');
    } finally {
      await session.close();
      rmSync(workspace, { recursive: true, force: true });
    }
  },
);

test('verify request with no QEMU: one line for the lab kernel, this machine still answers, and the pick says why', { timeout: 120_000 }, async (t) => {
  const availability = kernelVerifierAvailable();
  if (!availability.available) {
    skipOrFail(t, availability.reason ?? 'bpf() is not available');
    return;
  }
  const { workspace, source } = fixtureWorkspace();
  const session = await openSession(source, workspace, { verify: { qemu: MISSING_QEMU } }, { verifyCommand: 'test.verifyOnKernels' });
  try {
    // The hover over a function measured in the object links to the client's verify command, with the file.
    const uri = pathToFileURL(source).href;
    const line = readFileSync(source, 'utf8')
      .split('\n')
      .findIndex((text) => text.includes('int kprobe_400_400('));
    const hover = await session.connection.sendRequest<Hover | null>('textDocument/hover', { textDocument: { uri }, position: { line, character: 6 } });
    const markdown = (hover?.contents as MarkupContent | undefined)?.value ?? '';
    assert.ok(markdown.endsWith(`\n\n[Verify on real kernels…](command:test.verifyOnKernels?${encodeURIComponent(JSON.stringify([uri]))})`), markdown);

    const report = await verify(session, source, ['host', '7.3']);
    assert.match(report, new RegExp(`^no answer: ${MISSING_QEMU} is not installed \\(apt-get install qemu-system-x86\\)$`, 'm'));
    assert.equal(report.match(/^no answer: /gm)?.length, 1, report);
    assert.match(report, /kprobe_400_400 on host \(/);
    assert.doesNotMatch(report, / on 7\.3/);
    const choices = await session.connection.sendRequest<VerifyTargetChoice[]>(VERIFY_TARGETS_REQUEST);
    assert.deepEqual(
      choices.map((choice) => choice.name),
      ['host', ...LAB_KERNELS.map((kernel) => kernel.label)],
    );
    for (const lab of choices.slice(1)) assert.ok(lab.detail.startsWith(`${MISSING_QEMU} is not installed`), lab.detail);
    // An unknown kernel is one line too, and the server goes on. Without a token from the client,
    // the server asks for a progress of its own (the client said it shows them).
    const before = session.progress.length;
    assert.equal(
      await verify(session, source, ['9.9'], undefined, null),
      'Cannot verify: no lab kernel "9.9" (lab kernels: host, 5.10, 6.1, 6.12, 7.2, 7.3)\n',
    );
    const created = new Set(session.progress.slice(before).flatMap((event) => (event.kind === 'create' ? [event.token] : [])));
    const begun = session.progress
      .slice(before)
      .find((event) => event.kind === 'progress' && created.has(event.token) && event.value.title === 'Verifying on real kernels');
    assert.ok(begun, `the server created and began a progress: ${JSON.stringify(session.progress.slice(before))}`);
    await session.until(() => progressOn(session, begun.token as string).some((value) => value.kind === 'end'), 'the progress to end');
  } finally {
    await session.close();
    rmSync(workspace, { recursive: true, force: true });
  }
});

test('verify request cancelled while a lab kernel boots: the server stops its QEMU and answers RequestCancelled', { timeout: 10 * 60_000 }, async (t) => {
  const missing = qemuMissing();
  if (missing) {
    skipOrFail(t, missing);
    return;
  }
  const { workspace, source } = fixtureWorkspace();
  const session = await openSession(source, workspace, {});
  try {
    const cancel = new CancellationTokenSource();
    const answer = verify(session, source, ['7.3'], cancel, 'verify-cancel').then(
      (text) => ({ text }),
      (error: unknown) => ({ error }),
    );
    // Fetching 7.3 when it is not cached yet is part of the first use; the boot is what is cancelled
    // (the QEMU that answered --version before it is gone by then).
    const serverPid = session.pid!;
    const booting = () =>
      progressOn(session, 'verify-cancel').some((value) => /^booting 7\.3\S* \(linux-binary-7\.3-amd64\) under QEMU \(1\/1\)$/.test(value.message ?? ''));
    await session.until(booting, 'the booting progress', 8 * 60_000);
    const deadline = Date.now() + 60_000;
    while (childrenNamed(serverPid, /^qemu-system/).length === 0) {
      assert.ok(Date.now() < deadline, `no QEMU started; progress: ${JSON.stringify(progressOn(session, 'verify-cancel'))}`);
      await sleep(100);
    }
    // Well into the boot: the VM is running, not starting.
    await sleep(2000);
    assert.equal(childrenNamed(serverPid, /^qemu-system/).length, 1);
    const cancelledAt = Date.now();
    cancel.cancel();
    const outcome = await answer;
    assert.ok(
      'error' in outcome && outcome.error instanceof ResponseError && outcome.error.code === -32800,
      `expected RequestCancelled, got ${JSON.stringify(outcome)}`,
    );
    assert.ok(Date.now() - cancelledAt < 5000, `the answer took ${Date.now() - cancelledAt} ms after the cancel`);
    await poll(
      async () => childrenNamed(serverPid, /^qemu-system/),
      (left) => left.length === 0,
      'QEMU to be gone',
      5000,
    );
  } finally {
    await session.close();
    rmSync(workspace, { recursive: true, force: true });
  }
});
