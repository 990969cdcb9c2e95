/**
 * settings.ts is the one source of truth for `bpfStackLens.*`: package.json must declare exactly
 * what it declares, and whatever a client sends is read against it, falling back to the defaults.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEFAULT_SETTINGS, contributedConfiguration, kernelProfilesOf, readSettings } from '../../server/src/lsp/settings';
import { REPO } from './harness';

test('package.json contributes.configuration is generated from settings.ts', () => {
  const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  assert.deepEqual(
    manifest.contributes?.configuration,
    contributedConfiguration(),
    'package.json drifted from server/src/lsp/settings.ts: copy contributedConfiguration() into contributes.configuration',
  );
});

test('the defaults are the documented ones', () => {
  assert.deepEqual(DEFAULT_SETTINGS, {
    kernels: [],
    jit: true,
    objectGlobs: ['**/*.o'],
    includePaths: [],
    defines: {},
    compileCommands: '',
    printkModel: 'auto',
    estimateFromSource: true,
    scratchMapMinBytes: 128,
    bufferCompile: 'auto',
    bufferCompileDebounceMs: 1500,
    bufferCompileClang: '',
    bufferCompileFlags: [],
    verifyQemu: '',
  });
});

test('a dotted setting is read nested, as VS Code sends it, or flat', () => {
  assert.equal(readSettings({ sourceEstimate: { enabled: false } }).settings.estimateFromSource, false);
  assert.equal(readSettings({ 'sourceEstimate.enabled': false }).settings.estimateFromSource, false);
  const wrong = readSettings({ sourceEstimate: { enabled: 'no' } });
  assert.equal(wrong.settings.estimateFromSource, true);
  assert.match(wrong.errors[0], /bpfStackLens\.sourceEstimate\.enabled/);
});

test('values of the wrong type fall back to the default, with a message', () => {
  const { settings, errors } = readSettings({ kernels: '6.1', jit: false, printkModel: 'heap', defines: { BPF_NO_GLOBAL_DATA: '1' } });
  assert.deepEqual(settings.kernels, []);
  assert.equal(settings.jit, false);
  assert.equal(settings.printkModel, 'auto');
  assert.deepEqual(settings.defines, { BPF_NO_GLOBAL_DATA: '1' });
  assert.equal(errors.length, 2);
  assert.match(errors[0], /bpfStackLens\.kernels/);
});

test('kernels become profiles; none means the running kernel', () => {
  const { settings } = readSettings({ kernels: ['6.1', '6.18'], jit: false });
  assert.deepEqual(kernelProfilesOf(settings).profiles, [
    { version: '6.1', jit: false },
    { version: '6.18', jit: false },
  ]);
  assert.equal(kernelProfilesOf(DEFAULT_SETTINGS).profiles.length, 1);
  assert.match(kernelProfilesOf(readSettings({ kernels: ['six'] }).settings).notes[0], /not a kernel version/);
});
