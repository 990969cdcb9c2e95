// SPDX-License-Identifier: MIT
/*
 * verifier-probe: loads ONE program of a BPF object into the running kernel and reports what the
 * verifier said about it, in a form a test can parse without guessing.
 *
 *   usage: verifier-probe OBJ PROGNAME
 *          verifier-probe --json [--timeout SECONDS] [--sections FILE] OBJ...
 *          verifier-probe --check
 *
 * Output on stdout, one "key value" per line, then the raw verifier log:
 *
 *   status ok|rejected|error
 *   errno 13
 *   stack_depth 208+32+48          (absent when the log has no "stack depth" line)
 *   error tail_calls are not ...   (the verifier's last error line; absent when accepted)
 *   log_bytes 1234
 *   --- log ---
 *   <the verifier log, verbatim>
 *
 * "ok" means the verifier accepted the program, even where a later step of the object's load failed
 * (libbpf then says why on stderr). "rejected" means the verifier ran and refused the program (it
 * wrote a log); "error" means we never got a verdict (the object did not open, the program does not
 * exist, or bpf() refused with an empty log, as fentry programs get EPERM on machines without BTF
 * attach targets or without ftrace).
 *
 * Nothing is pinned and every fd is closed by bpf_object__close, so the kernel keeps no state once
 * this process exits. The exit code is 0 for ok, 1 for rejected and 2 for error.
 *
 * Two adjustments let more real-world objects reach the verifier without changing what it checks:
 * a map whose max_entries is 0 in the object (sized by its loader at run time, as samples/bpf and
 * user ring buffer programs do) gets a small valid size, since the kernel refuses to create it
 * otherwise; and when PROBE_SECTION is set in the environment, the program is loaded as if its ELF
 * section were that name (e.g. PROBE_SECTION=lwt_seg6local for objects written for iproute2's
 * loader, whose section names libbpf cannot map to a program type).
 *
 * --json loads every program of every OBJ, each on its own as above, and prints one JSON line per
 * program, prefixed by "@bsl " so it can be picked out of a serial console that also carries kernel
 * messages (the kernel lab runs it as a static binary inside QEMU):
 *
 *   @bsl {"object":"x.o","program":"p","section":"xdp","status":"ok","errno":0,"libbpf":"...","log":"..."}
 *
 * "libbpf" is what libbpf warned about while it opened and loaded that program (empty when nothing):
 * the reason a load that never reached the verifier failed, or that the kernel refused the object's
 * BTF and libbpf went on without it.
 *
 * Before them comes one line of facts about the kernel itself, read from its BTF
 * (/sys/kernel/btf/vmlinux): __BPF_FUNC_MAX_ID of enum bpf_func_id, one more than the highest helper
 * id the kernel knows (check_helper_call refuses any id from there on, "invalid func unknown#N"),
 * or -1 when the kernel has no BTF:
 *
 *   @bsl-facts {"bpfFuncMaxId":212}
 *
 * then "@bsl-done N" with the number of programs. The log is the verifier's, verbatim (capped at
 * 64 KiB: log level 4 prints a few hundred bytes); the reader parses it like the text mode's fields.
 * Before each load it prints "@bsl-loading OBJ PROG", so that a VM that hangs can be told which
 * program it hung on.
 *
 * --timeout cuts a load off after SECONDS: SIGALRM interrupts bpf() (the verifier checks
 * signal_pending() between instructions and returns EAGAIN), and the program's line says
 * "status":"error","errno":11,"timeout":SECONDS. Under QEMU's TCG a selftest that takes the host a
 * second can take a minute; the cap keeps one such program from eating a whole boot's time.
 * --sections FILE names programs to load as if their section were another (as PROBE_SECTION does for
 * one program): one "OBJ<tab>PROG<tab>SECTION" line each, OBJ as given on the command line.
 *
 * --check loads the smallest possible socket filter ("r0 = 0; exit") and reports "status ok" or
 * "status error" with the errno, so a test can tell "bpf() is refused here" (EPERM in a container,
 * unprivileged_bpf_disabled) apart from "the verifier rejected a fixture".
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>

#include <sys/time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/*
 * Log level 4 (BPF_LOG_STATS) alone is enough: the kernel's verbose() prints whenever the level is
 * non-zero, so check_max_stack_depth's errors appear, and print_verification_stats() prints the
 * "stack depth a+b+c" line for level 4 even when the program is rejected. Level 1 would add the
 * instruction-by-instruction trace, which makes the log megabytes long for no gain here.
 */
