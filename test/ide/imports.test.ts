/**
 * ide/ holds the editor features as plain data (diagnostics, hover, CodeLens, status, printk costs):
 * it must not know the protocol, so that lsp/ is the only layer that converts. This holds the folder
 * to it: no import of vscode-languageserver (or its text document), and from lsp/ only the settings'
 * type, which is plain data too.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { repositoryRoot } from '../support/kernel';

test('ide/ imports neither the protocol nor lsp/ (but the settings type)', () => {
  const folder = join(repositoryRoot(), 'server', 'src', 'ide');
  const offending: string[] = [];
  for (const file of readdirSync(folder).filter((name) => name.endsWith('.ts'))) {
    const text = readFileSync(join(folder, file), 'utf8');
    for (const match of text.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)';/gm)) {
      const [statement, typeOnly, specifier] = match;
      if (/^vscode-languageserver/.test(specifier)) offending.push(`${file}: ${statement}`);
      if (specifier.startsWith('../lsp/') && !(typeOnly && specifier === '../lsp/settings')) offending.push(`${file}: ${statement}`);
    }
  }
  assert.deepEqual(offending, []);
});
