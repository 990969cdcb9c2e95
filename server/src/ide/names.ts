/**
 * Fresh identifiers for code that fixes insert: never a word the file already uses, and never one
 * another fix of the same request hands out, so that two fixes shown together do not look alike.
 */

/** `PREFIX_N` with the smallest N not used as a word in the text nor reserved. */
export function freshName(text: string, prefix: string, reserved: ReadonlySet<string> = new Set()): string {
  for (let index = 0; ; index++) {
    const name = `${prefix}_${index}`;
    if (!reserved.has(name) && !usedAsWord(text, name)) return name;
  }
}

/** `BASE` itself when it is free, else `BASE_N` with the smallest free N. */
export function unusedName(text: string, base: string, reserved: ReadonlySet<string> = new Set()): string {
  return !reserved.has(base) && !usedAsWord(text, base) ? base : freshName(text, base, reserved);
}

function usedAsWord(text: string, name: string): boolean {
  return new RegExp(`\\b${name}\\b`).test(text);
}
