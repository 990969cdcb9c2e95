/**
 * The bundled server as the .vsix ships it: dist/server.js with the two .wasm files, the grammar,
 * the queries and package.json copied to a folder without node_modules, started over node IPC the
 * way vscode-languageclient starts it, must parse C (hover on a printk needs tree-sitter) and
 * estimate it on its worker thread.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { IPCMessageReader, IPCMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import type { Hover, MarkupContent } from 'vscode-languageserver-protocol';
import { REPO, SEED_SOURCE, poll } from './harness';
import { skipUnlessCI } from '../support/unavailable';

const bundle = join(REPO, 'dist', 'server.js');
const skip = skipUnlessCI(existsSync(bundle) ? false : 'dist/server.js is not built (npm run build)');

test('the bundled server runs over IPC from the .vsix layout', { skip }, async () => {
  const extension = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-vsix-'));
  for (const file of [
    'dist/server.js',
    'dist/estimateWorker.js',
    'dist/tree-sitter-c.wasm',
    'dist/web-tree-sitter.wasm',
    'grammars',
    'package.json',
    'server/src/lsp/queries',
  ]) {
    cpSync(join(REPO, file), join(extension, file), { recursive: true });
  }
  const child = fork(join(extension, 'dist', 'server.js'), ['--node-ipc'], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], cwd: extension });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += String(chunk)));
  const connection = createMessageConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
  connection.onRequest('workspace/configuration', (params: { items: unknown[] }) => params.items.map(() => ({ kernels: ['6.18'] })));
  connection.listen();
  try {
    const result: { capabilities: { hoverProvider?: boolean } } = await connection.sendRequest('initialize', {
      processId: process.pid,
      rootUri: null,
      capabilities: {},
    });
    assert.equal(result.capabilities.hoverProvider, true);
    await connection.sendNotification('initialized', {});
    const uri = pathToFileURL(join(extension, 'seed.bpf.c')).href;
    await connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'c', version: 1, text: readFileSync(SEED_SOURCE, 'utf8') } });
    const hoverText = async () => {
      const hover: Hover | null = await connection.sendRequest('textDocument/hover', { textDocument: { uri }, position: { line: 119, character: 3 } });
      return (hover?.contents as MarkupContent | undefined)?.value ?? `no hover; stderr: ${stderr}`;
    };
    assert.match(await hoverText(), /puts \*\*48 B\*\* on the stack/);
    // The estimate's worker (dist/estimateWorker.js) runs from the same layout: its frame items reach the hover.
    const value = await poll(hoverText, (text) => /As the source estimate counts/.test(text), 'the estimate in the hover');
    assert.match(
      value,
      /puts \*\*48 B\*\* on the stack of `entry`\.\n\nAs the source estimate counts the frame of `entry`: its format `"acl-test[^`]*"` \(`char\[45\]`, copied to the stack\) 48 B/,
    );
  } finally {
    connection.dispose();
    child.kill();
    rmSync(extension, { recursive: true, force: true });
  }
});
