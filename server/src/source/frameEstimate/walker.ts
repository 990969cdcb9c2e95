/**
 * The walk of one function body (FunctionWalker): in evaluation order, every declaration, call and
 * block end gets a program point; stack objects get lifetimes between them, calls and tail calls are
 * recorded with how dead the code around them is. The result (RawFunction) depends only on the
 * function's text and the file scope, so the walk cache can keep it.
 */
import { roundToSlots } from '../../common/numbers';
import { MAX_BPF_STACK } from '../../rules/stackRules';
import type { DeclarationScope } from '../declarations';
import { expressionType } from '../expressionType';
import type { Node } from '../parser';
import type { CType } from '../types';
import { EXCEPTION_CALLBACK_TAG, type FileContext, definitionHeader, evaluate, linkageOf, sectionIn } from './constants';
import { COMPILE_DEAD, type Deadness, type FrameItem, LIVE, LOAD_DEAD, type RawCall, type RawFunction, type Slot } from './model';
import { splitConditions } from './sroa';
import { type LocalContext, type StackObject, compoundLiteralItems, localItems, parameterItems } from './stackObjects';
import { STATIC_ASSERTS, functionName, functionParameters, innermostName, isUnevaluated, rootIdentifier } from './syntax';

const TAIL_CALL_HELPERS = new Set(['bpf_tail_call', 'bpf_tail_call_static']);
const ASYNC_CALLBACK_HELPERS = new Set(['bpf_timer_set_callback', 'bpf_wq_set_callback', 'bpf_wq_set_callback_impl']);

/**
 * clang's CO-RE builtins and the kinds (their last argument) whose value libbpf sets from the
 * kernel's BTF to say whether something exists: the object side's existence relocations
 * (field_exists, type_exists, type_matches, enumval_exists, enumval_value). bpf_core_read.h's
 * enums: BPF_FIELD_EXISTS is 2; BPF_TYPE_EXISTS 0 and BPF_TYPE_MATCHES 2; both enum kinds.
 */
const CORE_EXISTENCE_KINDS: ReadonlyMap<string, ReadonlySet<bigint>> = new Map([
  ['__builtin_preserve_field_info', new Set([2n])],
  ['__builtin_preserve_type_info', new Set([0n, 2n])],
  ['__builtin_preserve_enum_value', new Set([0n, 1n])],
]);

/** Syntax-tree levels expression() follows: several times what clang's 256 nested brackets give. */
const MAX_EXPRESSION_DEPTH = 2048;

/**
 * The time one file's walks may take. Past the deadline the walk under way stops where it is (its
 * function is marked partial and never cached) and the functions after it are not walked.
 */
export interface TimeBudget {
  /** now() after which walking stops. */
  deadline: number;
  exhausted: boolean;
  /** The clock: performance.now, or a test's. */
  now: () => number;
}

const TERMINATORS = new Set(['return_statement', 'break_statement', 'continue_statement', 'goto_statement']);

/** Walks one function body in evaluation order, giving every declaration, call and block end a program point. */
class FunctionWalker {
  private point = 0;
  private readonly scopes: Slot[][] = [];
  private readonly addressTaken = new Set<string>();
  private readonly shadowed = new Set<string>();
  /** Names the body declares (a local hides the parameter of the same name from `&`). */
  private readonly declaredInBody = new Set<string>();
  /** The declared type of each parameter and local seen so far, for `typeof(expression)`. */
  private readonly localTypes = new Map<string, CType>();
  private readonly noteType = (name: string, type: CType) => this.localTypes.set(name, type);
  /** Locals declared volatile: `typeof(x)` of one is volatile too (the type model has no qualifiers). */
  private readonly volatileLocals = new Set<string>();
  /** Names clang cannot split into registers: asm memory operands, names declared twice. */
  private readonly pinned = new Set<string>();
  private body: Node | undefined;
  /** Uninitialised locals not used yet, by name: their slots start at the first use. */
  private readonly firstUse = new Map<string, Slot>();
  private usesByName: Map<string, Node[]> | undefined;
  private steps = 0;
  /**
   * What this body lends the declaration parser: the types of the names in scope, for
   * BPF_CORE_READ's `typeof((src)->a) __r` and `sizeof(x)`, and a list for the problems its local
   * declarations raise, which are not the unit's (a cached walk would not raise them again).
   */
  private readonly scope: DeclarationScope = {
    expressionType: (tokens, start, end) =>
      expressionType(tokens, start, end, {
        typeOf: (name) => this.localTypes.get(name) ?? (this.shadowed.has(name) ? undefined : this.context.globalTypes?.get(name)),
        layout: this.context.unit.declarations.layout,
        typeName: (typeTokens, typeStart, typeEnd) => this.context.unit.declarations.parseTypeName(typeTokens, typeStart, typeEnd, this.scope),
      }),
    problems: [],
  };
  private readonly locals: LocalContext;

