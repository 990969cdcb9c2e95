/**
 * Enough of the C preprocessor to see what the compiler sees in BPF programs: #include through
 * include paths, object-like and function-like macros (with #, ##, __VA_ARGS__, named variadic
 * parameters and GNU's `, ## args` comma elision, which libbpf's ___bpf_narg counting relies on),
 * and conditional compilation with integer constant expressions and defined().
 *
 * The preprocessor works one file at a time. Includes are handed to the caller (the header index
 * or the translation unit), which decides whether to preprocess the header or replay it from the
 * cache; both share one PreprocessorState, so a header's #defines are visible after it.
 * Expanded tokens are delivered in batches, flushed before every include, so that whoever parses
 * declarations always has the types of earlier headers in scope.
 */
import { lineOfOffset, lineStarts, spell, tokenize, TokenFlags, TokenKind } from './lexer';
import type { Token } from './lexer';
import { evaluateConstant } from './constExpr';
import { CLANG_BPF_PREDEFINES } from './clangBpfPredefines';
import { partitionPoint } from '../common/numbers';
import type { Problem } from '../common/problem';

export interface Macro {
  name: string;
  /** Parameter names of a function-like macro (the variadic one is `__VA_ARGS__` unless named); undefined when object-like. */
  params?: string[];
  variadic?: boolean;
  body: Token[];
  /** The replacement list as written, which identifies the definition in cache keys. */
  spelling: string;
}

export type MacroTable = Map<string, Macro>;

/** What is shared by every file of one translation unit. */
export interface PreprocessorState {
  macros: MacroTable;
  /** Files that said `#pragma once` and have been included. */
  onceFiles: Set<string>;
  /** Next value of __COUNTER__. */
  counter: number;
  /** What macro expansion may still cost in this translation unit; unbounded when absent. */
  budget?: ExpansionBudget;
}

/**
 * Macro expansion bounded in tokens and time: `#define A1 A0 A0` twenty times over makes a million
 * tokens (35 s and 1.8 GB here before the bound). Past either limit expansion stops, the rest of the
 * translation unit is not expanded, and one problem says the estimate is partial.
 */
export interface ExpansionBudget {
  tokensLeft: number;
  /** performance.now() after which expansion stops. */
  deadline: number;
  /** Why expansion stopped, once it has. */
  exhausted?: string;
}

/** Tokens macro substitution may produce per translation unit (clang has no such limit; real code stays far below). */
export const MAX_EXPANDED_TOKENS = 1_000_000;
/** Milliseconds of macro expansion per translation unit. */
export const EXPANSION_TIME_BUDGET_MS = 10_000;

export function expansionBudget(): ExpansionBudget {
  return { tokensLeft: MAX_EXPANDED_TOKENS, deadline: performance.now() + EXPANSION_TIME_BUDGET_MS };
}

export interface IncludeRequest {
  /** The name between the quotes or angle brackets. */
  spelled: string;
  angled: boolean;
  /** #include_next: the search starts after the directory the including file was found in. */
  next: boolean;
  fromFile: string;
  /** Offset of the directive in the including file. */
  offset: number;
}

export interface PreprocessHandler {
  /** A batch of expanded tokens of the file being preprocessed, in order. */
  tokens(batch: Token[]): void;
  /** An #include in an active region; the handler preprocesses (or replays) the header. */
  include(request: IncludeRequest): void;
  /** For __has_include: whether the header can be found. */
  hasInclude(request: IncludeRequest): boolean;
}

export interface FileResult {
  /** Ranges of the file skipped by conditional compilation, as [start, end) offsets. */
  inactiveRanges: [number, number][];
  problems: Problem[];
}

/** A preprocessor state holding clang's BPF predefines and the -D definitions given. */
export function createPreprocessorState(defines: Record<string, string> | string[] = {}): PreprocessorState {
  const state: PreprocessorState = { macros: new Map(), onceFiles: new Set(), counter: 0 };
  const problems: Problem[] = [];
  definitionsFromText(CLANG_BPF_PREDEFINES, state, problems);
  const entries = Array.isArray(defines)
    ? defines.map((definition): [string, string] => {
        const equals = definition.indexOf('=');
        return equals === -1 ? [definition, '1'] : [definition.slice(0, equals), definition.slice(equals + 1)];
      })
    : Object.entries(defines);
  definitionsFromText(entries.map(([name, value]) => `#define ${name} ${value}`).join('\n'), state, problems);
  return state;
}

/** Runs `#define`/`#undef` lines given as text against the state (predefines, -D, cache replays). */
export function definitionsFromText(text: string, state: PreprocessorState, problems: Problem[]): void {
  const handler: PreprocessHandler = { tokens: () => undefined, include: () => undefined, hasInclude: () => false };
  preprocessFile('<built-in>', text, state, handler, problems);
}

