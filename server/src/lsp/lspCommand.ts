/**
 * `bpf-stack-lens lsp [--stdio | --node-ipc | --socket=PORT]`: runs the language server, for any
 * editor with an LSP client. With no transport named it speaks over stdio. Nothing else may write
 * to stdout then: it is the protocol channel.
 */
import { ProposedFeatures, createConnection } from 'vscode-languageserver/node';
import { UsageError } from '../common/commandLine';
import type { CommandIo } from '../common/commandIo';
import { startServer } from './server';

const TRANSPORTS = /^--(stdio|node-ipc|socket=\d+|pipe=.+|clientProcessId=\d+)$/;

export function lspCommand(argv: string[], _io: CommandIo): Promise<number> {
  const unknown = argv.find((arg) => !TRANSPORTS.test(arg));
  if (unknown) throw new UsageError(`unknown option "${unknown}" (expected --stdio, --node-ipc or --socket=PORT)`);
  const overStdio = argv.includes('--stdio') || !argv.some((arg) => /^--(node-ipc|socket=|pipe=)/.test(arg));
  const connection = overStdio ? createConnection(ProposedFeatures.all, process.stdin, process.stdout) : createConnection(ProposedFeatures.all);
  startServer(connection);
  // The server lives until its client goes away; the library exits the process on `exit`.
  return new Promise((resolve) => {
    if (overStdio) process.stdin.on('end', () => resolve(0));
    else process.on('disconnect', () => resolve(0));
  });
}
