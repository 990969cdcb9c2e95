/**
 * The scratch-map rewrite: moves a large local struct or array off the BPF stack into a per-CPU
 * array map of one entry, the way BPF developers make room when a frame is over its limit.
 *
 *   struct pkt_ctx ctx = {};          struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); ...
 *   ctx.len = skb->len;         ->         __type(value, struct pkt_ctx); } ctx_scratch SEC(".maps");
 *   load(skb, &ctx, sizeof(ctx));     ...
 *                                     __u32 ctx_key = 0;
 *                                     struct pkt_ctx *ctx = bpf_map_lookup_elem(&ctx_scratch, &ctx_key);
 *                                     if (!ctx)
 *                                         return TC_ACT_OK;
 *                                     __builtin_memset(ctx, 0, sizeof(*ctx));
 *                                     ctx->len = skb->len;
 *                                     load(skb, ctx, sizeof(*ctx));
 *
 * A struct becomes a pointer to it (`x.f` -> `x->f`, `&x` -> `x`, `sizeof(x)` -> `sizeof(*x)`, any
 * other use `(*x)`); an array becomes a pointer to its element, so subscripts and decayed uses stay
 * as written (`&x` -> `x`, `sizeof(x)` -> `sizeof(T[N])`). A map value outlives the call, so an
 * initializer becomes a memset or an assignment. The lookup's key is a 4-byte local: it costs one
 * stack slot, which callers count in the bytes the fix frees.
 *
 * A pure transformation of the text and its syntax tree: it never throws, and says why when it
 * cannot rewrite (a local declared with others, shadowed, defined with its type inline, ...).
 */
import type { Node } from '../source/parser';
import { unusedName } from './names';

export interface SourceEdit {
  start: number;
  end: number;
  newText: string;
}

export interface ScratchMapRequest {
  text: string;
  /** The function_definition that declares the local. */
  functionNode: Node;
  name: string;
  /** The 1-based line of the local's declaration. */
  line: number;
  /** The function's SEC() name (what it returns when the lookup fails depends on it), null when it is no program. */
  section: string | null;
  /** Where file-scope code goes above the function. */
  mapInsertAt: number;
  /** Names other fixes of the same request already hand out. */
  reserved?: Set<string>;
}

export type ScratchMapRewrite = { edits: SourceEdit[]; mapName: string; valueType: string; keyBytes: number } | { problem: string };

/** The bytes the lookup's key local adds to the frame: one 8-byte slot. */
export const SCRATCH_KEY_SLOT_BYTES = 8;

