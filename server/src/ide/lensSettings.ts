/**
 * The settings the editor features read, as plain data: lsp/settings.ts reads and validates them
 * from the client, and the features (hover, CodeLens, printk costs) take them from here so that
 * ide/ needs nothing from the protocol layer.
 */

/** How bpf_printk puts its format on the stack; "auto" decides from BPF_NO_GLOBAL_DATA. */
export type PrintkModel = 'auto' | 'rodata' | 'stack';

export interface LensSettings {
  kernels: string[];
  jit: boolean;
  objectGlobs: string[];
  includePaths: string[];
  defines: Record<string, string>;
  compileCommands: string;
  printkModel: PrintkModel;
  /** Estimate frames from the C text while you type; off, only built objects are analysed. */
  estimateFromSource: boolean;
  /** Locals (structs, arrays) of at least this many bytes get the quick fix that moves them into a per-CPU scratch map. */
  scratchMapMinBytes: number;
  /** Compile the buffer in the background for exact numbers: see BufferCompileMode. */
  bufferCompile: BufferCompileMode;
  bufferCompileDebounceMs: number;
  /** The compiler for buffer compiles; empty finds clang on PATH. */
  bufferCompileClang: string;
  /** Flags for buffer compiles of files no compile_commands.json entry names. */
  bufferCompileFlags: string[];
  /** The QEMU that boots lab kernels for "Verify on real kernels…"; empty is qemu-system-x86_64 on PATH. */
  verifyQemu: string;
}

/**
 * When the buffer is compiled in the background. "auto": in a workspace the client reports trusted
 * (VS Code), never in a client that reports no trust. "on": also in clients that report no trust.
 * Never in a workspace the client reports untrusted, whatever the setting.
 */
export type BufferCompileMode = 'auto' | 'on' | 'off';
