/** A span of a document as string indices, the unit tree-sitter and the feature modules use. */
export interface TextSpan {
  start: number;
  end: number;
}