/** Parses `#define` tokens (after the directive name) into a macro; undefined if malformed. */
function parseDefinition(tokens: Token[], start: number, end: number, problems: Problem[]): Macro | undefined {
  const nameToken = tokens[start];
  if (!nameToken || start >= end || nameToken.kind !== TokenKind.Identifier) {
    problems.push({ message: '#define without a macro name', offset: tokens[start - 1]?.offset });
    return undefined;
  }
  let index = start + 1;
  let params: string[] | undefined;
  let variadic = false;
  const open = tokens[index];
  if (index < end && open.text === '(' && !(open.flags & TokenFlags.SpaceBefore)) {
    params = [];
    index++;
    for (; index < end && tokens[index].text !== ')'; index++) {
      const token = tokens[index];
      if (token.text === ',') continue;
      if (token.text === '...') {
        variadic = true;
        params.push('__VA_ARGS__');
      } else if (token.kind === TokenKind.Identifier) {
        if (tokens[index + 1]?.text === '...') {
          variadic = true;
          index++;
        }
        params.push(token.text);
      } else {
        problems.push({ message: `bad parameter list in #define ${nameToken.text}`, offset: token.offset });
        return undefined;
      }
    }
    index++;
  }
  const body = tokens.slice(index, end);
  if (body.length > 0) body[0] = { ...body[0], flags: body[0].flags & ~TokenFlags.SpaceBefore };
  // The spelling must read back as the same definition: the header index replays it as a #define.
  const paramSpelling = params?.map((param, index) => (variadic && index === params!.length - 1 ? (param === '__VA_ARGS__' ? '...' : `${param}...`) : param));
  const spelling = (paramSpelling ? `(${paramSpelling.join(',')}) ` : '') + spell(body);
  return { name: nameToken.text, params, variadic, body, spelling };
}

interface ConditionalGroup {
  /** Whether the enclosing region is active at all. */
  parentActive: boolean;
  /** Whether the current branch is being compiled. */
  active: boolean;
  /** Whether some branch of this #if chain has been taken already. */
  taken: boolean;
  sawElse: boolean;
  /** Offset where the current inactive stretch began, when inactive. */
  inactiveSince?: number;
}

const MAX_INCLUDE_DEPTH = 200;
let includeDepth = 0;

/**
 * Preprocesses one file: directives are obeyed, text in active regions is macro-expanded and given
 * to the handler, includes are handed to the handler. Never throws on bad input. The tokens before
 * a directive are expanded when it changes the macros or the output (#define, #undef, #include,
 * #pragma...), not at a conditional: as in clang, a macro's invocation may span `#if ... #endif`,
 * whose active lines are among its arguments.
 */
export function preprocessFile(
  file: string,
  text: string,
  state: PreprocessorState,
  handler: PreprocessHandler,
  problems: Problem[] = [],
  tokens: Token[] = tokenize(text),
): FileResult {
  const expander = new MacroExpander(state, file, problems);
  const groups: ConditionalGroup[] = [];
  const inactiveRanges: [number, number][] = [];
  let active = true;
  let pending: Token[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const batch = expander.expand(pending);
    pending = [];
    if (batch.length > 0) handler.tokens(batch);
  };

  let index = 0;
  const count = tokens.length;
  while (index < count) {
    const token = tokens[index];
    if (!(token.flags & TokenFlags.AtLineStart) || token.text !== '#' || token.kind !== TokenKind.Punctuator) {
      if (active) pending.push(token);
      index++;
      continue;
    }
    let end = index + 1;
    while (end < count && !(tokens[end].flags & TokenFlags.AtLineStart)) end++;
    const nameToken = index + 1 < end ? tokens[index + 1] : undefined;
    const directive = nameToken?.text ?? '';
    const argsStart = index + 2;
    const directiveOffset = token.offset;
    const lineEnd = end < count ? tokens[end].offset : text.length;
    index = end;

    switch (directive) {
      case 'if':
      case 'ifdef':
      case 'ifndef': {
        let condition = false;
        if (active) {
          if (directive === 'if') condition = expander.evaluateCondition(tokens, argsStart, end, directiveOffset, handler);
          else {
            const name = tokens[argsStart];
            if (!name || argsStart >= end || name.kind !== TokenKind.Identifier) {
              problems.push({ message: `#${directive} without a macro name`, offset: directiveOffset });
            }
            const defined = name !== undefined && argsStart < end && expander.isDefined(name.text);
            condition = directive === 'ifdef' ? defined : !defined;
          }
        }
        const group: ConditionalGroup = { parentActive: active, active: active && condition, taken: active && condition, sawElse: false };
        if (active && !group.active) group.inactiveSince = lineEnd;
        groups.push(group);
        active = group.active;
        break;
      }
      case 'elif':
      case 'elifdef':
      case 'elifndef':
      case 'else': {
        const group = groups[groups.length - 1];
        if (!group) {
          problems.push({ message: `#${directive} without #if`, offset: directiveOffset });
          break;
        }
        if (group.sawElse) problems.push({ message: `#${directive} after #else`, offset: directiveOffset });
        let condition = false;
        if (group.parentActive && !group.taken) {
          if (directive === 'else') condition = true;
          else if (directive === 'elif') condition = expander.evaluateCondition(tokens, argsStart, end, directiveOffset, handler);
          else {
            const name = tokens[argsStart];
            const defined = name !== undefined && argsStart < end && expander.isDefined(name.text);
            condition = directive === 'elifdef' ? defined : !defined;
          }
        }
        if (directive === 'else') group.sawElse = true;
        const wasActive = group.active;
        group.active = condition;
        group.taken ||= condition;
        if (group.parentActive && wasActive && !condition) group.inactiveSince = lineEnd;
        if (group.parentActive && !wasActive && condition && group.inactiveSince !== undefined) {
          inactiveRanges.push([group.inactiveSince, directiveOffset]);
          group.inactiveSince = undefined;
        }
        active = group.active;
        break;
      }
      case 'endif': {
        const group = groups.pop();
        if (!group) {
          problems.push({ message: '#endif without #if', offset: directiveOffset });
          break;
        }
        if (group.inactiveSince !== undefined) inactiveRanges.push([group.inactiveSince, directiveOffset]);
        active = group.parentActive;
        break;
      }
      default: {
        if (!active) break;
        flush();
        handleActiveDirective(directive, tokens, argsStart, end, directiveOffset, text, file, state, expander, handler, problems);
      }
    }
  }
  if (active) flush();
  for (const group of groups) {
    if (group.inactiveSince !== undefined) inactiveRanges.push([group.inactiveSince, text.length]);
  }
  if (groups.length > 0) problems.push({ message: `${file}: unterminated #if`, offset: text.length });
  return { inactiveRanges, problems };
}

