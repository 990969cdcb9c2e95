/**
 * Text from the user's files (names, types, format strings) placed into hover markdown. Every such
 * piece goes through here, so that a backtick, an asterisk or a link in a file reads as itself and
 * never as markup: inline code cannot be broken out of when its fence is longer than any run of
 * backticks inside it (CommonMark), and newlines would end it, so they become spaces.
 */

/** `text` as inline code, whatever it contains. */
export function inlineCode(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  const longestRun = Math.max(0, ...[...flat.matchAll(/`+/g)].map((run) => run[0].length));
  const fence = '`'.repeat(longestRun + 1);
  // A space on each side keeps a leading or trailing backtick apart from the fence; CommonMark strips one.
  const padded = longestRun > 0 || flat.startsWith(' ') || flat.endsWith(' ') ? ` ${flat} ` : flat;
  return `${fence}${padded}${fence}`;
}