#define PROBE_LOG_LEVEL 4
#define PROBE_LOG_SIZE (16u * 1024u * 1024u)

/* Set when libbpf says the kernel refused a program (as opposed to a later step of the load). */
static int saw_prog_load_failure;

/*
 * What libbpf said while opening and loading the current program, for --json: why a load never
 * reached the verifier ("failed to find kernel BTF type ID of ..."), or that the kernel refused the
 * object's BTF and the program was loaded without it, which changes what the verifier checks (5.10
 * refuses an empty DATASEC, and then a callback's ld_imm64 is "unrecognized"). libbpf's copy of the
 * verifier log is left out: the log is reported on its own. Capped; a cut is marked.
 */
#define LOADER_MESSAGES_LIMIT (8u * 1024u)
static char loader_messages[LOADER_MESSAGES_LIMIT];
static size_t loader_messages_length;
static int loader_messages_cut;

static void forget_loader_messages(void)
{
	loader_messages[0] = '\0';
	loader_messages_length = 0;
	loader_messages_cut = 0;
}

static void remember_loader_message(const char *message)
{
	size_t length = strlen(message);
	size_t room = LOADER_MESSAGES_LIMIT - 1 - loader_messages_length;

	if (strstr(message, "-- BEGIN PROG LOAD LOG --"))
		return;
	if (length > room) {
		length = room;
		loader_messages_cut = 1;
	}
	memcpy(loader_messages + loader_messages_length, message, length);
	loader_messages_length += length;
	loader_messages[loader_messages_length] = '\0';
}

/*
 * libbpf's warnings go to stderr so they never mix with the machine-readable report, and are kept
 * for the program's JSON line (in the lab VM stderr goes nowhere: the console carries the results).
 */
static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	static char message[LOADER_MESSAGES_LIMIT];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(message, sizeof(message), format, args);
	if (strstr(message, "BPF program load failed"))
		saw_prog_load_failure = 1;
	remember_loader_message(message);
	return fputs(message, stderr);
}

/* Copies the content of the first line of `text` that starts with `prefix` (without the prefix). */
static int find_line(const char *text, const char *prefix, char *out, size_t out_size)
{
	size_t prefix_len = strlen(prefix);
	const char *line = text;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len >= prefix_len && strncmp(line, prefix, prefix_len) == 0) {
			size_t n = len - prefix_len;

			if (n >= out_size)
				n = out_size - 1;
			memcpy(out, line + prefix_len, n);
			out[n] = '\0';
			return 1;
		}
		line = end ? end + 1 : NULL;
	}
	return 0;
}

/*
 * The verifier's error is the last line that is not one of the statistics lines
 * print_verification_stats() appends after it ("verification time", "stack depth",
 * "processed N insns") and not libbpf's "-- END PROG LOAD LOG --" style framing.
 */
static int is_stats_line(const char *line, size_t len)
{
	static const char *const prefixes[] = {
		"verification time ", "stack depth ", "processed ", "-- ", "mark_precise",
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t plen = strlen(prefixes[i]);

		if (len >= plen && strncmp(line, prefixes[i], plen) == 0)
			return 1;
	}
	return 0;
}

static void last_error_line(const char *text, char *out, size_t out_size)
{
	const char *line = text;

	out[0] = '\0';
	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);

		if (len > 0 && !is_stats_line(line, len)) {
			size_t n = len < out_size - 1 ? len : out_size - 1;

			memcpy(out, line, n);
			out[n] = '\0';
		}
		line = end ? end + 1 : NULL;
	}
}

static int report(const char *status, int err, const char *log)
{
	char depths[512] = "";
	char error[1024] = "";

	printf("status %s\n", status);
	printf("errno %d\n", err);
	if (log && find_line(log, "stack depth ", depths, sizeof(depths)))
		printf("stack_depth %s\n", depths);
	if (log && strcmp(status, "ok") != 0) {
		last_error_line(log, error, sizeof(error));
		if (error[0])
			printf("error %s\n", error);
	}
	printf("log_bytes %zu\n", log ? strlen(log) : (size_t)0);
	printf("--- log ---\n%s", log ? log : "");
	if (log && log[0] && log[strlen(log) - 1] != '\n')
		printf("\n");
	return strcmp(status, "ok") == 0 ? 0 : strcmp(status, "rejected") == 0 ? 1 : 2;
}

