/**
 * The language server under a hostile workspace, over the real protocol: settings a repository can
 * write (globs that do not compile or cost exponential time, /dev/zero as the compile database and
 * as an include directory), objects that overflowed the stack or named /dev/zero and a FIFO in their
 * line info, and requests whose parameters have the wrong type. After every one the server must
 * still answer a plain request.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LspSession, poll } from '../lsp/harness';
import { craftObject } from './craftObject';

const CHECK_OBJECT = 'bpfStackLens/checkObject';
let session: LspSession;
let workspace: string;

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-hostile-'));
  writeFileSync(join(workspace, 'deep.o'), craftObject({ chain: 3000, programs: 1 }));
  writeFileSync(join(workspace, 'zero.o'), craftObject({ chain: 1, programs: 1, frameBytes: 320, lineInfoFile: '/dev/zero' }));
  execFileSync('mkfifo', [join(workspace, 'pipe.o')]);
  writeFileSync(join(workspace, 'fifo-lines.o'), craftObject({ chain: 1, programs: 1, frameBytes: 320, lineInfoFile: join(workspace, 'pipe.o') }));
  writeFileSync(join(workspace, 'secret-lines.o'), craftObject({ chain: 1, programs: 1, frameBytes: 320, lineInfoFile: '/etc/passwd' }));
  session = new LspSession({ kernels: ['6.18'] });
  // The server warns about refused settings with window/showMessageRequest.
  session.connection.onRequest('window/showMessageRequest', (params: { message: string }) => {
    session.logs.push(params.message);
    return null;
  });
  await session.initialize(workspace, { kernels: ['6.18'] });
});

after(async () => {
  await session?.close();
  rmSync(workspace, { recursive: true, force: true });
});

/** The server answers a plain request: the report of the deep-chain object, whose verdict is known. */
async function assertAnswers(after: string): Promise<void> {
  // Until the settings are applied the server has no kernel to judge for, and the report has no verdict.
  const verdict = await poll(
    async () =>
      ((await session.connection.sendRequest(CHECK_OBJECT, { path: join(workspace, 'deep.o') })) as string).split('\n').find((line) => /error:/.test(line)),
    (line) => line !== undefined,
    `a verdict after ${after}`,
  );
  // 3,001 functions: the verifier refuses more than 256 subprograms before anything else.
  assert.match(verdict!, /error: too many subprograms/, `after ${after}`);
  assert.equal(session.exited, false, `the server exited after ${after}`);
}

test('hostile settings are refused one by one and the server keeps answering', async () => {
  const hostile: [string, unknown][] = [
    ['an unterminated group', { objectGlobs: ['{a', '**/*.o'] }],
    ['six globstars', { objectGlobs: ['**/a/**/a/**/a/**/a/**/a/**/b.o'] }],
    ['a 10,000-character glob', { objectGlobs: ['a'.repeat(10_000)] }],
    ['a compile database that is /dev/zero', { compileCommands: '/dev/zero' }],
    ['an include directory that is /dev/zero', { includePaths: ['/dev/zero', '/dev'] }],
    ['values of the wrong type', { kernels: 7, objectGlobs: [3], includePaths: { a: 1 }, defines: [1] }],
  ];
  for (const [what, settings] of hostile) {
    const logged = session.logs.length;
    await session.changeSettings({ kernels: ['6.18'], ...(settings as object) });
    await assertAnswers(what);
    if (what === 'an unterminated group') {
      await poll(
        async () => session.logs.slice(logged),
        (lines) => lines.some((line) => /objectGlobs: "\{a" is ignored/.test(line)),
        'the message about the one bad glob',
      );
    }
    if (what === 'six globstars') {
      await poll(
        async () => session.logs.slice(logged),
        (lines) => lines.some((line) => /more than the 4 allowed/.test(line)),
        'the message about the costly glob',
      );
    }
  }
});

test('checkObject refuses a path that is not a string instead of reading a file descriptor', async () => {
  for (const params of [{ path: 2 }, { path: 0 }, {}, null, { path: ['a'] }]) {
    await assert.rejects(session.connection.sendRequest(CHECK_OBJECT, params), /needs a path/);
    await assertAnswers(`checkObject ${JSON.stringify(params)}`);
  }
  await assert.rejects(session.connection.sendRequest('bpfStackLens/stackReport', { uri: 5 }), /needs a uri/);
  await assertAnswers('stackReport with a number');
  await assert.rejects(session.connection.sendRequest('bpfStackLens/verify', { uri: 5, kernels: [] }), /needs a uri/);
  await assert.rejects(session.connection.sendRequest('bpfStackLens/verify', { uri: `file://${workspace}/deep.o`, kernels: 'host' }), /needs kernels/);
  await assertAnswers('verify with the wrong types');
});

test('verify refuses a FIFO named as the object instead of blocking on it, and says a missing one is missing', async () => {
  for (const [name, reason] of [
    [join(workspace, 'pipe.o'), 'not a regular file \\(a FIFO\\)'],
    ['/dev/zero.o', 'no such file'],
  ] as const) {
    const report = (await session.connection.sendRequest('bpfStackLens/verify', { uri: `file://${name}`, kernels: ['host'] })) as string;
    assert.match(report, new RegExp(`^Cannot verify: cannot read ${name.replace(/[.]/g, '\\.')}: ${reason}`), report);
    await assertAnswers(`verify ${name}`);
  }
});

test('line info naming /dev/zero, a FIFO or a file outside the workspace is not read', async () => {
  const fifo = join(workspace, 'pipe.o');
  assert.match((await session.connection.sendRequest(CHECK_OBJECT, { path: fifo })) as string, /not a regular file \(a FIFO\)/);
  for (const name of ['zero.o', 'fifo-lines.o', 'secret-lines.o']) {
    const report = (await session.connection.sendRequest(CHECK_OBJECT, { path: join(workspace, name) })) as string;
    // The object's own copy of the line (from BTF) is quoted instead of the named file.
    assert.match(report, /1 \| int prog\(void \*ctx\)/, `${name}: ${report}`);
    assert.doesNotMatch(report, /root:/, name);
    // And it says why the file itself was not read.
    assert.match(report, /\(as compiled, from the object; not read: .*(outside the workspace|not a regular file)/, `${name}: ${report}`);
  }
  await assertAnswers('the hostile line info');
});