  constructor(
    private readonly context: FileContext,
    private readonly raw: RawFunction,
    private readonly baseRow: number,
    /** `__naked`: the body is asm that addresses the stack through r10 itself. */
    private readonly naked: boolean,
    private readonly budget: TimeBudget,
  ) {
    this.locals = {
      unit: context.unit,
      baseRow,
      scope: this.scope,
      addressTaken: this.addressTaken,
      volatileLocals: this.volatileLocals,
      noteType: this.noteType,
    };
  }

  run(definition: Node, body: Node): void {
    this.walk(definition, body);
  }

  /** The uses of each name in the body, in document order, gathered once (SROA asks for every local). */
  private uses(name: string): readonly Node[] {
    if (!this.usesByName) {
      this.usesByName = new Map();
      for (const identifier of this.body?.descendantsOfType('identifier') ?? []) {
        if (!identifier) continue;
        const list = this.usesByName.get(identifier.text);
        if (list) list.push(identifier);
        else this.usesByName.set(identifier.text, [identifier]);
      }
    }
    return this.usesByName.get(name) ?? [];
  }

  /** Whether the file's time budget ran out; checked every so many steps, since reading the clock is not free. */
  private outOfTime(): boolean {
    if (this.budget.exhausted) return true;
    if ((++this.steps & 1023) !== 0) return false;
    if (this.budget.now() <= this.budget.deadline) return false;
    this.budget.exhausted = true;
    this.raw.partial = true;
    return true;
  }

  private walk(definition: Node, body: Node): void {
    for (const pointer of body.descendantsOfType('pointer_expression')) {
      if (!pointer || pointer.childForFieldName('operator')?.type !== '&' || isUnevaluated(pointer)) continue;
      const root = rootIdentifier(pointer.childForFieldName('argument'));
      if (root) this.addressTaken.add(root);
    }
    // An asm operand that may be memory ("g", "m": bpf_misc.h's __sink(x) is `asm volatile("" : "+g"(x))`)
    // is given one by clang for BPF: the variable lives on the stack, as if its address were taken.
    for (const operand of [...body.descendantsOfType('gnu_asm_output_operand'), ...body.descendantsOfType('gnu_asm_input_operand')]) {
      const constraint = operand?.childForFieldName('constraint')?.text ?? '';
      if (!/^"[^"]*[gm][^"]*"$/.test(constraint)) continue;
      const root = rootIdentifier(operand?.childForFieldName('value') ?? null);
      if (root) {
        this.addressTaken.add(root);
        this.pinned.add(root);
      }
    }
    // Parameters and locals hide file-scope constants of the same name.
    for (const identifier of definition.childForFieldName('declarator')?.descendantsOfType('identifier') ?? [])
      if (identifier) this.shadowed.add(identifier.text);
    for (const declaration of body.descendantsOfType('declaration')) {
      for (const declarator of declaration?.childrenForFieldName('declarator') ?? []) {
        const name = innermostName(declarator);
        if (name) {
          this.shadowed.add(name);
          if (this.declaredInBody.has(name)) this.pinned.add(name);
          this.declaredInBody.add(name);
        }
      }
    }
    this.body = body;
    // A parameter whose address is taken is copied to the stack on entry and lives to the return.
    this.scopes.push([]);
    const start = ++this.point;
    const parameters = functionParameters(definition.childForFieldName('declarator'));
    for (const parameter of parameters) {
      const name = innermostName(parameter.childForFieldName('declarator'));
      const onStack = name !== undefined && this.addressTaken.has(name) && !this.declaredInBody.has(name);
      const items = parameterItems(this.locals, parameter);
      if (onStack) this.addSlots(items, start);
      this.raw.sroaParameters.push(
        name === undefined || this.declaredInBody.has(name)
          ? null
          : (splitConditions(this.uses(name), name, 'pointer', this.context, this.shadowed, this.scope) ?? null),
      );
    }
    this.statement(body, LIVE);
    this.closeScope();
    this.raw.points = this.point + 1;
  }

