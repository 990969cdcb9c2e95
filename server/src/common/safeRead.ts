/**
 * Reading files whose names come from input: BTF line info, #include, compile_commands.json, the
 * workspace's settings. An object or a repository can name /dev/zero (read whole, it never ends), a
 * FIFO (opening or reading it blocks forever), or a sparse 2 GB file. Every such read goes through
 * here: the file is opened without blocking (O_NONBLOCK, so a FIFO's open returns at once), checked
 * to be a regular file on the open descriptor (so a symbolic link swapped after the check does not
 * matter), and read only if it is within a size cap. Reading a regular file does not block, so no
 * timer is needed once the descriptor is known to be one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Large enough for the biggest vmlinux.h and a kernel tree's compile_commands.json. */
export const DEFAULT_READ_CAP_BYTES = 256 * 1024 * 1024;
/** A source file quoted in a report; BPF sources are a few thousand lines. */
export const SOURCE_QUOTE_CAP_BYTES = 16 * 1024 * 1024;

export type SafeRead = { bytes: Buffer } | { reason: string };

/** The bytes of a regular file of at most `capBytes`, or why it was not read. */
export function readRegularFile(file: string, capBytes = DEFAULT_READ_CAP_BYTES): SafeRead {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    return { reason: errorReason(error) };
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) return { reason: `not a regular file (${fileKind(stat)})` };
    if (stat.size > capBytes) return { reason: `${stat.size} bytes, more than the ${capBytes}-byte limit` };
    const bytes = new Uint8Array(stat.size);
    let filled = 0;
    while (filled < bytes.length) {
      const count = fs.readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (count === 0) break;
      filled += count;
    }
    return { bytes: Buffer.from(bytes.buffer, 0, filled) };
  } catch (error) {
    return { reason: errorReason(error) };
  } finally {
    fs.closeSync(fd);
  }
}

/** The same, asynchronously, for the language server's main thread. */
export async function readRegularFileAsync(file: string, capBytes = DEFAULT_READ_CAP_BYTES): Promise<SafeRead> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (error) {
    return { reason: errorReason(error) };
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { reason: `not a regular file (${fileKind(stat)})` };
    if (stat.size > capBytes) return { reason: `${stat.size} bytes, more than the ${capBytes}-byte limit` };
    const bytes = new Uint8Array(stat.size);
    let filled = 0;
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { bytes: Buffer.from(bytes.buffer, 0, filled) };
  } catch (error) {
    return { reason: errorReason(error) };
  } finally {
    await handle.close();
  }
}

/** A regular file's text (UTF-8), or undefined when it is not one, is too big or cannot be read. */
export function readRegularText(file: string, capBytes = DEFAULT_READ_CAP_BYTES): string | undefined {
  const read = readRegularFile(file, capBytes);
  return 'bytes' in read ? read.bytes.toString('utf8') : undefined;
}

/** Whether a path names an existing regular file (include resolution: a directory or device named like a header is no header). */
export function isRegularFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * Which files a report may quote lines from: an object's line info can name any path, and quoting
 * /etc/shadow into a SARIF upload would leak it. Lines are quoted from files under one of `roots`
 * (the workspace folders, the object's directory, and any the user adds); others are withheld.
 */
export interface QuotePolicy {
  roots: readonly string[];
}

export type QuotedLine = { text: string } | { withheld: string } | undefined;

/** Line `line` (1-based) of `file` on disk, if the policy allows quoting it. */
export function quoteSourceLine(file: string, line: number, policy: QuotePolicy, lines = new Map<string, string[] | { withheld: string }>()): QuotedLine {
  let known = lines.get(file);
  if (known === undefined) {
    known = readQuotable(file, policy);
    lines.set(file, known);
  }
  if ('withheld' in known) return known;
  const text = known[line - 1];
  return text === undefined ? undefined : { text };
}

/**
 * The text a report shows for a line: as it is on disk when it may be quoted; else the object's own
 * copy (BTF carries each line as compiled), saying why the file was not read; else only why.
 */
export function shownLine(onDisk: QuotedLine, compiled: string | undefined): string | undefined {
  if (onDisk && 'text' in onDisk) return onDisk.text;
  const withheld = onDisk && 'withheld' in onDisk ? onDisk.withheld : undefined;
  if (compiled === undefined) return withheld === undefined ? undefined : `(line not quoted: ${withheld})`;
  return withheld === undefined ? compiled : `${compiled.trim()}   (as compiled, from the object; not read: ${withheld})`;
}

function readQuotable(file: string, policy: QuotePolicy): string[] | { withheld: string } {
  const absolute = realPath(file);
  if (!policy.roots.some((root) => isInside(absolute, realPath(root)))) {
    return { withheld: `${file} is outside the workspace and the object's directory` };
  }
  const read = readRegularFile(absolute, SOURCE_QUOTE_CAP_BYTES);
  if ('reason' in read) return read.reason.startsWith('no such file') ? [] : { withheld: `${file}: ${read.reason}` };
  return read.bytes.toString('utf8').split('\n');
}

function realPath(file: string): string {
  const absolute = path.resolve(file);
  try {
    return fs.realpathSync.native(absolute);
  } catch {
    return absolute;
  }
}

function isInside(file: string, root: string): boolean {
  const relative = path.relative(root, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function fileKind(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a file';
}

function errorReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EISDIR') return 'is a directory';
  if (code === 'EACCES') return 'permission denied';
  return (error as Error).message ?? String(error);
}
