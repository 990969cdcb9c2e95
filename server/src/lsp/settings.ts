/**
 * The extension's settings, `bpfStackLens.*`, declared once. package.json's
 * `contributes.configuration` is generated from this table (test/lsp/settings.test.ts fails when the
 * two drift), and the server reads whatever a client sends through `readSettings`, which falls back
 * to the defaults for anything missing or of the wrong type, so a bad settings file never stops it.
 */
import { compileGlob } from '../common/globs';
import { runningKernelProfile } from '../probe/runningKernel';
import { type KernelProfile, parseKernelProfiles } from '../rules/kernelProfile';
import type { BufferCompileMode, LensSettings, PrintkModel } from '../ide/lensSettings';

export type { BufferCompileMode, LensSettings, PrintkModel };

/** The JSON-schema part of a setting, as VS Code's `contributes.configuration` takes it. */
interface SettingSchema {
  type: 'array' | 'boolean' | 'number' | 'object' | 'string';
  /** VS Code's scope: "machine" keeps a workspace's settings file from setting it (tool paths). */
  scope?: 'machine';
  items?: { type: 'string' };
  additionalProperties?: { type: 'string' };
  enum?: string[];
  enumDescriptions?: string[];
  minimum?: number;
  default: unknown;
  markdownDescription: string;
}

/** A setting as declared: its schema, and its name when that is not the field's. */
type SettingDeclaration<T> = SettingSchema & {
  default: T;
  /** The name under `bpfStackLens.` when it differs from the field: VS Code groups dotted names (`sourceEstimate.enabled`) under one heading. */
  name?: string;
};

export const SETTINGS_SECTION = 'bpfStackLens';

export const SETTINGS: { [K in keyof LensSettings]: SettingDeclaration<LensSettings[K]> } = {
  kernels: {
    type: 'array',
    items: { type: 'string' },
    default: [],
    markdownDescription: 'Kernel versions to judge every program for, such as `["6.1", "6.18"]`. Empty means the kernel this editor runs on.',
  },
  jit: {
    type: 'boolean',
    default: true,
    markdownDescription: 'Judge as if programs are JIT-compiled (16-byte frame rounding from 6.9, private stacks from 6.13).',
  },
  objectGlobs: {
    type: 'array',
    items: { type: 'string' },
    default: ['**/*.o'],
    markdownDescription: 'Where to look for BPF objects built from the open sources, relative to each workspace folder. `node_modules` is never searched.',
  },
  includePaths: {
    type: 'array',
    items: { type: 'string' },
    default: [],
    markdownDescription: 'Extra include directories (`-I`) for estimating frames from the source.',
  },
  defines: {
    type: 'object',
    additionalProperties: { type: 'string' },
    default: {},
    markdownDescription: 'Extra macro definitions (`-D NAME=VALUE`) for the source, such as `{"BPF_NO_GLOBAL_DATA": "1"}`.',
  },
  compileCommands: {
    type: 'string',
    default: '',
    markdownDescription:
      'Path of a `compile_commands.json` to take include paths and definitions from, relative to the first workspace folder. Empty looks for `compile_commands.json`, then `build/compile_commands.json`, in each workspace folder. Edits to it apply without a reload.',
  },
  printkModel: {
    type: 'string',
    enum: ['auto', 'rodata', 'stack'],
    enumDescriptions: [
      'Format strings go to .rodata (libbpf 0.6 and later) unless BPF_NO_GLOBAL_DATA is defined.',
      'Format strings go to .rodata: bpf_printk with up to 3 arguments costs no stack.',
      'Format strings are built on the stack, as in libbpf before 0.6.',
    ],
    default: 'auto',
    markdownDescription: 'How `bpf_printk` stores its format string, which decides the stack bytes each call costs.',
  },
  estimateFromSource: {
    name: 'sourceEstimate.enabled',
    type: 'boolean',
    default: true,
    markdownDescription:
      "Estimate every open C file's frames from its source while you type, before and between builds. Off, only the built objects are shown, and a `bpf_printk`'s bytes follow libbpf's rules.",
  },
  scratchMapMinBytes: {
    name: 'quickFixes.scratchMapMinBytes',
    type: 'number',
    minimum: 8,
    default: 128,
    markdownDescription:
      'Local structs and arrays of at least this many bytes get a quick fix that moves them off the stack into a per-CPU array map (`BPF_MAP_TYPE_PERCPU_ARRAY`, one entry) used as scratch space.',
  },
  bufferCompile: {
    name: 'bufferCompile.enabled',
    type: 'string',
    enum: ['auto', 'on', 'off'],
    enumDescriptions: [
      'In a trusted workspace (VS Code workspace trust); off in editors that do not report trust.',
      'Also in editors that do not report workspace trust; never in a workspace VS Code does not trust.',
      'Never: the estimate and built objects only.',
    ],
    default: 'auto',
    markdownDescription:
      'Compile the buffer (unsaved edits included) with clang in the background when a compile command is known for the file (`compile_commands.json` or `bpfStackLens.bufferCompile.flags`), and show the exact numbers of the object in place of the estimate. Only the safe subset of the recorded flags is passed (`-I -isystem -D -U -include -std -target -m* -O* -g -W* -f*`); a command that loads code (`-fplugin`, `-Xclang`, `@file`, ...) is not compiled.',
  },
  bufferCompileDebounceMs: {
    name: 'bufferCompile.debounceMs',
    type: 'number',
    minimum: 0,
    default: 1500,
    markdownDescription: 'Quiet time after the last edit before the buffer is compiled; a newer edit cancels a compile under way.',
  },
  bufferCompileClang: {
    name: 'bufferCompile.clang',
    type: 'string',
    scope: 'machine',
    default: '',
    markdownDescription:
      'The clang for buffer compiles: an absolute path, or a name on `PATH`. Empty finds `clang` or `clang-NN` on `PATH`. A compiler inside the workspace is never run.',
  },
  bufferCompileFlags: {
    name: 'bufferCompile.flags',
    type: 'array',
    items: { type: 'string' },
    default: [],
    markdownDescription:
      'Compile flags for buffer compiles of files that no `compile_commands.json` entry names, such as `["-O2", "-target", "bpf"]`; filtered like the database\'s. `includePaths` and `defines` are added to every buffer compile.',
  },
  verifyQemu: {
    name: 'verify.qemu',
    type: 'string',
    scope: 'machine',
    default: '',
    markdownDescription:
      'The QEMU that boots the lab kernels of *Verify on real kernels…*: an absolute path, or a name on `PATH`. Empty is `qemu-system-x86_64` on `PATH` (Debian: `apt-get install qemu-system-x86`).',
  },
};