  private addSlots(items: StackObject[], start: number): void {
    for (const { item, size, align } of items) {
      const slot: Slot = { item: this.raw.ownItems.length, size, align, start, end: start };
      this.raw.ownItems.push(item);
      this.raw.slots.push(slot);
      this.scopes[this.scopes.length - 1]?.push(slot);
    }
  }

  /** Visits a node; returns how surely control does not fall through it (LIVE = it may). */
  private statement(node: Node, deadness: Deadness): Deadness {
    if (this.outOfTime()) return LIVE;
    switch (node.type) {
      case 'compound_statement':
        return this.block(node.namedChildren, deadness, true);
      case 'if_statement': {
        this.expression(node.childForFieldName('condition'), deadness);
        const known = evaluate(node.childForFieldName('condition'), this.context, this.shadowed);
        const consequence = node.childForFieldName('consequence');
        const alternative = node.childForFieldName('alternative');
        const elseBody = alternative?.namedChildren.find((child): child is Node => child !== null && child.type !== 'comment') ?? null;
        const thenDeadness = known && known.value === 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const elseDeadness = known && known.value !== 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const thenEnds = consequence ? this.scoped(consequence, thenDeadness) : LIVE;
        const elseEnds = elseBody ? this.scoped(elseBody, elseDeadness) : LIVE;
        if (known) {
          const taken = known.value !== 0n ? thenEnds : elseEnds;
          return taken === LIVE ? LIVE : (Math.min(taken, known.deadness) as Deadness);
        }
        return Math.min(thenEnds, elseEnds) as Deadness;
      }
      case 'for_statement': {
        // The initializer's declarations live in the loop's own scope.
        this.scopes.push([]);
        const body = node.childForFieldName('body');
        for (const child of node.namedChildren) if (child && child.type !== 'comment' && child.id !== body?.id) this.statement(child, deadness);
        if (body) this.scoped(body, deadness);
        this.closeScope();
        return LIVE;
      }
      case 'while_statement':
      case 'do_statement':
      case 'switch_statement': {
        this.expression(node.childForFieldName('condition'), deadness);
        const body = node.childForFieldName('body');
        if (body) this.scoped(body, deadness);
        return LIVE;
      }
      case 'declaration':
        this.declaration(node, deadness);
        return LIVE;
      case 'labeled_statement':
      case 'case_statement':
        return this.block(node.namedChildren, deadness, false);
      default: {
        this.expression(node, deadness);
        return TERMINATORS.has(node.type) ? COMPILE_DEAD : LIVE;
      }
    }
  }

  /** A statement in a scope of its own (a branch or loop body that is not a block). */
  private scoped(node: Node, deadness: Deadness): Deadness {
    if (node.type === 'compound_statement') return this.statement(node, deadness);
    this.scopes.push([]);
    const ends = this.statement(node, deadness);
    this.closeScope();
    return ends;
  }

