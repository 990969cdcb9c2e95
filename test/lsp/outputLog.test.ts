/**
 * The server's log (VS Code's "BPF Stack Lens" output channel) says what a user needs to find out
 * why a number is what it is: the kernels in effect and where they come from, the compile database
 * and include paths used, and for each estimate its time and the includes it could not resolve.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { LspSession, seedWorkspace } from './harness';

test("the log names the kernels, the compile database, the include paths and each estimate's missing includes", async () => {
  const { workspace, source } = seedWorkspace('bpf-stack-lens-log-');
  const settings = { kernels: ['6.1', '6.18'], includePaths: ['include'] };
  const session = new LspSession(settings);
  try {
    writeFileSync(
      join(workspace, 'compile_commands.json'),
      JSON.stringify([{ directory: workspace, file: source, arguments: ['clang', '-target', 'bpf', '-c', source] }]),
    );
    await session.initialize(workspace, settings);
    const text = `#include "no_such_header.h"\n${readFileSync(source, 'utf8')}`;
    await session.connection.sendNotification('textDocument/didOpen', { textDocument: { uri: pathToFileURL(source).href, languageId: 'c', version: 1, text } });
    await session.until(() => session.logs.some((line) => line.includes(': estimated ')), "the estimate's log line");
    const logs = session.logs.join('\n');
    assert.match(logs, /^kernels: 6\.1, 6\.18$/m);
    assert.ok(logs.includes(`compile database: ${join(workspace, 'compile_commands.json')}`), logs);
    assert.match(logs, /^include paths from the settings: include;/m);
    const estimateLine = session.logs.find((line) => line.includes(': estimated '));
    assert.match(
      String(estimateLine),
      /seed\.bpf\.c: estimated \d+ function\(s\), 1 program\(s\) in \d+ ms after the last change .*includes not found: 'no_such_header\.h'/,
    );
  } finally {
    await session.close();
    rmSync(workspace, { recursive: true, force: true });
  }
});