function handleActiveDirective(
  directive: string,
  tokens: Token[],
  argsStart: number,
  end: number,
  directiveOffset: number,
  text: string,
  file: string,
  state: PreprocessorState,
  expander: MacroExpander,
  handler: PreprocessHandler,
  problems: Problem[],
): void {
  switch (directive) {
    case '':
      return; // The null directive.
    case 'define': {
      const macro = parseDefinition(tokens, argsStart, end, problems);
      if (macro) state.macros.set(macro.name, macro);
      return;
    }
    case 'undef': {
      const name = tokens[argsStart];
      if (name && argsStart < end) state.macros.delete(name.text);
      return;
    }
    case 'include':
    case 'include_next':
    case 'import': {
      const request = includeRequest(tokens, argsStart, end, text, file, directiveOffset, expander, directive === 'include_next');
      if (!request) {
        problems.push({ message: `malformed #${directive}`, offset: directiveOffset });
        return;
      }
      if (includeDepth >= MAX_INCLUDE_DEPTH) {
        problems.push({ message: `#include nested more than ${MAX_INCLUDE_DEPTH} deep (recursive include?)`, offset: directiveOffset });
        return;
      }
      includeDepth++;
      try {
        handler.include(request);
      } finally {
        includeDepth--;
      }
      return;
    }
    case 'pragma': {
      if (tokens[argsStart]?.text === 'once' && argsStart < end) state.onceFiles.add(file);
      return;
    }
    case 'error':
      problems.push({ message: `#error ${spell(tokens.slice(argsStart, end))}`, offset: directiveOffset });
      return;
    case 'warning':
    case 'line':
    case 'ident':
    case 'sccs':
    case 'assert':
    case 'unassert':
      return;
    default:
      // `# 12 "file"` line markers from preprocessed input are harmless; anything else is not C.
      if (/^\d/.test(directive)) return;
      problems.push({ message: `unknown directive #${directive}`, offset: directiveOffset });
  }
}

function includeRequest(
  tokens: Token[],
  start: number,
  end: number,
  text: string,
  file: string,
  offset: number,
  expander: MacroExpander,
  next: boolean,
): IncludeRequest | undefined {
  let first = tokens[start];
  if (!first || start >= end) return undefined;
  if (first.kind === TokenKind.String) {
    return { spelled: first.text.slice(1, -1), angled: false, next, fromFile: file, offset };
  }
  if (first.text === '<') {
    for (let i = start + 1; i < end; i++) {
      if (tokens[i].text === '>') {
        return { spelled: text.slice(first.offset + 1, tokens[i].offset), angled: true, next, fromFile: file, offset };
      }
    }
    return undefined;
  }
  // A computed include: expand, then read it as one of the two forms above.
  const expanded = expander.expand(tokens.slice(start, end));
  first = expanded[0];
  if (!first) return undefined;
  if (first.kind === TokenKind.String) return { spelled: first.text.slice(1, -1), angled: false, next, fromFile: file, offset };
  if (first.text === '<') {
    const close = expanded.findIndex((token) => token.text === '>');
    if (close === -1) return undefined;
    return {
      spelled: expanded
        .slice(1, close)
        .map((token) => token.text)
        .join(''),
      angled: true,
      next,
      fromFile: file,
      offset,
    };
  }
  return undefined;
}

