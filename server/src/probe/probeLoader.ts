/**
 * The C source of the probe loader: a tiny program that calls bpf(BPF_PROG_LOAD) for each probe it
 * reads on stdin and says what the verifier did. Node cannot make the bpf() system call itself, and
 * a loader built from this source needs only a C compiler and the C library (no libbpf, no kernel
 * headers: the few bpf_attr fields it sets are laid out here, as include/uapi/linux/bpf.h has them).
 *
 * Input, one probe a line:  NAME PROG_TYPE EXPECTED_ATTACH_TYPE PROG_FLAGS ATTACH_BTF_ID HEX_INSNS
 *                           [HEX_BTF HEX_FUNC_INFO]   (program BTF and its func_info records)
 * Output, one line each:    NAME ok | NAME rejected LAST_LOG_LINE | NAME errno N
 * An ld_imm64 with src_reg BPF_PSEUDO_MAP_FD and imm -1 is given the fd of a one-slot prog array,
 * so a probe can make a tail call; with imm -2, the fd of a one-element array whose value (BTF type
 * 3 of the probe's BTF, key type 1) holds a bpf_timer, so a probe can arm a timer callback.
 */
export const PROBE_LOADER_SOURCE = String.raw`
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

union attr {
  struct { uint32_t map_type, key_size, value_size, max_entries, map_flags; } map;
  struct {
    uint32_t prog_type, insn_cnt; uint64_t insns, license;
    uint32_t log_level, log_size; uint64_t log_buf;
    uint32_t kern_version, prog_flags; char prog_name[16];
    uint32_t prog_ifindex, expected_attach_type, prog_btf_fd, func_info_rec_size;
    uint64_t func_info; uint32_t func_info_cnt, line_info_rec_size;
    uint64_t line_info; uint32_t line_info_cnt, attach_btf_id;
  } prog;
  struct { uint64_t btf, btf_log_buf; uint32_t btf_size, btf_log_size, btf_log_level; } btf;
  struct {
    uint32_t map_type, key_size, value_size, max_entries, map_flags, inner_map_fd, numa_node;
    char map_name[16]; uint32_t map_ifindex, btf_fd, btf_key_type_id, btf_value_type_id;
  } btf_map;
  char pad[160];
};

static char log_buf[1 << 16];
static unsigned char insns[8 * 4096], btf[4096], func_info[4096];

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static size_t unhex(const char *hex, unsigned char *out, size_t room) {
  size_t bytes = strlen(hex) / 2;
  if (bytes > room) bytes = room;
  for (size_t i = 0; i < bytes; i++) out[i] = hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]);
  return bytes;
}

int main(void) {
  char line[70000], name[64], hex[66000], btf_hex[8200], func_info_hex[8200];
  unsigned type, attach, flags, btf_id;
  union attr a;
  memset(&a, 0, sizeof a);
  a.map.map_type = 3; a.map.key_size = 4; a.map.value_size = 4; a.map.max_entries = 1;
  int prog_array = syscall(SYS_bpf, 0, &a, sizeof a);
  while (fgets(line, sizeof line, stdin)) {
    int fields = sscanf(line, "%63s %u %u %u %u %65999s %8199s %8199s", name, &type, &attach, &flags, &btf_id, hex, btf_hex, func_info_hex);
    if (fields != 6 && fields != 8) continue;
    size_t bytes = unhex(hex, insns, sizeof insns);
    int btf_fd = -1, timer_map = -1;
    size_t func_info_bytes = 0;
    if (fields == 8) {
      memset(&a, 0, sizeof a);
      a.btf.btf = (uintptr_t)btf; a.btf.btf_size = unhex(btf_hex, btf, sizeof btf);
      btf_fd = syscall(SYS_bpf, 18, &a, sizeof a);
      if (btf_fd < 0) { printf("%s errno %d\n", name, errno); fflush(stdout); continue; }
      func_info_bytes = unhex(func_info_hex, func_info, sizeof func_info);
      memset(&a, 0, sizeof a);
      a.btf_map.map_type = 2; a.btf_map.key_size = 4; a.btf_map.value_size = 16; a.btf_map.max_entries = 1;
      a.btf_map.btf_fd = btf_fd; a.btf_map.btf_key_type_id = 1; a.btf_map.btf_value_type_id = 3;
      timer_map = syscall(SYS_bpf, 0, &a, sizeof a);
    }
    for (size_t i = 0; i + 16 <= bytes; i += 8) {
      int32_t imm; memcpy(&imm, insns + i + 4, 4);
      if (insns[i] == 0x18 && (insns[i + 1] >> 4) == 1 && imm == -1) { memcpy(insns + i + 4, &prog_array, 4); i += 8; }
      else if (insns[i] == 0x18 && (insns[i + 1] >> 4) == 1 && imm == -2) { memcpy(insns + i + 4, &timer_map, 4); i += 8; }
    }
    memset(&a, 0, sizeof a);
    log_buf[0] = 0;
    a.prog.prog_type = type; a.prog.insn_cnt = bytes / 8; a.prog.insns = (uintptr_t)insns;
    a.prog.license = (uintptr_t)"GPL"; a.prog.log_level = 1; a.prog.log_size = sizeof log_buf;
    a.prog.log_buf = (uintptr_t)log_buf; a.prog.prog_flags = flags;
    a.prog.expected_attach_type = attach; a.prog.attach_btf_id = btf_id;
    if (btf_fd >= 0) {
      a.prog.prog_btf_fd = btf_fd; a.prog.func_info_rec_size = 8;
      a.prog.func_info = (uintptr_t)func_info; a.prog.func_info_cnt = func_info_bytes / 8;
    }
    int fd = syscall(SYS_bpf, 5, &a, sizeof a);
    if (btf_fd >= 0) close(btf_fd);
    if (timer_map >= 0) close(timer_map);
    if (fd >= 0) { printf("%s ok\n", name); close(fd); fflush(stdout); continue; }
    int error = errno;
    char *last = 0;
    /* The error is the last line before the statistics ("processed N insns ..."). */
    for (char *at = strtok(log_buf, "\n"); at; at = strtok(0, "\n"))
      if (*at && strncmp(at, "processed ", 10) != 0) last = at;
    if (last && error != EPERM) printf("%s rejected %s\n", name, last);
    else printf("%s errno %d\n", name, error);
    fflush(stdout);
  }
  return 0;
}
`;
