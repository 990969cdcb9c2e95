/**
 * Lines that follow edits. An analysis describes the text it was made from: an object the file as
 * it was compiled (BTF carries the text of every line it points at), an estimate the buffer as it was
 * when the estimate started. When the buffer has changed since, a line number from the analysis
 * points at whatever moved there; it is mapped to the nearest line of the current text that reads
 * the same (spaces aside), and kept as it is when no such line is near.
 */

/** How far from its old place a line is looked for. */
const SEARCH_LINES = 400;

/** The text of a 1-based line as the analysis saw it, or undefined when it is not known. */
export type DescribedLine = (file: string, line: number) => string | undefined;

/** The line in `currentLines` (0-based array) that a 1-based `line` of the described text is now. */
export function relocatedLine(line: number, described: string | undefined, currentLines: readonly string[]): number {
  if (described === undefined) return line;
  const wanted = normalized(described);
  if (wanted === '') return line;
  const matches = (candidate: number) => candidate >= 1 && candidate <= currentLines.length && normalized(currentLines[candidate - 1]) === wanted;
  if (matches(line)) return line;
  for (let distance = 1; distance <= SEARCH_LINES; distance++) {
    if (matches(line + distance)) return line + distance;
    if (matches(line - distance)) return line - distance;
  }
  return line;
}

function normalized(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Relocates every location of a file whose current text is known, through `described`. */
export function relocator(
  described: DescribedLine,
  currentText: (file: string) => string | undefined,
): <T extends { file: string; line: number }>(location: T) => T {
  const linesOf = new Map<string, string[] | undefined>();
  return (location) => {
    if (!linesOf.has(location.file)) linesOf.set(location.file, currentText(location.file)?.split(/\r?\n/));
    const lines = linesOf.get(location.file);
    if (!lines) return location;
    const line = relocatedLine(location.line, described(location.file, location.line), lines);
    return line === location.line ? location : { ...location, line };
  };
}