export function scratchMapRewrite(request: ScratchMapRequest): ScratchMapRewrite {
  const { text, functionNode, name } = request;
  const body = functionNode.childForFieldName('body');
  if (!body) return { problem: 'the function has no body' };
  const declaration = body
    .descendantsOfType('declaration')
    .find((node): node is Node => node !== null && node.startPosition.row + 1 === request.line && declaredNames(node).includes(name));
  if (!declaration) return { problem: `no declaration of \`${name}\` on line ${request.line} (a macro's local cannot be rewritten)` };
  if (declaration.parent?.type !== 'compound_statement') return { problem: `\`${name}\` is not declared in a block` };
  const declarators = declaration.childrenForFieldName('declarator').filter((node): node is Node => node !== null);
  if (declarators.length !== 1) return { problem: `\`${name}\` is declared together with other variables` };
  if (declaration.namedChildren.some((child) => child?.type === 'storage_class_specifier' || child?.type === 'type_qualifier')) {
    return { problem: `\`${name}\` is declared static, register, const or volatile` };
  }
  const typeNode = declaration.childForFieldName('type');
  if (!typeNode) return { problem: `\`${name}\` has no type` };
  if (typeNode.childForFieldName('body')) return { problem: `the type of \`${name}\` is defined in its declaration` };
  const typeName = typeNode.childForFieldName('name')?.text;
  if (
    (typeNode.type === 'struct_specifier' || typeNode.type === 'union_specifier') &&
    typeName &&
    new RegExp(`\\b(struct|union)\\s+${typeName}\\s*\\{`).test(body.text)
  ) {
    return { problem: `${typeNode.text} is defined inside the function, where a file-scope map cannot see it` };
  }
  const shadows = functionNode
    .descendantsOfType(['declaration', 'parameter_declaration'])
    .filter((node) => node !== null && declaredNames(node).includes(name));
  if (shadows.length !== 1) return { problem: `another \`${name}\` is declared in the function` };

  const init = declarators[0].type === 'init_declarator' ? declarators[0] : undefined;
  const declarator = init ? init.childForFieldName('declarator') : declarators[0];
  const initializer = init?.childForFieldName('value') ?? undefined;
  const dimensions = arrayDimensions(declarator);
  if (dimensions === undefined) return { problem: `\`${name}\` is neither a struct nor an array of known size` };
  const isArray = dimensions.length > 0;
  const valueType = `${typeNode.text}${dimensions.map((size) => `[${size}]`).join('')}`;
  const zeroed = initializer !== undefined && isZeroInitializer(initializer);
  if (initializer && !zeroed && (isArray || initializer.type !== 'initializer_list'))
    return { problem: `\`${name}\`'s initializer is not \`{}\`, \`{0}\` or a struct initializer list` };

  const reserved = request.reserved ?? new Set<string>();
  const mapName = unusedName(text, `${name}_scratch`, reserved);
  reserved.add(mapName);
  const keyName = unusedName(text, `${name}_key`, reserved);
  reserved.add(keyName);
  const keyType = /\b__u32\b/.test(text) ? '__u32' : 'unsigned int';
  const indent = lineIndent(text, declaration.startIndex);
  const unit = indent.startsWith('\t') || /^\t/m.test(functionNode.text) ? '\t' : '    ';
  const pointerDeclarator =
    dimensions.length > 1
      ? `(*${name})${dimensions
          .slice(1)
          .map((size) => `[${size}]`)
          .join('')}`
      : `*${name}`;
  const sizeOfValue = isArray ? `sizeof(${valueType})` : `sizeof(*${name})`;

  const lookup = [`${keyType} ${keyName} = 0;`, `${indent}${typeNode.text} ${pointerDeclarator} = bpf_map_lookup_elem(&${mapName}, &${keyName});`];
  const check = [`${indent}if (!${name})`, `${indent}${unit}${failedLookupReturn(functionNode, request.section, text)}`];
  // The map's value keeps what the previous run left: an initialized local must be initialized again.
  if (zeroed) check.push(`${indent}__builtin_memset(${name}, 0, ${sizeOfValue});`);
  else if (initializer) check.push(`${indent}*${name} = (${typeNode.text})${initializer.text};`);

  // The check goes after the block's declarations that follow, unless one of them already uses the local.
  let lastDeclaration = declaration;
  for (let next = declaration.nextNamedSibling; next && (next.type === 'declaration' || next.type === 'comment'); next = next.nextNamedSibling) {
    if (next.descendantsOfType('identifier').some((node) => node?.text === name)) break;
    if (next.type === 'declaration') lastDeclaration = next;
  }
  const edits: SourceEdit[] = [{ start: request.mapInsertAt, end: request.mapInsertAt, newText: mapDefinition(request, mapName, keyType, valueType, unit) }];
  if (lastDeclaration === declaration) {
    edits.push({ start: declaration.startIndex, end: declaration.endIndex, newText: [...lookup, '', ...check].join('\n') });
  } else {
    edits.push({ start: declaration.startIndex, end: declaration.endIndex, newText: lookup.join('\n') });
    edits.push({ start: lastDeclaration.endIndex, end: lastDeclaration.endIndex, newText: `\n\n${check.join('\n')}` });
  }
  const uses = usesAfter(body, declaration, name);
  for (const sizeOf of body.descendantsOfType('sizeof_expression')) {
    if (sizeOf && sizeOf.startIndex > declaration.endIndex && sizeofOperandName(sizeOf) === name)
      edits.push({ start: sizeOf.startIndex, end: sizeOf.endIndex, newText: sizeOfValue });
  }
  const insideEdit = (node: Node) => edits.some((edit) => edit.start <= node.startIndex && node.endIndex <= edit.end && edit.end > edit.start);
  for (const use of uses) {
    if (insideEdit(use)) continue;
    const parent = use.parent;
    if (parent?.type === 'pointer_expression' && parent.childForFieldName('operator')?.text === '&') {
      edits.push({ start: parent.startIndex, end: parent.endIndex, newText: name });
      continue;
    }
    if (isArray) continue;
    const operator = parent?.type === 'field_expression' && parent.childForFieldName('argument')?.id === use.id ? parent.childForFieldName('operator') : null;
    if (operator?.text === '.') {
      edits.push({ start: operator.startIndex, end: operator.endIndex, newText: '->' });
      continue;
    }
    const bare =
      parent !== null &&
      ['argument_list', 'init_declarator', 'assignment_expression', 'return_statement', 'expression_statement', 'comma_expression'].includes(parent.type);
    edits.push({ start: use.startIndex, end: use.endIndex, newText: bare ? `*${name}` : `(*${name})` });
  }
  return { edits: edits.sort((a, b) => a.start - b.start), mapName, valueType, keyBytes: SCRATCH_KEY_SLOT_BYTES };
}