/*
 * Maps sized at run time by their loader have max_entries 0 in the object; the kernel refuses to
 * create them. Only the kinds that need entries are touched (local storage maps must keep 0, and
 * libbpf sizes perf event arrays to the number of CPUs itself): ring buffers get one page, the
 * others one entry.
 */
static void size_maps(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__max_entries(map) != 0)
			continue;
		switch (bpf_map__type(map)) {
		case BPF_MAP_TYPE_RINGBUF:
		case BPF_MAP_TYPE_USER_RINGBUF:
			bpf_map__set_max_entries(map, (__u32)sysconf(_SC_PAGESIZE));
			break;
		case BPF_MAP_TYPE_HASH:
		case BPF_MAP_TYPE_ARRAY:
		case BPF_MAP_TYPE_PROG_ARRAY:
		case BPF_MAP_TYPE_PERCPU_HASH:
		case BPF_MAP_TYPE_PERCPU_ARRAY:
		case BPF_MAP_TYPE_STACK_TRACE:
		case BPF_MAP_TYPE_CGROUP_ARRAY:
		case BPF_MAP_TYPE_LRU_HASH:
		case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		case BPF_MAP_TYPE_LPM_TRIE:
		case BPF_MAP_TYPE_ARRAY_OF_MAPS:
		case BPF_MAP_TYPE_HASH_OF_MAPS:
		case BPF_MAP_TYPE_DEVMAP:
		case BPF_MAP_TYPE_SOCKMAP:
		case BPF_MAP_TYPE_CPUMAP:
		case BPF_MAP_TYPE_XSKMAP:
		case BPF_MAP_TYPE_SOCKHASH:
		case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
		case BPF_MAP_TYPE_QUEUE:
		case BPF_MAP_TYPE_STACK:
		case BPF_MAP_TYPE_DEVMAP_HASH:
		case BPF_MAP_TYPE_BLOOM_FILTER:
			bpf_map__set_max_entries(map, 1);
			break;
		default:
			break;
		}
	}
}

/* --timeout: 0 = no limit. Set by the SIGALRM handler when a load ran out of time. */
static double load_timeout_seconds;
static volatile sig_atomic_t load_timed_out;

static void on_load_alarm(int signal_number)
{
	(void)signal_number;
	load_timed_out = 1;
}

/*
 * Arms (seconds > 0) or disarms (0) the load's timer. Once it has fired it keeps firing every
 * 100 ms: libbpf retries a load that failed with EAGAIN a few times, and each retry must be cut off
 * too. The handler is installed without SA_RESTART, so bpf() returns instead of being restarted.
 */
static void set_load_alarm(double seconds)
{
	struct itimerval timer = { 0 };

	if (seconds > 0) {
		struct sigaction action = { 0 };

		action.sa_handler = on_load_alarm;
		sigemptyset(&action.sa_mask);
		sigaction(SIGALRM, &action, NULL);
		timer.it_value.tv_sec = (time_t)seconds;
		timer.it_value.tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6);
		timer.it_interval.tv_usec = 100000;
	}
	setitimer(ITIMER_REAL, &timer, NULL);
}

static int check_bpf_syscall(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "probe_check", "GPL", insns,
			       sizeof(insns) / sizeof(insns[0]), NULL);

	if (fd < 0) {
		int err = errno;

		printf("status error\nerrno %d\nmessage %s\n", err, strerror(err));
		return 2;
	}
	close(fd);
	printf("status ok\nerrno 0\n");
	return 0;
}

/*
 * Loads the program `name` of the object at `path` alone and returns the status ("ok", "rejected",
 * "error") with its errno; the verifier's log is left in `log`. A non-empty `section` loads it as
 * the program type and expected attach type libbpf gives that section name.
 */
