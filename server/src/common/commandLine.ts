/**
 * A small command-line parser: flags with values (`--kernel 6.1,6.18`, `--kernel=6.1`, `-I dir`,
 * `-Idir`), boolean flags and positional arguments. Unknown flags are errors, not silently ignored.
 */

export interface FlagSpec {
  /** Takes a value. */
  value: boolean;
  /** May be given more than once; values accumulate. */
  repeat?: boolean;
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  booleans: Set<string>;
  positionals: string[];
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Whether `error` is a UsageError. Not `instanceof`: `check` runs from the bundle (dist/cli.js) and
 * the other commands from out/, so one process can hold two copies of the class.
 */
export function isUsageError(error: unknown): error is UsageError {
  return error instanceof Error && error.name === 'UsageError';
}

export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): ParsedArgs {
  const flags = new Map<string, string[]>();
  const booleans = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    let name = arg;
    let inlineValue: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      if (eq > 0) {
        name = arg.slice(0, eq);
        inlineValue = arg.slice(eq + 1);
      }
    } else if (arg.length > 2 && specs[arg.slice(0, 2)]?.value) {
      // -Idir, -DNAME=1
      name = arg.slice(0, 2);
      inlineValue = arg.slice(2);
    }
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown option ${name}`);
    if (!spec.value) {
      if (inlineValue !== undefined) throw new UsageError(`option ${name} takes no value`);
      booleans.add(name);
      continue;
    }
    const value = inlineValue ?? argv[++i];
    if (value === undefined) throw new UsageError(`option ${name} needs a value`);
    const values = flags.get(name) ?? [];
    if (values.length > 0 && !spec.repeat) throw new UsageError(`option ${name} given twice`);
    values.push(value);
    flags.set(name, values);
  }
  return { flags, booleans, positionals };
}
