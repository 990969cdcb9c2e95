/**
 * The source side's frame estimate: for every function the main file defines (and the headers it
 * includes: their static inline helpers, pyperf.h's programs, usdt.bpf.h's global functions), the
 * stack bytes its locals take, read from the preprocessed text as tree-sitter parses it and measured
 * with the file's own types.
 *
 * The model:
 *   - aggregates (structs, unions, arrays) always live on the stack; scalars and pointers live in
 *     registers unless their address is taken (`&x`), they are volatile, or they are an asm operand
 *     that may be memory ("g", "m": __sink()). A parameter whose address is taken is copied to the
 *     stack for the whole body. A compound literal whose address is taken (`&(int){0}`), or an array
 *     one, is an object of its block. A zero-length array still takes a byte (a slot);
 *   - every such local is a stack object of its type's size and alignment, live from its declaration
 *     (an uninitialised struct or array: from its first use, as StackColoring starts lifetimes)
 *     to the end of its block (clang's lifetime markers are scope-based; a variable whose address
 *     escapes into a call therefore lives to the end of its block, which is the conservative choice);
 *   - objects whose lifetimes do not overlap share space the way LLVM's StackColoring merges them:
 *     slots sorted by size, largest first, each later slot folded into the first one it never
 *     overlaps. Sibling blocks and two inlined copies of a callee called one after the other share;
 *     the remaining slots are laid out in order with natural alignment and the total is rounded up to
 *     whole 8-byte slots, as the verifier counts them;
 *   - code behind a constant condition is not counted: `if (0)` after macro expansion, an enumerator
 *     or a `const` global with an initialiser is removed by clang; a `const volatile` global is kept
 *     by clang but frozen in .rodata by libbpf, so the verifier knows its value and never walks the
 *     other branch. The estimate takes the initialiser as that value: a loader that writes the
 *     skeleton's rodata before load changes it, and the estimate cannot know. Calls in code that only
 *     the verifier proves dead are still in the object: check_max_stack_depth walks them, so they stay
 *     in the call graph, marked `dead`;
 *   - code after a return/break/continue/goto in the same block (and no label) is dead too;
 *   - `static` locals live in .rodata/.data and cost nothing;
 *   - after macro expansion bpf_printk's on-stack format is `char ____fmt[] = "..."` (BPF_NO_GLOBAL_DATA
 *     or a hand-written macro) and its argument array is `unsigned long long ___param[N]`: they are
 *     reported as 'printk-format' and 'printk-args';
 *   - a function that is always_inline, or static or global (not __weak) and only ever called
 *     directly, is inlined — unless it is static, called from several places and large, which
 *     clang's inliner keeps out of line (OUT_OF_LINE_NODES): each call adds its stack objects to
 *     the caller's (with their lifetimes, so they are colored with the caller's), and its calls and
 *     tail calls become the caller's. noinline, weak
 *     and callback functions are frames of their own. A SEC() on the prototype (libbpf's BPF_PROG
 *     family) makes the definition a program;
 *   - SROA: a struct, array or scalar whose address only goes to inlined callees that dereference
 *     it at constant offsets (and whose members and elements are only read and written at constant
 *     offsets) is split into registers and takes no stack; one whose address reaches a helper, an
 *     out-of-line function or anything else stays;
 *   - a `__naked` function's frame is its asm's: the deepest `r10 - N` it addresses, and the
 *     functions it calls through `call %[f]` with `__imm(f)`;
 *   - sizeof, _Alignof and _Static_assert operands are never evaluated: `&x` there takes no address;
 *     `typeof(x)` of a volatile x declares a volatile (on the stack) too;
 *   - what the verifier adds to the printed depth after the check is reported apart, as hidden bytes:
 *     an inlined bpf_loop (flags a known 0, a function as callback) adds 24 bytes, may_goto
 *     (can_loop/cond_break) 16 bytes on x86-64 with the timed may_goto.
 *
 * Not modelled: clang keeping a memcpy'd struct, an array indexed in a loop it unrolls, or the used
 * elements of a small volatile array in registers, spills of values kept across calls.
 *
 * Incremental use: the walk of each function is cached by its text and the types and constants it
 * could see, so re-estimating a file after a one-line edit re-walks one function. The caller owns the
 * cache (a FrameEstimateCache, or null): estimateSource.ts keeps the process-wide one.
 *
 * The folder frameEstimate/, in the order a file goes through it:
 *   estimateFrames.ts  the driver: walk or reuse each function, then inline
 *   walkCache.ts       the walks in memory and on disk, and the code key they are stored under
 *   constants.ts       the file scope: prototypes' sections, constants, constant conditions
 *   walker.ts          one function body, in evaluation order (FunctionWalker)
 *   stackObjects.ts    the objects a declaration, compound literal or parameter puts on the stack
 *   sroa.ts            which of them clang splits into registers
 *   inlining.ts        the inliner, and each function's frame with its callees folded in
 *   stackColoring.ts   LLVM's slot sharing and frame layout
 *   model.ts           the types: what the estimate returns, and what a walk leaves
 *   syntax.ts          questions about tree-sitter's C syntax they all ask
 */
export { type FrameEstimateOptions, type FrameEstimates, FRAME_TIME_BUDGET_MS, estimateFrames, estimateFramesFromCache } from './frameEstimate/estimateFrames';
export { type FrameItem, type FrameItemKind, type FunctionEstimate, type FunctionFrame, type SourceCall, frameOf } from './frameEstimate/model';
export { FrameEstimateCache } from './frameEstimate/walkCache';
export { spillAllowance } from './frameEstimate/inlining';
export { nakedAsmStackDepth } from './frameEstimate/walker';
