/**
 * Text from a file or an object, made safe to put into markdown. A hover is markdown, and a program's
 * SEC() string, a symbol name in an object, an object's path and a source's identifiers are all the
 * repository's to write: `SEC("kprobe/![x](http://e/x.png)<img src=x>")` would otherwise render a
 * remote image, a link and HTML in the editor. Every such piece goes through one of the two helpers
 * below at the point where it is interpolated; the markdown the features write themselves (bold,
 * code spans, rules) stays as it is.
 *
 * CommonMark lets a backslash escape any ASCII punctuation character, and an escaped character is
 * always literal text: it opens no link, image, emphasis, HTML tag, entity, autolink or heading.
 * Inside a code span nothing is interpreted except the backticks that close it, so a code span is
 * fenced with more backticks than any run in its text. Line breaks become spaces (a blank line would
 * end the paragraph and let the next one start a block), and control and bidirectional-override
 * characters are shown as U+FFFD, so the rendered text is the text that is there.
 */

/** Longer names are cut, with an ellipsis: a 64 KB section name is not worth a 64 KB hover. */
export const MARKDOWN_TEXT_CAP = 200;

const WORD = /^[A-Za-z0-9]$/;
const ASCII_PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/g;
// C0 and C1 controls (tab kept), DEL, and the bidirectional embeddings, overrides and isolates.
const INVISIBLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/** Plain text that renders as exactly these characters in markdown, on one line. */
export function markdownText(text: string): string {
  const shown = visible(text);
  // An underscore between two letters or digits can neither open nor close emphasis, so
  // identifiers such as bpf_printk are left as they read.
  return shown.replace(ASCII_PUNCTUATION, (character, at: number) =>
    character === '_' && WORD.test(shown[at - 1] ?? '') && WORD.test(shown[at + 1] ?? '') ? character : `\\${character}`,
  );
}

/** The text as an inline code span, whatever backticks it holds. */
export function markdownCode(text: string): string {
  const content = visible(text);
  if (content === '') return '` `';
  const longestRun = Math.max(0, ...(content.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  // A span whose text starts or ends with a backtick (or a space) needs a space inside each fence,
  // which the renderer strips again.
  const padded = /^[` ]|[` ]$/.test(content) ? ` ${content} ` : content;
  return `${fence}${padded}${fence}`;
}

function visible(text: string): string {
  // The cut never splits a surrogate pair.
  const cut = text.length > MARKDOWN_TEXT_CAP ? `${text.slice(0, MARKDOWN_TEXT_CAP).replace(/[\uD800-\uDBFF]$/, '')}…` : text;
  return cut.replace(/\r\n?|\n/g, ' ').replace(INVISIBLE, '\uFFFD');
}
