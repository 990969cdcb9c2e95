/**
 * The BPF program type libbpf derives from a SEC() name (libbpf.c, section_defs). Only a few types
 * change how the stack is judged (private stacks), but the type is also shown to the user.
 */

/** Section-name prefixes, longest first where one is a prefix of another. */
const SECTION_PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['socket', 'socket_filter'],
  ['sk_reuseport/migrate', 'sk_reuseport'],
  ['sk_reuseport', 'sk_reuseport'],
  ['kprobe.multi', 'kprobe'],
  ['kretprobe.multi', 'kprobe'],
  ['uprobe.multi', 'kprobe'],
  ['uretprobe.multi', 'kprobe'],
  ['kprobe.session', 'kprobe'],
  ['uprobe.session', 'kprobe'],
  ['kprobe', 'kprobe'],
  ['kretprobe', 'kprobe'],
  ['uprobe', 'kprobe'],
  ['uretprobe', 'kprobe'],
  ['ksyscall', 'kprobe'],
  ['kretsyscall', 'kprobe'],
  ['usdt', 'kprobe'],
  ['tcx', 'sched_cls'],
  ['netkit', 'sched_cls'],
  ['tc', 'sched_cls'],
  ['classifier', 'sched_cls'],
  ['action', 'sched_act'],
  ['tracepoint', 'tracepoint'],
  ['tp_btf', 'tracing'],
  ['tp', 'tracepoint'],
  ['raw_tracepoint.w', 'raw_tracepoint_writable'],
  ['raw_tp.w', 'raw_tracepoint_writable'],
  ['raw_tracepoint', 'raw_tracepoint'],
  ['raw_tp', 'raw_tracepoint'],
  ['fentry', 'tracing'],
  ['fmod_ret', 'tracing'],
  ['fexit', 'tracing'],
  ['freplace', 'ext'],
  ['iter', 'tracing'],
  ['lsm_cgroup', 'lsm'],
  ['lsm', 'lsm'],
  ['xdp', 'xdp'],
  ['perf_event', 'perf_event'],
  ['lwt_in', 'lwt_in'],
  ['lwt_out', 'lwt_out'],
  ['lwt_xmit', 'lwt_xmit'],
  ['lwt_seg6local', 'lwt_seg6local'],
  ['sockops', 'sock_ops'],
  ['sk_skb', 'sk_skb'],
  ['sk_msg', 'sk_msg'],
  ['lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector'],
  ['cgroup_skb', 'cgroup_skb'],
  ['cgroup/skb', 'cgroup_skb'],
  ['cgroup/dev', 'cgroup_device'],
  ['cgroup/sysctl', 'cgroup_sysctl'],
  ['cgroup/getsockopt', 'cgroup_sockopt'],
  ['cgroup/setsockopt', 'cgroup_sockopt'],
  ['cgroup/sock_create', 'cgroup_sock'],
  ['cgroup/sock_release', 'cgroup_sock'],
  ['cgroup/post_bind', 'cgroup_sock'],
  ['cgroup', 'cgroup_sock_addr'],
  ['struct_ops', 'struct_ops'],
  ['sk_lookup', 'sk_lookup'],
  ['syscall', 'syscall'],
  ['netfilter', 'netfilter'],
];

/** The program type for a section name, "unspec" when libbpf would not know it either. */
export function programTypeForSection(section: string): string {
  const name = section.startsWith('?') ? section.slice(1) : section;
  for (const [prefix, type] of SECTION_PREFIXES) {
    if (name === prefix || name.startsWith(`${prefix}/`) || name.startsWith(`${prefix}.`) || name.startsWith(`${prefix}+`)) {
      return type;
    }
  }
  return 'unspec';
}