export const DEFAULT_SETTINGS: LensSettings = Object.fromEntries(
  Object.entries(SETTINGS).map(([name, setting]) => [name, structuredClone(setting.default)]),
) as unknown as LensSettings;

/** `contributes.configuration` for package.json, derived from SETTINGS. */
export function contributedConfiguration(): { title: string; properties: Record<string, SettingSchema> } {
  const properties: Record<string, SettingSchema> = {};
  for (const [field, { name, ...schema }] of Object.entries(SETTINGS) as [string, SettingDeclaration<unknown>][])
    properties[`${SETTINGS_SECTION}.${name ?? field}`] = schema;
  return { title: 'BPF Stack Lens', properties };
}

/** Settings from whatever a client sent, each value checked against its declared type. */
export function readSettings(raw: unknown): { settings: LensSettings; errors: string[] } {
  const source = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  const errors: string[] = [];
  const settings = structuredClone(DEFAULT_SETTINGS);
  const assign = settings as unknown as Record<string, unknown>;
  for (const [field, setting] of Object.entries(SETTINGS) as [string, SettingDeclaration<unknown>][]) {
    const name = setting.name ?? field;
    const value = valueOf(source, name);
    if (value === undefined || value === null) continue;
    if (fitsSchema(value, setting)) assign[field] = structuredClone(value);
    else errors.push(`${SETTINGS_SECTION}.${name}: ${JSON.stringify(value)} is not a valid ${setting.type}; using the default`);
  }
  // A glob picomatch refuses, or one too costly to match, is dropped alone; the others still apply.
  settings.objectGlobs = settings.objectGlobs.filter((glob) => {
    const compiled = compileGlob(glob);
    if ('error' in compiled) errors.push(`${SETTINGS_SECTION}.objectGlobs: ${JSON.stringify(glob)} is ignored: ${compiled.error}`);
    return 'matcher' in compiled;
  });
  return { settings, errors };
}

/**
 * A setting's value by its dotted name. VS Code's getConfiguration nests dotted names
 * (`{ sourceEstimate: { enabled: false } }`); a hand-written client may send them flat.
 */
function valueOf(source: Record<string, unknown>, dottedName: string): unknown {
  if (dottedName in source) return source[dottedName];
  let value: unknown = source;
  for (const part of dottedName.split('.')) value = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[part] : undefined;
  return value;
}

function fitsSchema(value: unknown, setting: SettingSchema): boolean {
  switch (setting.type) {
    case 'array':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    case 'boolean':
      return typeof value === 'boolean';
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) && (setting.minimum === undefined || value >= setting.minimum);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((item) => typeof item === 'string');
    case 'string':
      return typeof value === 'string' && (!setting.enum || setting.enum.includes(value));
  }
}

/** The kernel profiles the settings ask for; the running kernel when they name none. */
export function kernelProfilesOf(settings: LensSettings): { profiles: KernelProfile[]; notes: string[] } {
  const { profiles, errors, warnings } = parseKernelProfiles(settings.kernels, settings.jit);
  if (profiles.length > 0) return { profiles, notes: [...errors, ...warnings] };
  // The server probes the running kernel in the background first (probeRunningKernel); here only the cache is read.
  const { profile, note } = runningKernelProfile({ probe: 'cached' });
  return { profiles: [{ ...profile, jit: settings.jit && profile.jit }], notes: [...errors, ...(note ? [note] : [])] };
}
