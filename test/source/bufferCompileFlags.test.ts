/**
 * The flag policy of the background compile: only flags that choose what the preprocessor sees or
 * how code is generated reach clang; flags that load code, or read more flags from files, are
 * refused and named; a compiler inside the workspace is never chosen.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { resolveClang } from '../../server/src/compile/bufferCompile';
import { bufferCompileFlags, safeCompileFlags } from '../../server/src/compile/compileFlags';

test('the preprocessor, target and code-generation flags are kept, paths made absolute from the entry directory', () => {
  const { flags, refused } = safeCompileFlags(
    [
      '/usr/bin/clang',
      '-Iinc',
      '-I',
      'other',
      '-isystem',
      '/sys',
      '-DX=1',
      '-D',
      'Y',
      '-UZ',
      '-include',
      'config.h',
      '-std=gnu11',
      '-target',
      'bpf',
      '-mcpu=v3',
      '-O2',
      '-g',
      '-Wall',
      '-fno-stack-protector',
      '-c',
      'prog.c',
      '-o',
      'prog.o',
      '-MD',
      '-MF',
      'prog.d',
    ],
    '/build',
  );
  assert.deepEqual(refused, []);
  assert.deepEqual(flags, [
    '-I',
    '/build/inc',
    '-I',
    '/build/other',
    '-isystem',
    '/sys',
    '-DX=1',
    '-DY',
    '-UZ',
    '-include',
    '/build/config.h',
    '-std=gnu11',
    '-target',
    'bpf',
    '-mcpu=v3',
    '-O2',
    '-g',
    '-Wall',
    '-fno-stack-protector',
  ]);
});

test('flags that load code or read flags from files are refused and named', () => {
  const { flags, refused } = safeCompileFlags(
    [
      'clang',
      '-fplugin=./evil.so',
      '-fpass-plugin=./evil.so',
      '-fplugin-arg-evil-x',
      '-Xclang',
      '-load',
      '-Xclang',
      './evil.so',
      '-load',
      'x.so',
      '@flags.rsp',
      '-B./bin',
      '-B',
      './bin',
      '--config=./x.cfg',
      '-specs=x',
      '-Wl,-plugin,x.so',
      '-Wp,-x',
      '-mllvm',
      '-foo',
      '-O2',
    ],
    '/build',
  );
  assert.deepEqual(flags, ['-O2']);
  assert.deepEqual(refused, [
    '-fplugin=./evil.so',
    '-fpass-plugin=./evil.so',
    '-fplugin-arg-evil-x',
    '-Xclang -load',
    '-Xclang ./evil.so',
    '-load x.so',
    '@flags.rsp',
    '-B./bin',
    '-B ./bin',
    '--config=./x.cfg',
    '-specs=x',
    '-Wl,-plugin,x.so',
    '-Wp,-x',
    '-mllvm -foo',
  ]);
});

test("flags that would write beside the user's files or produce no object are dropped", () => {
  const { flags } = safeCompileFlags(
    [
      'clang',
      '-fsyntax-only',
      '-fcrash-diagnostics-dir=.',
      '-fmodules-cache-path=.',
      '-fmodule-output=x.pcm',
      '-fproc-stat-report=victim.c',
      '-foptimization-record-file=victim.c',
      '-save-temps',
      '-O1',
    ],
    '/build',
  );
  assert.deepEqual(flags, ['-O1']);
});

test('a compile command is known from a database entry or from settings flags; settings -I and -D follow', () => {
  const directory = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-flags-'));
  try {
    const database = {
      path: join(directory, 'compile_commands.json'),
      entries: [{ directory, file: 'prog.c', arguments: ['cc', '-fplugin=x.so', '-DA', '-c', 'prog.c'] }],
    };
    const known = bufferCompileFlags(join(directory, 'prog.c'), { database, settingsFlags: [], includePaths: ['/inc'], defines: ['B=2', '!C'] });
    assert.deepEqual(known, { known: true, flags: ['-DA', '-I', '/inc', '-DB=2', '-UC'], refused: ['-fplugin=x.so'] });
    assert.equal(bufferCompileFlags(join(directory, 'other.c'), { database, settingsFlags: [], includePaths: [], defines: [] }).known, false);
    assert.equal(bufferCompileFlags(join(directory, 'other.c'), { database, settingsFlags: ['-O2'], includePaths: [], defines: [] }).known, true);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test('a compiler inside the workspace is refused, from the settings or from PATH', () => {
  const workspace = mkdtempSync(join(tmpdir(), 'bpf-stack-lens-clang-'));
  try {
    mkdirSync(join(workspace, 'bin'));
    const planted = join(workspace, 'bin', 'clang');
    writeFileSync(planted, '#!/bin/sh\nexit 0\n');
    chmodSync(planted, 0o755);
    assert.match(resolveClang(planted, [workspace]).problem ?? '', /inside the workspace/);
    assert.match(resolveClang('', [workspace], join(workspace, 'bin')).problem ?? '', /inside the workspace/);
    // A relative PATH entry (".") is never searched: it names whatever directory the server runs in.
    assert.equal(resolveClang('', [], 'bin').clang, undefined);
    assert.equal(resolveClang(planted, []).clang, planted);
  } finally {
    rmSync(workspace, { recursive: true, force: true });
  }
});