  /** Statements in sequence: after one that never falls through, the rest is dead until a label. */
  private block(children: (Node | null)[], deadness: Deadness, newScope: boolean): Deadness {
    if (newScope) this.scopes.push([]);
    let ends: Deadness = LIVE;
    for (const child of children) {
      if (!child || child.type === 'comment') continue;
      if (child.type === 'labeled_statement' || child.type === 'case_statement') ends = LIVE;
      const childDeadness = Math.max(deadness, ends) as Deadness;
      const childEnds = this.statement(child, childDeadness);
      if (childEnds !== LIVE && ends === LIVE) ends = childEnds;
      else if (childEnds !== LIVE) ends = Math.min(ends, childEnds) as Deadness;
    }
    if (newScope) this.closeScope();
    return ends;
  }

  private closeScope(): void {
    const end = ++this.point;
    for (const slot of this.scopes.pop() ?? []) slot.end = end;
  }

  private declaration(node: Node, deadness: Deadness): void {
    // Initializers run before the variable is live.
    for (const declarator of node.childrenForFieldName('declarator')) {
      if (declarator?.type === 'init_declarator') this.expression(declarator.childForFieldName('value'), deadness);
    }
    if (deadness === COMPILE_DEAD) return;
    const slots = this.raw.slots.length;
    this.addSlots(localItems(this.locals, node), ++this.point);
    if (deadness === LOAD_DEAD) for (const slot of this.raw.slots.slice(slots)) slot.verifierSkips = true;
    const initialized = new Set(
      node
        .childrenForFieldName('declarator')
        .filter((declarator) => declarator?.type === 'init_declarator')
        .map((declarator) => innermostName(declarator)),
    );
    for (const slot of this.raw.slots.slice(slots)) {
      const name = this.raw.ownItems[slot.item].name;
      const type = this.localTypes.get(name);
      const kind = type && this.context.unit.layout.resolve(type).k;
      const mode = kind === 'array' ? 'array' : kind === 'struct' || kind === 'union' ? 'object' : 'scalar';
      // LLVM's StackColoring starts an object's lifetime at its first use: an uninitialised aggregate's later.
      if (!initialized.has(name) && mode !== 'scalar') this.firstUse.set(name, slot);
      if (!this.body || !type || this.pinned.has(name) || this.volatileLocals.has(name)) continue;
      const conditions = splitConditions(this.uses(name), name, mode, this.context, this.shadowed, this.scope);
      if (conditions) slot.sroa = conditions;
    }
  }

  /** How deep expression() has descended: clang refuses brackets nested past 256, so real code stays shallow. */
  private expressionDepth = 0;

  /** Visits an expression (or any node) in evaluation order: calls, statement expressions, asm. */
  private expression(node: Node | null, deadness: Deadness): void {
    if (!node) return;
    if (this.expressionDepth >= MAX_EXPRESSION_DEPTH || this.outOfTime()) return;
    this.expressionDepth++;
    try {
      this.visitExpression(node, deadness);
    } finally {
      this.expressionDepth--;
    }
  }

