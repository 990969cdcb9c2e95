/**
 * Differences between check and real verifiers that the running kernel and the lab kernels (from
 * 6.12) share, by `source path in its package:program`, with why: one list, which
 * test/realworld.object.test.ts and test/lab/corpus.test.ts both hold the analyzer to.
 */

const SELFTESTS = 'tools/testing/selftests/bpf/progs/';

export interface KnownGroup {
  reason: string;
  programs: string[];
}

/** 6.12's bpf_fastcall: spills around a fastcall helper call are removed, and their stack with them. */
export const FASTCALL: KnownGroup = {
  reason: 'bpf_fastcall (from 6.12): the verifier drops the spills and fills around a fastcall helper call, and the stack they used',
  programs: [
    'simple',
    'canary_arm64_riscv64',
    'partial_pattern',
    'min_stack_offset',
    'invalidate_one_subprog',
    'subprogs_use_independent_offsets',
    'may_goto_interaction',
    'bpf_loop_interaction1',
    'cumulative_stack_depth',
    'kfunc_bpf_rdonly_cast',
  ].map((name) => `${SELFTESTS}verifier_bpf_fastcall.c:${name}`),
};

/** Stack writes at a variable offset (from 6.12 for all four; before it, stack_write_followed_by_read alone). */
export const VAR_OFF: KnownGroup = {
  reason: 'a stack write at a variable offset: the verifier counts the range it may reach, check counts less',
  programs: ['variable_offset_stack_read_uninitialized', 'stack_write_priv_vs_unpriv', 'stack_write_followed_by_read', 'access_min_off_min_initialized'].map(
    (name) => `${SELFTESTS}verifier_var_off.c:${name}`,
  ),
};

/** Accesses below the 512-byte frame: the kernel refuses the access itself, check the frame. */
export const BELOW_FRAME: KnownGroup = {
  reason: 'an access below the 512-byte frame: the verifier refuses the access itself ("invalid write to stack"), check says the frame is too large',
  programs: [
    ...['load_out_of_bounds_low', 'to_stack_check_low_3', 'to_stack_check_low_4', 'to_stack_check_low_5', 'to_stack_check_low_6', 'to_stack_check_low_7'].map(
      (name) => `${SELFTESTS}verifier_stack_ptr.c:${name}`,
    ),
    `${SELFTESTS}verifier_raw_stack.c:load_bytes_invalid_access_1`,
  ],
};
