/**
 * A problem found while reading input. Analysis code never throws on bad input: it returns what it
 * could make of the input together with a list of these, each saying where the trouble is.
 */
export interface Problem {
  /** One line, for a person: what is wrong and where ("section .text: truncated instruction at 0x1a8"). */
  message: string;
  /** Byte offset in the input file, when the problem has one. */
  offset?: number;
}

/** A position in a C source file, 1-based like compilers print them. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}