  private visitExpression(node: Node, deadness: Deadness): void {
    switch (node.type) {
      case 'compound_statement':
        this.statement(node, deadness);
        return;
      case 'conditional_expression': {
        this.expression(node.childForFieldName('condition'), deadness);
        const known = evaluate(node.childForFieldName('condition'), this.context, this.shadowed);
        const thenDeadness = known && known.value === 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        const elseDeadness = known && known.value !== 0n ? (Math.max(deadness, known.deadness) as Deadness) : deadness;
        this.expression(node.childForFieldName('consequence'), thenDeadness);
        this.expression(node.childForFieldName('alternative'), elseDeadness);
        return;
      }
      case 'gnu_asm_expression':
        // may_goto by name, or as bpf_experimental.h spells it for an assembler that lacks it: its
        // opcode byte 0xe5 (BPF_JMP | BPF_JCOND).
        if (deadness === LIVE && /\bmay_goto\b|\.byte\s+0xe5\b/.test(node.text)) this.raw.mayGoto = true;
        if (deadness === LIVE && /\bcall\s+bpf_throw\b/.test(node.text)) this.raw.throws = true;
        // Asm in an ordinary function that addresses the stack itself (`r4 = r10; r4 += -16`) reaches
        // below clang's frame as a naked function's does: the verifier counts the deepest byte.
        if (this.naked || /\br10\b/.test(node.text)) this.nakedAsm(node, deadness);
        return;
      case 'call_expression':
        this.call(node, deadness);
        return;
      case 'compound_literal_expression':
        this.expression(node.childForFieldName('value'), deadness);
        if (deadness === LIVE) this.addSlots(compoundLiteralItems(this.locals, node), ++this.point);
        return;
      case 'declaration':
      case 'if_statement':
      case 'for_statement':
      case 'while_statement':
      case 'do_statement':
      case 'switch_statement':
      case 'labeled_statement':
        this.statement(node, deadness);
        return;
      case 'identifier': {
        if (deadness === LIVE && this.context.externVariables?.has(node.text) && !this.shadowed.has(node.text)) this.raw.readsLoadTimeValues = true;
        const slot = this.firstUse.get(node.text);
        if (slot) {
          slot.start = Math.max(slot.start, this.point);
          // Handed to a call (`helper(buf)`, `f(&s)`), the object is touched by that call; used in
          // place (`buf[0] = x`), right where it is used.
          slot.firstTouch = passedToCall(node) ? 'next-event' : 'after-start';
          this.firstUse.delete(node.text);
        }
        return;
      }
      case 'string_literal':
      case 'number_literal':
      case 'field_identifier':
      case 'comment':
      case 'sizeof_expression':
      case 'alignof_expression':
        return;
      default:
        for (const child of node.namedChildren) this.expression(child, deadness);
    }
  }

  /**
   * The asm body of a `__naked` function is its whole code: clang gives it no frame, the asm's own
   * stack addresses are its stack (the deepest, in 8-byte slots; see nakedAsmStackDepth). It calls
   * f by `call %[f]` with `__imm(f)` (`[f] "i"(f)`) and by `call f`; a function whose address is an
   * operand used otherwise (`r2 = %[cb]` with `__imm_ptr(cb)`) is a callback, as a function named as
   * a C call's argument is. `call %[bpf_loop]` with `r4 = 0` (no flags) is inlined by the verifier,
   * as in C.
   */
  private nakedAsm(node: Node, deadness: Deadness): void {
    const code = node.childForFieldName('assembly_code')?.text ?? '';
    const deepest = nakedAsmStackDepth(code);
    if (deepest > 0 && deadness === LIVE) {
      const item: FrameItem = {
        what: 'local',
        name: '(asm stack)',
        type: `r10 - ${deepest}`,
        bytes: roundToSlots(deepest),
        line: node.startPosition.row + 1 - this.baseRow,
      };
      this.addSlots([{ item, size: deepest, align: 8 }], ++this.point);
    }
    const line = node.startPosition.row + 1 - this.baseRow;
    const column = node.startPosition.column + 1;
    const called = new Set([...code.matchAll(/\bcall\s+%\[(\w+)\]/g)].map((match) => match[1]));
    const push = (callee: string, kind: 'call' | 'callback', at: Node | undefined) =>
      this.raw.rawCalls.push({
        callee,
        kind,
        async: false,
        line: at ? at.startPosition.row + 1 - this.baseRow : line,
        column: at ? at.startPosition.column + 1 : column,
        point: ++this.point,
        deadness,
      });
    for (const operand of node.descendantsOfType('gnu_asm_input_operand')) {
      const symbol = operand?.childForFieldName('symbol')?.text;
      let value = operand?.childForFieldName('value') ?? null;
      if (!operand || symbol === undefined || !value) continue;
      if (called.has(symbol)) {
        if (value.type !== 'identifier') continue;
        push(value.text, 'call', operand);
        if (value.text === 'bpf_loop' && deadness === LIVE && /\br4\s*=\s*0\s*;/.test(code)) this.raw.bpfLoopInlined = true;
        continue;
      }
      if (value.type === 'pointer_expression' && value.childForFieldName('operator')?.type === '&') value = value.childForFieldName('argument');
      // Only functions the file defines become frames (the inliner drops the other names: maps, data).
      if (value?.type === 'identifier' && code.includes(`%[${symbol}]`)) push(value.text, 'callback', operand);
    }
    for (const match of code.matchAll(/\bcall\s+([A-Za-z_]\w*)/g)) push(match[1], 'call', undefined);
  }

