/**
 * The BPF program type libbpf derives from a SEC() name (libbpf.c, section_defs). Only a few types
 * change how the stack is judged (private stacks), but the type is also shown to the user.
 */

/**
 * What libbpf loads a program as, from its SEC() name: the program type, the expected attach type
 * (bpf_attach_type, by its libbpf name without the BPF_ prefix, lower case) and whether it is
 * sleepable (BPF_F_SLEEPABLE, the ".s" sections). The verifier's private-stack choice depends on all
 * three, so the rules read this, not just the type.
 */
export interface ProgramAttach {
  type: string;
  expectedAttachType: string;
  sleepable: boolean;
}

/**
 * Section-name prefixes, longest first where one is a prefix of another, as libbpf's section_defs
 * table maps them: [prefix, program type, expected attach type].
 */
const SECTION_PREFIXES: ReadonlyArray<readonly [string, string, string]> = [
  ['socket', 'socket_filter', 'none'],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  ['kprobe.multi', 'kprobe', 'trace_kprobe_multi'],
  ['kretprobe.multi', 'kprobe', 'trace_kprobe_multi'],
  ['uprobe.multi.s', 'kprobe', 'trace_uprobe_multi'],
  ['uprobe.multi', 'kprobe', 'trace_uprobe_multi'],
  ['uretprobe.multi.s', 'kprobe', 'trace_uprobe_multi'],
  ['uretprobe.multi', 'kprobe', 'trace_uprobe_multi'],
  ['kprobe.session', 'kprobe', 'trace_kprobe_session'],
  ['uprobe.session.s', 'kprobe', 'trace_uprobe_session'],
  ['uprobe.session', 'kprobe', 'trace_uprobe_session'],
  ['kprobe', 'kprobe', 'none'],
  ['kretprobe', 'kprobe', 'none'],
  ['uprobe.s', 'kprobe', 'none'],
  ['uprobe', 'kprobe', 'none'],
  ['uretprobe.s', 'kprobe', 'none'],
  ['uretprobe', 'kprobe', 'none'],
  ['ksyscall', 'kprobe', 'none'],
  ['kretsyscall', 'kprobe', 'none'],
  ['usdt.s', 'kprobe', 'none'],
  ['usdt', 'kprobe', 'none'],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress'],
  ['tcx/egress', 'sched_cls', 'tcx_egress'],
  ['tcx', 'sched_cls', 'none'],
  ['netkit/primary', 'sched_cls', 'netkit_primary'],
  ['netkit/peer', 'sched_cls', 'netkit_peer'],
  ['netkit', 'sched_cls', 'none'],
  ['tc', 'sched_cls', 'none'],
  ['classifier', 'sched_cls', 'none'],
  ['action', 'sched_act', 'none'],
  ['tracepoint', 'tracepoint', 'none'],
  ['tp_btf', 'tracing', 'trace_raw_tp'],
  ['tp', 'tracepoint', 'none'],
  ['raw_tracepoint.w', 'raw_tracepoint_writable', 'none'],
  ['raw_tp.w', 'raw_tracepoint_writable', 'none'],
  ['raw_tracepoint', 'raw_tracepoint', 'none'],
  ['raw_tp', 'raw_tracepoint', 'none'],
  ['fentry.s', 'tracing', 'trace_fentry'],
  ['fentry', 'tracing', 'trace_fentry'],
  ['fmod_ret.s', 'tracing', 'modify_return'],
  ['fmod_ret', 'tracing', 'modify_return'],
  ['fexit.s', 'tracing', 'trace_fexit'],
  ['fexit', 'tracing', 'trace_fexit'],
  ['freplace', 'ext', 'none'],
  ['iter.s', 'tracing', 'trace_iter'],
  ['iter', 'tracing', 'trace_iter'],
  ['lsm_cgroup', 'lsm', 'lsm_cgroup'],
  ['lsm.s', 'lsm', 'lsm_mac'],
  ['lsm', 'lsm', 'lsm_mac'],
  ['xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event', 'none'],
  ['lwt_in', 'lwt_in', 'none'],
  ['lwt_out', 'lwt_out', 'none'],
  ['lwt_xmit', 'lwt_xmit', 'none'],
  ['lwt_seg6local', 'lwt_seg6local', 'none'],
  ['sockops', 'sock_ops', 'cgroup_sock_ops'],
  ['sk_skb', 'sk_skb', 'none'],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector'],
  ['cgroup_skb', 'cgroup_skb', 'none'],
  ['cgroup/skb', 'cgroup_skb', 'none'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt'],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release'],
  ['cgroup/post_bind', 'cgroup_sock', 'none'],
  ['cgroup', 'cgroup_sock_addr', 'none'],
  ['struct_ops.s', 'struct_ops', 'none'],
  ['struct_ops', 'struct_ops', 'none'],
  ['sk_lookup', 'sk_lookup', 'sk_lookup'],
  ['syscall', 'syscall', 'none'],
  ['netfilter', 'netfilter', 'netfilter'],
];

/** Sleepable sections: libbpf's SEC_SLEEPABLE entries, all spelled with a ".s" before the target. */
function isSleepableSection(prefix: string): boolean {
  return prefix.endsWith('.s') || prefix === 'syscall';
}

/** How libbpf loads a program of this section; type "unspec" when libbpf would not know it either. */
export function programAttachForSection(section: string): ProgramAttach {
  const name = section.startsWith('?') ? section.slice(1) : section;
  for (const [prefix, type, expectedAttachType] of SECTION_PREFIXES) {
    if (name === prefix || name.startsWith(`${prefix}/`) || name.startsWith(`${prefix}.`) || name.startsWith(`${prefix}+`)) {
      return { type, expectedAttachType, sleepable: isSleepableSection(prefix) };
    }
  }
  return { type: 'unspec', expectedAttachType: 'none', sleepable: false };
}

/** The program type for a section name, "unspec" when libbpf would not know it either. */
export function programTypeForSection(section: string): string {
  return programAttachForSection(section).type;
}