/** Attributes clang 19 knows, for __has_attribute; anything else answers 0. */
const KNOWN_ATTRIBUTES = new Set([
  'aligned',
  'packed',
  'always_inline',
  'noinline',
  'section',
  'unused',
  'used',
  'weak',
  'alias',
  'preserve_access_index',
  'preserve_static_offset',
  'btf_type_tag',
  'btf_decl_tag',
  'noreturn',
  'const',
  'pure',
  'cold',
  'hot',
  'format',
  'nonnull',
  'deprecated',
  'visibility',
  'warn_unused_result',
  'fallthrough',
  'may_alias',
  'mode',
  'cleanup',
  'counted_by',
  'address_space',
  'bpf_fastcall',
  'overloadable',
  'transparent_union',
  'designated_init',
  'flatten',
  'naked',
  'no_sanitize',
  'uninitialized',
  'nothrow',
  'malloc',
  'alloc_size',
  'alloc_align',
  'assume_aligned',
  'returns_nonnull',
  'leaf',
  'sentinel',
  'artificial',
  'returns_twice',
  'constructor',
  'destructor',
  'weakref',
  'ifunc',
  'nodebug',
  'minsize',
  'optnone',
  'retain',
  'target',
  'vector_size',
  'ext_vector_type',
  'error',
  'warning',
  'diagnose_if',
  'enable_if',
  'no_stack_protector',
  'convergent',
  'noduplicate',
  'warn_unused',
  'gnu_inline',
]);

const HAS_OPERATORS = new Set([
  '__has_include',
  '__has_include_next',
  '__has_attribute',
  '__has_c_attribute',
  '__has_cpp_attribute',
  '__has_builtin',
  '__has_feature',
  '__has_extension',
  '__has_declspec_attribute',
  '__is_identifier',
  '__has_warning',
  '__building_module',
]);

/** The names expandBuiltin answers, which expand without being in the macro table. */
const BUILTIN_MACROS = new Set(['_Pragma', '__FILE__', '__LINE__', '__COUNTER__']);

/** Expands macros in token lists; one per file, because __FILE__ and problems belong to the file. */
export class MacroExpander {
  constructor(
    private readonly state: PreprocessorState,
    private readonly file: string,
    private readonly problems: Problem[],
  ) {}

  isDefined(name: string): boolean {
    return this.state.macros.has(name) || name === '__FILE__' || name === '__LINE__' || name === '__COUNTER__' || HAS_OPERATORS.has(name);
  }

  /**
   * Expands every macro in `input`, rescanning results as C requires. The result may be `input`
   * itself, when nothing in it expands (most of a header such as vmlinux.h: one batch of half a
   * million tokens, which is then neither copied nor read through the rescanning reader).
   */
  expand(input: Token[]): Token[] {
    const macros = this.state.macros;
    const budget = this.state.budget;
    if (budget?.exhausted) return [];
    let first = 0;
    while (first < input.length) {
      const token = input[first];
      if (token.kind === TokenKind.Identifier && (macros.has(token.text) || BUILTIN_MACROS.has(token.text))) break;
      first++;
    }
    if (first === input.length) return input;
    const output = input.slice(0, first);
    const reader = new TokenReader(input, first);
    let steps = 0;
    for (let token = reader.next(); token !== undefined; token = reader.next()) {
      if (budget && (++steps & 1023) === 0 && this.overBudget(budget, token)) return output;
      if (token.kind !== TokenKind.Identifier) {
        output.push(token);
        continue;
      }
      const macro = macros.get(token.text);
      if (macro === undefined || token.hide?.has(token.text)) {
        if (!this.expandBuiltin(token, reader, output)) output.push(token);
        continue;
      }
      if (macro.params === undefined) {
        reader.pushFront(this.substitute(macro, [], token));
        continue;
      }
      if (reader.peek()?.text !== '(') {
        output.push(token);
        continue;
      }
      reader.next();
      const collected = this.collectArguments(reader, macro);
      if (!collected) {
        this.problems.push({ message: `unterminated call of macro ${macro.name}`, offset: token.offset });
        output.push(token);
        continue;
      }
      // Prosser's rule: a function-like expansion hides what both the name and the ')' hide, plus the
      // macro itself. Taking the name's hide set alone would stop ___bpf_nth from expanding inside
      // __bpf_vprintk, which bpf_printk picks with ___bpf_nth.
      const inherited = intersectHide(token.hide, collected.close.hide);
      reader.pushFront(this.substitute(macro, collected.args, { ...token, hide: inherited }));
    }
    return output;
  }

  /** Whether the budget is spent; the first time, says so with a problem. */
  private overBudget(budget: ExpansionBudget, token: Token): boolean {
    if (budget.exhausted) return true;
    if (budget.tokensLeft > 0 && performance.now() <= budget.deadline) return false;
    budget.exhausted =
      budget.tokensLeft <= 0
        ? `macro expansion produced more than ${MAX_EXPANDED_TOKENS} tokens`
        : `macro expansion took more than ${EXPANSION_TIME_BUDGET_MS / 1000} s`;
    this.problems.push({ message: `${budget.exhausted}: the rest of ${this.file} is not expanded, so this estimate is partial`, offset: token.offset });
    return true;
  }

