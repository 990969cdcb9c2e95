/**
 * The compile_commands.json reader: entries written with `arguments` or with a shell-quoted
 * `command`, relative paths taken from the entry's directory, and only the flags that change what
 * the preprocessor sees.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compileFlagsFor, findCompileCommands, readCompileCommands, splitCommandLine } from '../../server/src/source/compileCommands';

test('command strings split like a shell', () => {
  assert.deepEqual(splitCommandLine(`clang -DMSG="a b" '-DQ=it''s' -I\\ dir x.c`), ['clang', '-DMSG=a b', '-DQ=its', '-I dir', 'x.c']);
});

test('the entry of the file gives its -I, -D, -U and -include flags, from arguments or command', () => {
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-cc-'));
  try {
    mkdirSync(join(workspace, 'build'));
    writeFileSync(join(workspace, 'a.bpf.c'), '');
    writeFileSync(join(workspace, 'b.bpf.c'), '');
    const database = join(workspace, 'build', 'compile_commands.json');
    writeFileSync(
      database,
      JSON.stringify([
        {
          directory: workspace,
          file: 'a.bpf.c',
          arguments: ['clang', '-Iinclude', '-I', '/abs', '-DBPF_NO_GLOBAL_DATA', '-D', 'N=2', '-UX', '-include', 'config.h', '-O2', '-c', 'a.bpf.c'],
        },
        { directory: join(workspace, 'build'), file: '../b.bpf.c', command: 'clang -isystem sys -DF(x)=x -c ../b.bpf.c' },
        { file: 42 },
      ]),
    );
    assert.equal(findCompileCommands('', [workspace]), database);
    const entries = readCompileCommands(database) ?? [];
    assert.deepEqual(compileFlagsFor(entries, join(workspace, 'a.bpf.c'), join(workspace, 'build')), {
      includeDirs: [join(workspace, 'include'), '/abs'],
      defines: ['BPF_NO_GLOBAL_DATA', 'N=2', '!X'],
      forcedIncludes: [join(workspace, 'config.h')],
    });
    assert.deepEqual(compileFlagsFor(entries, join(workspace, 'b.bpf.c'), join(workspace, 'build')), {
      includeDirs: [join(workspace, 'build', 'sys')],
      defines: ['F(x)=x'],
      forcedIncludes: [],
    });
    assert.equal(compileFlagsFor(entries, join(workspace, 'c.bpf.c'), workspace), undefined);
    writeFileSync(database, '{ not json');
    assert.equal(readCompileCommands(database), undefined);
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
});
