/**
 * The `bpf-stack-lens` command line: check objects against the verifier's stack rules, dump a
 * program as the verifier sees it. Exit 2 with a one-line message on stderr for bad usage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isUsageError } from '../common/commandLine';
import { type CommandIo, writeProcessStdout } from '../common/commandIo';

const USAGE = `usage:
  bpf-stack-lens check [--kernel V[,V...]] [--no-jit] [--format text|json|sarif] [--quote-root DIR]... OBJ...
  bpf-stack-lens dump OBJ [--prog NAME]
  bpf-stack-lens estimate [-I DIR]... [-D NAME[=VAL]]... [--compile-commands FILE] [--compile [--clang PATH]] [--kernel V[,V...]] [--no-jit] [--format text|json] [--all-functions] FILE.c
  bpf-stack-lens verify [--kernel host|V[,V...]] [--format text|json] OBJ...
  bpf-stack-lens types [-I DIR]... [-D NAME[=VAL]]... FILE
  bpf-stack-lens lsp [--stdio | --node-ipc | --socket=PORT]
  bpf-stack-lens --version | --help`;

type Command = (argv: string[], io: CommandIo) => number | Promise<number>;

/**
 * Each command's module is loaded only when that command runs: the language server's dependencies
 * alone take longer to load than `check` takes to judge a large object.
 */
const COMMANDS: Record<string, () => Command> = {
  check: () => (require('./checkCommand') as typeof import('./checkCommand')).checkCommand,
  dump: () => (require('./dumpCommand') as typeof import('./dumpCommand')).dumpCommand,
  estimate: () => (require('./estimateCommand') as typeof import('./estimateCommand')).estimateCommand,
  verify: () => (require('./verifyCommand') as typeof import('./verifyCommand')).verifyCommand,
  types: () => (require('./typesCommand') as typeof import('./typesCommand')).typesCommand,
  lsp: () => (require('../lsp/lspCommand') as typeof import('../lsp/lspCommand')).lspCommand,
};

/** The version in package.json: four levels up from out/server/src/cli, one from dist/cli.js (the bundle). */
export function packageVersion(): string {
  for (const up of [['..', '..', '..', '..'], ['..']]) {
    try {
      const manifest = JSON.parse(readFileSync(join(__dirname, ...up, 'package.json'), 'utf8'));
      if (manifest.name === 'bpf-stack-lens') return manifest.version;
    } catch {
      // Not here; try the next place.
    }
  }
  return 'unknown';
}

export async function main(argv: string[], io?: Partial<CommandIo>): Promise<number> {
  const fullIo: CommandIo = {
    stdout: io?.stdout ?? writeProcessStdout,
    stderr: io?.stderr ?? ((text) => process.stderr.write(text)),
    version: io?.version ?? packageVersion(),
  };
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    fullIo.stdout(`${USAGE}\n`);
    return 0;
  }
  if (name === '--version') {
    fullIo.stdout(`${fullIo.version}\n`);
    return 0;
  }
  if (name !== undefined && Object.hasOwn(COMMANDS, name) && rest.some((arg) => arg === '--help' || arg === '-h')) {
    const lines = USAGE.split('\n').filter((line) => line.trimStart().startsWith(`bpf-stack-lens ${name} `));
    fullIo.stdout(`usage:\n${lines.join('\n')}\n`);
    return 0;
  }
  const command = name === undefined || !Object.hasOwn(COMMANDS, name) ? undefined : COMMANDS[name]();
  if (!command) {
    fullIo.stderr(`bpf-stack-lens: ${name === undefined ? 'no command given' : `unknown command "${name}"`}\n${USAGE}\n`);
    return 2;
  }
  try {
    return await command(rest, fullIo);
  } catch (error) {
    if (isUsageError(error)) {
      fullIo.stderr(`bpf-stack-lens ${name}: ${error.message}\n${USAGE}\n`);
      return 2;
    }
    throw error;
  }
}