  /** _Pragma disappears, __LINE__ and friends become literals. Returns whether it handled the token. */
  private expandBuiltin(token: Token, reader: TokenReader, output: Token[]): boolean {
    switch (token.text) {
      case '_Pragma':
        if (reader.peek()?.text === '(') {
          reader.next();
          let depth = 1;
          for (let skipped = reader.next(); skipped && depth > 0; skipped = depth > 0 ? reader.next() : undefined) {
            if (skipped.text === '(') depth++;
            else if (skipped.text === ')') depth--;
          }
          return true;
        }
        return false;
      case '__FILE__':
        output.push({ ...token, kind: TokenKind.String, text: JSON.stringify(this.file) });
        return true;
      case '__LINE__':
        output.push({ ...token, kind: TokenKind.Number, text: '1' });
        return true;
      case '__COUNTER__':
        output.push({ ...token, kind: TokenKind.Number, text: String(this.state.counter++) });
        return true;
    }
    return false;
  }

  /** Arguments of a function-like macro call, the '(' already consumed; undefined if unterminated. */
  private collectArguments(reader: TokenReader, macro: Macro): { args: Token[][]; close: Token } | undefined {
    const params = macro.params ?? [];
    const args: Token[][] = [[]];
    let depth = 0;
    for (let token = reader.next(); token !== undefined; token = reader.next()) {
      if (token.kind === TokenKind.Punctuator) {
        if (token.text === '(') depth++;
        else if (token.text === ')') {
          if (depth === 0) return { args, close: token };
          depth--;
        } else if (token.text === ',' && depth === 0 && !(macro.variadic && args.length >= params.length)) {
          args.push([]);
          continue;
        }
      }
      args[args.length - 1].push(token);
    }
    return undefined;
  }

  private substitute(macro: Macro, args: Token[][], invocation: Token): Token[] {
    const params = macro.params;
    const body = macro.body;
    const hide = new Set(invocation.hide);
    hide.add(macro.name);
    const result: Token[] = [];
    const expandedArgs = new Map<number, Token[]>();
    const paramIndex = (token: Token | undefined): number => (params && token && token.kind === TokenKind.Identifier ? params.indexOf(token.text) : -1);
    const argument = (index: number): Token[] => args[index] ?? [];
    const expandedArgument = (index: number): Token[] => {
      let expanded = expandedArgs.get(index);
      if (!expanded) {
        expanded = this.expand(argument(index));
        expandedArgs.set(index, expanded);
      }
      return expanded;
    };
    const variadicIndex = macro.variadic && params ? params.length - 1 : -1;

    for (let k = 0; k < body.length; k++) {
      const token = body[k];
      if (params && token.text === '#' && token.kind === TokenKind.Punctuator) {
        const index = paramIndex(body[k + 1]);
        if (index !== -1) {
          result.push({ kind: TokenKind.String, text: stringify(argument(index)), offset: 0, flags: token.flags });
          k++;
          continue;
        }
      }
      if (token.text === '##' && token.kind === TokenKind.Punctuator && k + 1 < body.length) {
        const right = body[k + 1];
        const rightIndex = paramIndex(right);
        k++;
        // GNU: `, ## __VA_ARGS__` drops the comma when there are no variadic arguments.
        if (rightIndex !== -1 && rightIndex === variadicIndex && result[result.length - 1]?.text === ',') {
          const variadicArgument = argument(rightIndex);
          if (variadicArgument.length === 0) result.pop();
          else result.push(...variadicArgument);
          continue;
        }
        const rightTokens = rightIndex !== -1 ? argument(rightIndex) : [right];
        if (rightTokens.length === 0) continue;
        const left = result.pop();
        if (!left) {
          result.push(...rightTokens);
          continue;
        }
        const pasted = tokenize(left.text + rightTokens[0].text);
        if (pasted.length === 1) {
          result.push({ ...pasted[0], flags: left.flags, hide: left.hide });
        } else {
          result.push(left, rightTokens[0]);
        }
        result.push(...rightTokens.slice(1));
        continue;
      }
      const index = paramIndex(token);
      if (index !== -1) {
        if (token.text === '__VA_OPT__') continue;
        const pastedNext = body[k + 1]?.text === '##';
        const replacement = pastedNext ? argument(index) : expandedArgument(index);
        for (let r = 0; r < replacement.length; r++) {
          const copy = replacement[r];
          result.push(r === 0 ? { ...copy, flags: (copy.flags & ~TokenFlags.SpaceBefore) | (token.flags & TokenFlags.SpaceBefore) } : copy);
        }
        continue;
      }
      if (token.text === '__VA_OPT__' && macro.variadic && body[k + 1]?.text === '(') {
        // __VA_OPT__(x) keeps x only when the variadic arguments are not empty.
        let depth = 0;
        let close = k + 1;
        for (; close < body.length; close++) {
          if (body[close].text === '(') depth++;
          else if (body[close].text === ')' && --depth === 0) break;
        }
        if (argument(variadicIndex).length === 0) k = close;
        else {
          const inner = body.slice(k + 2, close);
          const innerMacro: Macro = { ...macro, body: inner };
          result.push(...this.substitute(innerMacro, args, { ...invocation, hide: invocation.hide }));
          k = close;
        }
        continue;
      }
      result.push(token);
    }
    // Every token of the expansion points at the invocation, and may not expand this macro again.
    const origin = invocation.offset;
    const fromMacro = TokenFlags.FromMacro;
    for (let r = 0; r < result.length; r++) {
      const token = result[r];
      const mergedHide = token.hide && token.hide !== hide ? unionHide(token.hide, hide) : hide;
      result[r] = {
        kind: token.kind,
        text: token.text,
        offset: origin,
        flags: (token.flags & TokenFlags.SpaceBefore) | fromMacro,
        hide: mergedHide,
      };
    }
    if (result.length > 0) {
      result[0].flags = (result[0].flags & ~TokenFlags.SpaceBefore) | (invocation.flags & TokenFlags.SpaceBefore);
    }
    if (this.state.budget) this.state.budget.tokensLeft -= result.length;
    return result;
  }