static const char *load_program(const char *path, const char *name, const char *section, char *log, int *err_out)
{
	struct bpf_object *obj;
	struct bpf_program *prog, *target = NULL;
	const char *status;
	int err;

	log[0] = '\0';
	saw_prog_load_failure = 0;
	forget_loader_messages();
	load_timed_out = 0;
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		*err_out = errno;
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(*err_out));
		return "error";
	}

	/* Only the requested program is loaded, so one rejected sibling cannot hide its verdict. */
	bpf_object__for_each_program(prog, obj) {
		if (strcmp(bpf_program__name(prog), name) == 0)
			target = prog;
		else
			bpf_program__set_autoload(prog, false);
	}
	if (!target) {
		fprintf(stderr, "no program named %s in %s\n", name, path);
		bpf_object__close(obj);
		*err_out = ENOENT;
		return "error";
	}
	bpf_program__set_autoload(target, true);
	if (section && section[0]) {
		enum bpf_prog_type type;
		enum bpf_attach_type attach;

		if (libbpf_prog_type_by_name(section, &type, &attach) == 0) {
			bpf_program__set_type(target, type);
			bpf_program__set_expected_attach_type(target, attach);
		} else {
			fprintf(stderr, "section %s names no program type libbpf knows\n", section);
		}
	}
	size_maps(obj);
	bpf_program__set_log_level(target, PROBE_LOG_LEVEL);
	bpf_program__set_log_buf(target, log, PROBE_LOG_SIZE);

	set_load_alarm(load_timeout_seconds);
	err = bpf_object__load(obj);
	set_load_alarm(0);
	*err_out = 0;
	if (err != 0 && load_timed_out) {
		/* Whatever the log holds, the verifier was stopped before its verdict. */
		*err_out = EAGAIN;
		status = "error";
	} else if (err == 0) {
		status = "ok";
	} else if (log[0] && !saw_prog_load_failure) {
		/*
		 * The verifier accepted the program and a later step of bpf_object__load failed: libbpf
		 * fills prog arrays declared with initial slots after loading, and those slots name
		 * sibling programs this probe did not load. The verdict is the verifier's.
		 */
		status = "ok";
	} else {
		char error[1024];

		*err_out = err < 0 ? -err : errno;
		/*
		 * A verdict needs the verifier's own words. An empty log means bpf() refused before the
		 * verifier ran; a log of statistics alone ("stack depth 0", "processed 0 insns") means
		 * bpf_check gave up before do_check, as the attach-target gate of some hosts does for
		 * tracing programs (bpf_iter programs get EPERM there and print depth 0 for every frame).
		 */
		last_error_line(log, error, sizeof(error));
		status = error[0] ? "rejected" : "error";
	}
	bpf_object__close(obj);
	return status;
}

static void print_json_string(const char *text, size_t limit)
{
	putchar('"');
	for (size_t i = 0; text[i] && i < limit; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			printf("\\n");
		else if (c == '\t')
			printf("\\t");
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

#define JSON_LOG_LIMIT (64u * 1024u)

/* "libbpf":"..." (what libbpf said, one message a line) and "libbpfCut":true when it was capped. */
static void print_loader_messages(void)
{
	printf("\"libbpf\":");
	print_json_string(loader_messages, LOADER_MESSAGES_LIMIT);
	if (loader_messages_cut)
		printf(",\"libbpfCut\":true");
}

/* __BPF_FUNC_MAX_ID as the running kernel's BTF has it, or -1 without BTF (or without the enum). */
static long kernel_bpf_func_max_id(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	long value = -1;
	__s32 id;

	if (!vmlinux)
		return -1;
	id = btf__find_by_name_kind(vmlinux, "bpf_func_id", BTF_KIND_ENUM);
	if (id > 0) {
		const struct btf_type *type = btf__type_by_id(vmlinux, (__u32)id);
		const struct btf_enum *values = btf_enum(type);

		for (__u16 i = 0; i < btf_vlen(type); i++) {
			if (strcmp(btf__name_by_offset(vmlinux, values[i].name_off), "__BPF_FUNC_MAX_ID") == 0)
				value = values[i].val;
		}
	}
	btf__free(vmlinux);
	return value;
}

/* --sections: programs loaded as another section's type, "OBJ<tab>PROG<tab>SECTION" per line. */
struct section_override {
	char *object;
	char *program;
	char *section;
};

static struct section_override *overrides;
static int override_count;

static int read_section_overrides(const char *path)
{
	char line[8192];
	FILE *file = fopen(path, "r");

	if (!file) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), file)) {
		char *program = strchr(line, '\t');
		char *section = program ? strchr(program + 1, '\t') : NULL;

		if (!section)
			continue;
		*program++ = '\0';
		*section++ = '\0';
		section[strcspn(section, "\r\n")] = '\0';
		overrides = realloc(overrides, sizeof(*overrides) * (size_t)(override_count + 1));
		overrides[override_count++] = (struct section_override){ strdup(line), strdup(program), strdup(section) };
	}
	fclose(file);
	return 0;
}