  private call(node: Node, deadness: Deadness): void {
    const callee = node.childForFieldName('function');
    if (callee?.type === 'identifier' && STATIC_ASSERTS.has(callee.text)) return;
    const argumentList = node.childForFieldName('arguments');
    if (callee && callee.type !== 'identifier') this.expression(callee, deadness);
    const args = argumentList?.namedChildren.filter((child): child is Node => child !== null && child.type !== 'comment') ?? [];
    for (const argument of args) this.expression(argument, deadness);
    const line = node.startPosition.row + 1 - this.baseRow;
    const column = node.startPosition.column + 1;
    const calleeName = callee?.type === 'identifier' ? callee.text : undefined;
    const point = ++this.point;
    if (calleeName && TAIL_CALL_HELPERS.has(calleeName)) this.raw.tailCalls.push({ line, column, deadness });
    if (calleeName === 'bpf_throw' && deadness === LIVE) this.raw.throws = true;
    const callbacks: RawCall[] = [];
    // A function named as an argument is a callback (bpf_loop, bpf_for_each_map_elem, timers).
    for (const argument of args) {
      let target: Node | null = argument;
      if (target.type === 'pointer_expression' && target.childForFieldName('operator')?.type === '&') target = target.childForFieldName('argument');
      if (target?.type !== 'identifier') continue;
      callbacks.push({
        callee: target.text,
        kind: 'callback',
        async: calleeName !== undefined && ASYNC_CALLBACK_HELPERS.has(calleeName),
        line: target.startPosition.row + 1 - this.baseRow,
        column: target.startPosition.column + 1,
        point,
        deadness,
      });
    }
    if (calleeName) this.raw.rawCalls.push({ callee: calleeName, kind: 'call', async: false, line, column, point, deadness });
    const helper = calleeName !== undefined && !this.shadowed.has(calleeName) ? this.context.unit.environment.helperId(calleeName) : undefined;
    if (helper !== undefined) this.raw.helperCalls.push({ helper, name: calleeName!, line, column, point, deadness });
    const existenceKinds = calleeName !== undefined ? CORE_EXISTENCE_KINDS.get(calleeName) : undefined;
    if (existenceKinds && deadness === LIVE && args.length === 2) {
      const kind = evaluate(args[1], this.context, this.shadowed);
      if (kind && existenceKinds.has(kind.value)) this.raw.readsLoadTimeValues = true;
    }
    this.raw.rawCalls.push(...callbacks);
    // The verifier inlines bpf_loop when its flags are a known 0 (a literal, or frozen .rodata).
    if (calleeName === 'bpf_loop' && deadness === LIVE && args.length === 4 && args[1].type === 'identifier') {
      const flags = evaluate(args[3], this.context, this.shadowed);
      if (flags && flags.value === 0n) this.raw.bpfLoopInlined = true;
    }
  }
}

/** Whether `identifier` is an argument of a call, itself or by address. */
function passedToCall(identifier: Node): boolean {
  let argument: Node | null = identifier;
  if (argument.parent?.type === 'pointer_expression' && argument.parent.childForFieldName('operator')?.type === '&') argument = argument.parent;
  return argument.parent?.type === 'argument_list';
}

/** Whether a definition declares parameters: not `f()` nor `f(void)`. */
function hasParameters(definition: Node): boolean {
  const declarator = definition.childForFieldName('declarator');
  const list = declarator?.descendantsOfType('parameter_list')[0];
  const parameters = list?.namedChildren.filter((child) => child?.type === 'parameter_declaration') ?? [];
  return parameters.length > 0 && !(parameters.length === 1 && parameters[0]!.text.trim() === 'void');
}