function mapDefinition(request: ScratchMapRequest, mapName: string, keyType: string, valueType: string, unit: string): string {
  const owner = request.functionNode.childForFieldName('declarator')?.descendantsOfType('identifier')[0]?.text ?? 'the function';
  return (
    `/* Scratch space for \`${request.name}\` of ${owner}, off the stack: one entry per CPU, which a program has to itself while it runs. */\n` +
    `struct {\n` +
    `${unit}__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);\n` +
    `${unit}__uint(max_entries, 1);\n` +
    `${unit}__type(key, ${keyType});\n` +
    `${unit}__type(value, ${valueType});\n` +
    `} ${mapName} SEC(".maps");\n\n`
  );
}

/**
 * What the function returns when the lookup fails (it never does for index 0 of an array map, but
 * the verifier insists): the verdict that lets the packet or event through for a program, 0 or
 * nothing for a plain function.
 */
function failedLookupReturn(functionNode: Node, section: string | null, text: string): string {
  const declarator = functionNode.childForFieldName('declarator');
  if (declarator?.type === 'pointer_declarator') return 'return 0;';
  if (functionNode.childForFieldName('type')?.text === 'void') return 'return;';
  if (section !== null) {
    if (/^xdp/.test(section)) return 'return XDP_PASS;';
    if (/^(tc|tcx|classifier|action)\b/.test(section)) return /\bTC_ACT_OK\b/.test(text) ? 'return TC_ACT_OK;' : 'return 0; /* TC_ACT_OK */';
    if (/^(cgroup_skb|cgroup\/)/.test(section)) return 'return 1; /* allow */';
    if (/^sk_(skb|msg)/.test(section)) return /\bSK_PASS\b/.test(text) ? 'return SK_PASS;' : 'return 1; /* SK_PASS */';
  }
  return 'return 0;';
}

/** The names a declaration or parameter declares. */
function declaredNames(declaration: Node): string[] {
  return declaration.childrenForFieldName('declarator').flatMap((declarator) => {
    let node: Node | null = declarator;
    while (node && node.type !== 'identifier') node = node.childForFieldName('declarator');
    return node ? [node.text] : [];
  });
}

/** Sizes of an array declarator, outermost dimension first; [] for a plain identifier; undefined for pointers, functions or unsized arrays. */
function arrayDimensions(declarator: Node | null): string[] | undefined {
  const sizes: string[] = [];
  let node = declarator;
  while (node?.type === 'array_declarator') {
    const size = node.childForFieldName('size');
    if (!size) return undefined;
    sizes.unshift(size.text);
    node = node.childForFieldName('declarator');
  }
  return node?.type === 'identifier' ? sizes : undefined;
}

function isZeroInitializer(value: Node): boolean {
  if (value.type !== 'initializer_list') return false;
  const elements = value.namedChildren.filter((child) => child !== null && child.type !== 'comment');
  return elements.length === 0 || (elements.length === 1 && /^0[uUlL]*$/.test(elements[0]?.text ?? ''));
}

/** `sizeof x`, `sizeof(x)` (which tree-sitter may read as a type name): the identifier, if that is all it measures. */
function sizeofOperandName(sizeOf: Node): string | undefined {
  const operand = sizeOf.childForFieldName('value') ?? sizeOf.childForFieldName('type');
  return operand?.text.replace(/^\(\s*|\s*\)$/g, '').trim();
}

function usesAfter(body: Node, declaration: Node, name: string): Node[] {
  return body.descendantsOfType('identifier').filter((node): node is Node => node !== null && node.text === name && node.startIndex > declaration.endIndex);
}

function lineIndent(text: string, offset: number): string {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart, offset))?.[0] ?? '';
}