static const char *section_override(const char *object, const char *program)
{
	for (int i = 0; i < override_count; i++) {
		if (strcmp(overrides[i].object, object) == 0 && strcmp(overrides[i].program, program) == 0)
			return overrides[i].section;
	}
	return NULL;
}

/* Every program of every object, one JSON line each (see the header). */
static int report_all_json(int count, char **paths, char *log)
{
	int programs = 0;

	printf("@bsl-facts {\"bpfFuncMaxId\":%ld}\n", kernel_bpf_func_max_id());
	fflush(stdout);

	for (int i = 0; i < count; i++) {
		struct bpf_object *obj;
		struct bpf_program *prog;
		char **names = NULL, **sections = NULL;
		int n = 0;

		forget_loader_messages();
		obj = bpf_object__open_file(paths[i], NULL);
		if (!obj) {
			int err = errno;

			printf("@bsl {\"object\":");
			print_json_string(paths[i], 4096);
			printf(",\"status\":\"error\",\"errno\":%d,", err);
			print_loader_messages();
			printf("}\n");
			continue;
		}
		/* The names first: each program is then loaded from a fresh open of the object. */
		bpf_object__for_each_program(prog, obj) {
			names = realloc(names, sizeof(*names) * (size_t)(n + 1));
			sections = realloc(sections, sizeof(*sections) * (size_t)(n + 1));
			names[n] = strdup(bpf_program__name(prog));
			sections[n++] = strdup(bpf_program__section_name(prog));
		}
		bpf_object__close(obj);
		for (int j = 0; j < n; j++) {
			int err = 0;
			const char *status;

			printf("@bsl-loading %s %s\n", paths[i], names[j]);
			fflush(stdout);
			status = load_program(paths[i], names[j], section_override(paths[i], names[j]), log, &err);
			printf("@bsl {\"object\":");
			print_json_string(paths[i], 4096);
			printf(",\"program\":");
			print_json_string(names[j], 4096);
			printf(",\"section\":");
			print_json_string(sections[j], 4096);
			printf(",\"status\":\"%s\",\"errno\":%d,", status, err);
			if (load_timed_out && strcmp(status, "error") == 0)
				printf("\"timeout\":%g,", load_timeout_seconds);
			print_loader_messages();
			printf(",");
			printf("\"log\":");
			print_json_string(log, JSON_LOG_LIMIT);
			printf("}\n");
			fflush(stdout);
			free(names[j]);
			free(sections[j]);
			programs++;
		}
		free(names);
		free(sections);
	}
	printf("@bsl-done %d\n", programs);
	fflush(stdout);
	/*
	 * In the lab VM stdout is the serial console, and /init powers off as soon as this returns:
	 * without waiting for the UART to send what the tty still holds, a loaded host lost the results
	 * mid-line to "reboot: Power down". On a pipe (this machine's kernel) it fails with ENOTTY.
	 */
	tcdrain(STDOUT_FILENO);
	return 0;
}

int main(int argc, char **argv)
{
	const char *status;
	char *log;
	int err, code;

	if (argc == 2 && strcmp(argv[1], "--check") == 0)
		return check_bpf_syscall();
	if (!(argc >= 2 && strcmp(argv[1], "--json") == 0) && argc != 3) {
		fprintf(stderr, "usage: %s OBJ PROGNAME | --json [--timeout SECONDS] [--sections FILE] OBJ... | --check\n", argv[0]);
		return 2;
	}

	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	libbpf_set_print(print_libbpf);

	log = calloc(1, PROBE_LOG_SIZE);
	if (!log) {
		fprintf(stderr, "out of memory\n");
		return 2;
	}
	if (strcmp(argv[1], "--json") == 0) {
		int first = 2;

		for (;;) {
			if (first + 1 < argc && strcmp(argv[first], "--timeout") == 0) {
				load_timeout_seconds = strtod(argv[first + 1], NULL);
				first += 2;
			} else if (first + 1 < argc && strcmp(argv[first], "--sections") == 0) {
				if (read_section_overrides(argv[first + 1]) != 0)
					return 2;
				first += 2;
			} else {
				break;
			}
		}
		code = report_all_json(argc - first, argv + first, log);
		free(log);
		return code;
	}
	status = load_program(argv[1], argv[2], getenv("PROBE_SECTION"), log, &err);
	code = report(status, err, strcmp(status, "error") == 0 && !log[0] ? NULL : log);
	free(log);
	return code;
}