  /** The value of an #if/#elif expression. */
  evaluateCondition(tokens: Token[], start: number, end: number, offset: number, handler: PreprocessHandler): boolean {
    const prepared: Token[] = [];
    for (let i = start; i < end; i++) {
      const token = tokens[i];
      if (token.kind === TokenKind.Identifier && token.text === 'defined') {
        let nameIndex = i + 1;
        const parenthesised = tokens[nameIndex]?.text === '(' && nameIndex < end;
        if (parenthesised) nameIndex++;
        const name = nameIndex < end ? tokens[nameIndex] : undefined;
        const value = name !== undefined && this.isDefined(name.text);
        i = parenthesised ? nameIndex + 1 : nameIndex;
        prepared.push(numberToken(value ? 1 : 0, token));
        continue;
      }
      if (token.kind === TokenKind.Identifier && HAS_OPERATORS.has(token.text) && tokens[i + 1]?.text === '(') {
        let close = i + 1;
        while (close < end && tokens[close].text !== ')') close++;
        const inner = tokens.slice(i + 2, close);
        prepared.push(numberToken(this.hasOperator(token.text, inner, handler, token.offset) ? 1 : 0, token));
        i = close;
        continue;
      }
      prepared.push(token);
    }
    // A macro may expand to a __has_* operator (glibc's __glibc_has_attribute(x) is
    // __has_attribute(x)); clang answers those after expansion as well.
    const expanded = this.answerHasOperators(this.expand(prepared), handler);
    const result = evaluateConstant(expanded, 0, expanded.length, {
      // Identifiers left after expansion are 0 in #if (C11 6.10.1p4).
      identifier: (name) => (name === 'true' ? 1n : 0n),
    });
    if ('error' in result) {
      this.problems.push({ message: `#if: ${result.error}`, offset });
      return false;
    }
    return result.value !== 0n;
  }

  /** `tokens` with each `__has_x(...)` replaced by its answer, 1 or 0. */
  private answerHasOperators(tokens: Token[], handler: PreprocessHandler): Token[] {
    if (!tokens.some((token) => token.kind === TokenKind.Identifier && HAS_OPERATORS.has(token.text))) return tokens;
    const answered: Token[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i];
      if (token.kind === TokenKind.Identifier && HAS_OPERATORS.has(token.text) && tokens[i + 1]?.text === '(') {
        let close = i + 1;
        while (close < tokens.length && tokens[close].text !== ')') close++;
        answered.push(numberToken(this.hasOperator(token.text, tokens.slice(i + 2, close), handler, token.offset) ? 1 : 0, token));
        i = close;
        continue;
      }
      answered.push(token);
    }
    return answered;
  }

  private hasOperator(operator: string, inner: Token[], handler: PreprocessHandler, offset: number): boolean {
    const name = inner.map((token) => token.text).join('');
    switch (operator) {
      case '__has_include':
      case '__has_include_next': {
        const first = inner[0];
        if (!first) return false;
        const angled = first.text === '<';
        const spelled = angled
          ? inner
              .slice(1, -1)
              .map((token) => token.text)
              .join('')
          : first.text.slice(1, -1);
        return handler.hasInclude({ spelled, angled, next: operator === '__has_include_next', fromFile: this.file, offset });
      }
      case '__has_attribute':
      case '__has_c_attribute':
        return KNOWN_ATTRIBUTES.has(name.replace(/^__(.*)__$/, '$1').replace(/^(gnu|clang)::/, ''));
      case '__has_builtin':
        return name.startsWith('__builtin_') || name.startsWith('__sync_') || name.startsWith('__atomic_');
      case '__is_identifier':
        return true;
      default:
        return false;
    }
  }
}

function numberToken(value: number, at: Token): Token {
  return { kind: TokenKind.Number, text: String(value), offset: at.offset, flags: at.flags };
}

function intersectHide(a: ReadonlySet<string> | undefined, b: ReadonlySet<string> | undefined): ReadonlySet<string> | undefined {
  if (!a || !b || a.size === 0 || b.size === 0) return undefined;
  if (a === b) return a;
  const common = new Set<string>();
  for (const name of a) if (b.has(name)) common.add(name);
  return common.size > 0 ? common : undefined;
}