export function readFunction(context: FileContext, definition: Node, baseRow: number, budget: TimeBudget): RawFunction | undefined {
  const nameNode = functionName(definition.childForFieldName('declarator'));
  const body = definition.childForFieldName('body');
  if (!nameNode || !body) return undefined;
  const header = definitionHeader(definition, context.text);
  const section = sectionIn(header) ?? context.declaredSections.get(nameNode.text) ?? null;
  const { isStatic, hidden, weak } = linkageOf(definition, header);
  const naked = /\bnaked\b/.test(header);
  const raw: RawFunction = {
    name: nameNode.text,
    line: nameNode.startPosition.row + 1 - baseRow,
    section,
    isStatic,
    hidden,
    unnamedBtfParameters: naked && hasParameters(definition),
    noinline: /\bnoinline\b|__noinline__/.test(header),
    weak,
    alwaysInline: /\balways_inline\b|__always_inline__/.test(header),
    ownItems: [],
    slots: [],
    points: 0,
    rawCalls: [],
    tailCalls: [],
    helperCalls: [],
    readsLoadTimeValues: false,
    bpfLoopInlined: false,
    mayGoto: false,
    throws: false,
    bodyNodes: body.descendantCount,
    sroaParameters: [],
  };
  const exceptionCallback = EXCEPTION_CALLBACK_TAG.exec(header)?.[1];
  if (exceptionCallback !== undefined) raw.exceptionCallback = exceptionCallback;
  new FunctionWalker(context, raw, baseRow, naked, budget).run(definition, body);
  return raw;
}

/**
 * The deepest stack byte a naked function's asm addresses: `r10 - N` itself, and a register that
 * holds r10 plus a constant (`r2 = r10; r2 += -8;`, the usual way to pass a stack buffer to a helper),
 * both as the pointer it is (a helper writes through it: the verifier counts what the helper may
 * reach from there as used) and through its accesses (`*(u64 *)(r2 + 0)`). One pass in text order,
 * ignoring branches: a register keeps the last offset given to it, which can only count deeper.
 */
export function nakedAsmStackDepth(code: string): number {
  let deepest = 0;
  // An access below the 512-byte stack is refused by the verifier as that access ("invalid write to
  // stack R1 off=-513"), during do_check: it never becomes a frame, so it must not be counted as one.
  const within = (bytes: number) => (bytes <= MAX_BPF_STACK ? bytes : 0);
  for (const match of code.matchAll(/\br10\s*(?:-|\+\s*-)\s*(\d+)/g)) deepest = Math.max(deepest, within(Number(match[1])));
  const offsets = new Map<string, number>();
  const note = (offset: number) => {
    if (offset < 0) deepest = Math.max(deepest, within(-offset));
  };
  for (const raw of code.split(/[;\n]|\\n/)) {
    // The asm is C string literals: their quotes and line-continuation backslashes are not code.
    const statement = raw.replace(/["\\]/g, ' ').trim();
    let match: RegExpMatchArray | null;
    for (const access of statement.matchAll(/\(\s*(r\d)\s*([+-])\s*(-?\d+)\s*\)/g)) {
      const base = offsets.get(access[1]);
      if (base !== undefined && access[1] !== 'r10') note(base + (access[2] === '-' ? -1 : 1) * Number(access[3]));
    }
    if ((match = statement.match(/^(r\d)\s*=\s*(r\d+)$/))) {
      const from = match[2] === 'r10' ? 0 : offsets.get(match[2]);
      if (from === undefined) offsets.delete(match[1]);
      else offsets.set(match[1], from);
    } else if ((match = statement.match(/^(r\d)\s*([+-])=\s*(-?\d+)$/))) {
      const base = offsets.get(match[1]);
      if (base !== undefined) {
        const offset = base + (match[2] === '-' ? -1 : 1) * Number(match[3]);
        offsets.set(match[1], offset);
        note(offset);
      }
    } else if ((match = statement.match(/^(r\d)\s*(?:[-+*/|&^]|<<|>>|s>>)?=/))) {
      offsets.delete(match[1]);
    } else if (/^call\b/.test(statement)) {
      // Helpers clobber r0-r5.
      for (const register of ['r0', 'r1', 'r2', 'r3', 'r4', 'r5']) offsets.delete(register);
    }
  }
  return deepest;
}