function unionHide(a: ReadonlySet<string>, b: ReadonlySet<string>): ReadonlySet<string> {
  if (a.size === 0) return b;
  const merged = new Set(b);
  for (const name of a) merged.add(name);
  return merged;
}

function stringify(tokens: Token[]): string {
  let text = '';
  for (let i = 0; i < tokens.length; i++) {
    if (i > 0 && tokens[i].flags & TokenFlags.SpaceBefore) text += ' ';
    const token = tokens[i];
    text += token.kind === TokenKind.String || token.kind === TokenKind.Char ? token.text.replace(/[\\"]/g, '\\$&') : token.text;
  }
  return `"${text}"`;
}

/** Tokens to read, with expansions pushed in front of what is left, as the rescanning rule needs. */
class TokenReader {
  private readonly frames: { tokens: Token[]; position: number }[];

  constructor(tokens: Token[], position = 0) {
    this.frames = [{ tokens, position }];
  }

  next(): Token | undefined {
    for (let top = this.frames[this.frames.length - 1]; top; top = this.frames[this.frames.length - 1]) {
      if (top.position < top.tokens.length) return top.tokens[top.position++];
      if (this.frames.length === 1) return undefined;
      this.frames.pop();
    }
    return undefined;
  }

  peek(): Token | undefined {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const frame = this.frames[i];
      if (frame.position < frame.tokens.length) return frame.tokens[frame.position];
    }
    return undefined;
  }

  pushFront(tokens: Token[]): void {
    if (tokens.length > 0) this.frames.push({ tokens, position: 0 });
  }
}

/**
 * The main file as tree-sitter should see it: directives, inactive regions and included headers
 * blanked, macros expanded, and every line on the line it came from, so that rows in the tree are
 * the original rows. Unexpanded tokens keep their columns; an expansion is written where its macro
 * name was, and `originalOffset` maps any offset of the text back into the original file.
 */
/**
 * The aligned text as it is written: code units in a buffer kept between calls (re-rendering a file
 * after each edit then makes one string, not a rope of every token and gap). Latin-1 until a wider
 * code unit comes, so that the text is a one-byte string when it can be.
 */
class AlignedWriter {
  private static narrowScratch = new Uint8Array(1 << 16);
  private narrow: Uint8Array | undefined;
  private wide: Uint16Array | undefined;
  private length = 0;

  constructor(expected: number) {
    if (AlignedWriter.narrowScratch.length < expected) AlignedWriter.narrowScratch = new Uint8Array(expected);
    this.narrow = AlignedWriter.narrowScratch;
  }

  private get capacity(): number {
    return this.narrow ? this.narrow.length : this.wide!.length;
  }

  private reserve(count: number): void {
    if (this.length + count <= this.capacity) return;
    const size = Math.max(this.capacity * 2, this.length + count);
    if (this.narrow) {
      const grown = new Uint8Array(size);
      grown.set(this.narrow.subarray(0, this.length));
      this.narrow = grown;
      AlignedWriter.narrowScratch = grown;
    } else {
      const grown = new Uint16Array(size);
      grown.set(this.wide!.subarray(0, this.length));
      this.wide = grown;
    }
  }

  private widen(): void {
    const wide = new Uint16Array(Math.max(16, this.narrow!.length));
    wide.set(this.narrow!.subarray(0, this.length));
    this.wide = wide;
    this.narrow = undefined;
  }

  repeat(code: number, count: number): void {
    this.reserve(count);
    (this.narrow ?? this.wide!).fill(code, this.length, this.length + count);
    this.length += count;
  }

  text(text: string): void {
    const count = text.length;
    this.reserve(count);
    let at = this.length;
    const narrow = this.narrow;
    if (narrow) {
      for (let i = 0; i < count; i++) {
        const code = text.charCodeAt(i);
        if (code > 0xff) {
          this.length = at;
          this.widen();
          this.text(text.slice(i));
          return;
        }
        narrow[at++] = code;
      }
    } else {
      const wide = this.wide!;
      for (let i = 0; i < count; i++) wide[at++] = text.charCodeAt(i);
    }
    this.length = at;
  }

  /** original[start, end) with everything but tabs turned into spaces. */
  blanked(original: string, start: number, end: number): void {
    this.reserve(end - start);
    const buffer = this.narrow ?? this.wide!;
    let at = this.length;
    for (let i = start; i < end; i++) buffer[at++] = original.charCodeAt(i) === 9 ? 9 : 32;
    this.length = at;
  }

  toString(): string {
    if (this.narrow) return Buffer.from(this.narrow.buffer, this.narrow.byteOffset, this.length).toString('latin1');
    return Buffer.from(this.wide!.buffer, this.wide!.byteOffset, this.length * 2).toString('utf16le');
  }
}

/** renderAligned's anchors while they are collected: one set of grow-only arrays for every call. */
class AnchorScratch {
  private static out = new Int32Array(1024);
  private static original = new Int32Array(1024);
  private static exact = new Uint8Array(1024);
  private static scratch = new AnchorScratch();
  length = 0;

  static start(): AnchorScratch {
    AnchorScratch.scratch.length = 0;
    return AnchorScratch.scratch;
  }

  push(out: number, original: number, exact: boolean): void {
    if (this.length === AnchorScratch.out.length) {
      const grow = <T extends Int32Array | Uint8Array>(array: T, make: (size: number) => T): T => {
        const grown = make(array.length * 2);
        grown.set(array);
        return grown;
      };
      AnchorScratch.out = grow(AnchorScratch.out, (size) => new Int32Array(size));
      AnchorScratch.original = grow(AnchorScratch.original, (size) => new Int32Array(size));
      AnchorScratch.exact = grow(AnchorScratch.exact, (size) => new Uint8Array(size));
    }
    AnchorScratch.out[this.length] = out;
    AnchorScratch.original[this.length] = original;
    AnchorScratch.exact[this.length] = exact ? 1 : 0;
    this.length++;
  }

  lastOriginal(): number {
    return AnchorScratch.original[this.length - 1];
  }

  /** The anchors at their final size, owned by the caller. */
  finish(): { anchorOut: Int32Array; anchorOriginal: Int32Array; anchorExact: Uint8Array } {
    return {
      anchorOut: AnchorScratch.out.slice(0, this.length),
      anchorOriginal: AnchorScratch.original.slice(0, this.length),
      anchorExact: AnchorScratch.exact.slice(0, this.length),
    };
  }
}

export interface AlignedText {
  text: string;
  /** Offset in the original file of an offset in `text`. */
  originalOffset(offset: number): number;
}

export function renderAligned(original: string, tokens: readonly Token[]): AlignedText {
  const starts = lineStarts(original);
  const lineCount = starts.length;
  const out = new AlignedWriter(original.length + (original.length >> 2) + 64);
  let outLength = 0;
  let line = 1;
  /** The line the last token was on, and where it and the next line start. */
  let lookupLine = 1;
  let lineStart = 0;
  let nextLineStart = lineCount > 1 ? starts[1] : original.length + 1;
  let column = 0;
  let previousFromMacro = false;
  // Anchors: where an output token starts and where its origin is, for tokens not at their column.
  // Built in scratch arrays reused from call to call, then copied out at their final size: a
  // re-render on every edit should not leave growing arrays behind.
  const anchors = AnchorScratch.start();
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t];
    const offset = token.offset;
    if (offset >= nextLineStart || offset < lineStart) {
      // Tokens come in order of their offsets: the next line is usually the next line start or two away.
      let tokenLine = lookupLine;
      if (offset >= lineStart) {
        while (tokenLine < lineCount && starts[tokenLine] <= offset) tokenLine++;
      } else tokenLine = lineOfOffset(starts, offset);
      lookupLine = tokenLine;
      lineStart = starts[tokenLine - 1];
      nextLineStart = tokenLine < lineCount ? starts[tokenLine] : original.length + 1;
    }
    if (lookupLine > line) {
      out.repeat(10, lookupLine - line);
      outLength += lookupLine - line;
      line = lookupLine;
      column = 0;
    }
    const originalColumn = offset - lineStart;
    const fromMacro = (token.flags & TokenFlags.FromMacro) !== 0;
    if (column < originalColumn && !(fromMacro && previousFromMacro)) {
      // Keep the original's tabs, so that columns count the same as in the editor; comments become spaces.
      out.blanked(original, lineStart + column, lineStart + originalColumn);
      outLength += originalColumn - column;
      column = originalColumn;
    } else if (column > 0 && (fromMacro || previousFromMacro || token.flags & TokenFlags.SpaceBefore)) {
      out.repeat(32, 1);
      outLength++;
      column++;
    }
    if (fromMacro || column !== originalColumn) {
      anchors.push(outLength, offset, !fromMacro);
    } else if (anchors.length > 0 && anchors.lastOriginal() !== offset) {
      // Back in step with the original: an anchor here ends the previous one's reach.
      anchors.push(outLength, offset, true);
    }
    const text = token.text;
    out.text(text);
    outLength += text.length;
    column += text.length;
    previousFromMacro = fromMacro;
  }
  const lastLine = starts.length;
  if (lastLine > line) out.repeat(10, lastLine - line);
  const text = out.toString();
  const outStarts = lineStarts(text);
  const { anchorOut, anchorOriginal, anchorExact } = anchors.finish();
  return {
    text,
    originalOffset(offset: number): number {
      // Find the last anchor at or before offset on the same line; otherwise columns are unchanged.
      const found = partitionPoint(0, anchorOut.length, (index) => anchorOut[index] <= offset) - 1;
      const row = lineOfOffset(outStarts, offset);
      const rowStart = outStarts[row - 1];
      if (found !== -1 && anchorOut[found] >= rowStart) {
        return anchorExact[found] === 1 ? anchorOriginal[found] + (offset - anchorOut[found]) : anchorOriginal[found];
      }
      const originalRowStart = starts[Math.min(row, starts.length) - 1] ?? original.length;
      return Math.min(originalRowStart + (offset - rowStart), original.length);
    },
  };
}
