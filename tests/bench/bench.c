/* SPDX-License-Identifier: MIT */
/*
 * durabus-bench: durabus against the ceiling of the bus, on one private bus
 * in one run (issue 6, item 3). From the build directory:
 *
 *     tests/bench/durabus-bench --json out.json
 *     meson test --benchmark -v       (the same, JSON in tests/bench/durabus-bench.json)
 *
 * It starts its own dbus-daemon, configured like the session bus, in a
 * temporary directory that also holds durabusd's state and XDG directories
 * (under --tmpdir, default $TMPDIR or /var/tmp, so that Sends are synced to
 * a disk rather than to memory). Its service directory activates the built
 * durabusd and durabus-ceiling (ceiling.c): the same objects and signatures,
 * storing nothing, so the traffic the ceiling carries is what the bus itself
 * carries. Each measurement runs on both, one after the other, with 100-byte
 * payloads; the ratio is durabus/ceiling. The directory, the daemon and the
 * services are gone at the end, also after a failure or Ctrl-C.
 *
 * Every measurement runs its own event loop with a deadline (--timeout);
 * nothing sleeps. Times are CLOCK_MONOTONIC. --help lists the counts.
 */

#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <linux/magic.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "ceiling.h"
#include "names.h"
#include "util.h"

#define PAYLOAD_SIZE 100
/* Sends a producer keeps out at once, under the bus's limit of pending
 * replies per connection (128 by default, more on the session bus). */
#define IN_FLIGHT 100
#define ACK_BATCH 100
/* (c): messages per SendBatch and per Messages signal, and how many
 * SendBatch calls are out at once. */
#define SEND_BATCH 100
#define BATCH_CALLS_IN_FLIGHT 4
#define WINDOW 1000
#define FANOUT 10
#define USEC_PER_SEC UINT64_C(1000000)
/* How long a service gets to exit on SIGTERM before it is killed. */
#define STOP_TIMEOUT_USEC (10 * USEC_PER_SEC)
/* How long dbus-daemon gets to say it listens. */
#define DAEMON_TIMEOUT_MS 10000
/* Bounds of the counts, so that a typo cannot run for a day. */
#define MESSAGES_MAX 10000000u
#define TIMEOUT_MAX_SEC 3600u
#define STARTUP_REPEAT_MAX 1000u

enum { DURABUS, CEILING, N_TARGETS };

static const struct {
        const char *label;
        const char *bus_name;
} targets[N_TARGETS] = {
        [DURABUS] = { "durabus", DURABUS_BUS_NAME },
        [CEILING] = { "ceiling", CEILING_BUS_NAME },
};

enum {
        ROW_SEND,
        ROW_END_TO_END,
        ROW_SEND_BATCH,
        ROW_DIRECT,
        ROW_FAN_OUT,
        ROW_LATENCY_P50,
        ROW_LATENCY_P99,
        ROW_LATENCY_DIRECT_P50,
        ROW_LATENCY_DIRECT_P99,
        ROW_REPLAY,
        ROW_STARTUP_EMPTY,
        ROW_STARTUP_STORED,
        ROW_RSS,
        ROW_RSS_REPLAY,
        ROW_ANON_REPLAY,
        ROW_DISK_PENDING,
        ROW_DISK_ACKED,
        N_ROWS,
};

/* One line of the table: a figure per target, NAN where there is none, and
 * then why (absent; NULL: the measurement failed or was not reached). */
typedef struct Row {
        const char *item;
        char what[80];
        const char *unit;
        int decimals;
        double value[N_TARGETS];
        const char *absent[N_TARGETS];
} Row;

typedef struct Settings {
        unsigned messages;
        unsigned latency_count;
        unsigned stored;
        unsigned timeout_sec;
        const char *only;       /* the items to measure, as letters; NULL: all */
        unsigned startup_repeat;        /* starts per figure of (h), the median kept */
        const char *json_path;
        const char *durabusd;
        const char *ceiling;
        const char *tmpdir;
} Settings;

typedef struct Bench {
        Settings settings;
        char *dir;              /* the temporary directory, removed at the end */
        char *state_dir;
        char *address;
        pid_t daemon_pid;
        sd_bus *control;        /* for the calls that are not measured */
        int service_fd[N_TARGETS];      /* pidfd of the running instance, or -1 */
        pid_t service_pid[N_TARGETS];
        Row rows[N_ROWS];
        bool failed, interrupted;
} Bench;

static char payload[PAYLOAD_SIZE + 1];

/* Says what an unmeasured call got back, the error's name and message
 * where the peer replied with one, and returns r. */
static int call_failed(const char *what, const sd_bus_error *error, int r) {
        if (sd_bus_error_is_set(error))
                fprintf(stderr, "durabus-bench: %s failed: %s: %s\n", what, error->name, error->message);
        else
                fprintf(stderr, "durabus-bench: %s failed: %s\n", what, strerror(-r));
        return r;
}

/* ---- processes ---- */

/* Raw system calls: glibc wraps them only from 2.36 on. */
static int pidfd_open(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_send_signal(int fd, int sig) {
        return (int) syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* 0 once the process of pidfd fd has exited, -ETIMEDOUT after timeout. */
static int wait_exit(int fd, uint64_t timeout_usec) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r;

        do
                r = poll(&p, 1, (int) (timeout_usec / 1000));
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        return r == 0 ? -ETIMEDOUT : 0;
}

/* SIGTERM, so that durabusd closes its databases in order; SIGKILL if it
 * does not exit in time. The pidfd makes sure the signal reaches that very
 * process, whatever has become of its pid. */
static int terminate(int fd) {
        int r;

        if (pidfd_send_signal(fd, SIGTERM) < 0)
                return errno == ESRCH ? 0 : -errno;
        r = wait_exit(fd, STOP_TIMEOUT_USEC);
        if (r != -ETIMEDOUT)
                return r;
        fprintf(stderr, "durabus-bench: a service ignored SIGTERM for %" PRIu64 " s, killing it\n",
                STOP_TIMEOUT_USEC / USEC_PER_SEC);
        (void) pidfd_send_signal(fd, SIGKILL);
        return wait_exit(fd, STOP_TIMEOUT_USEC);
}

/* Learns the pid of the instance of target t that owns its name now, and
 * opens a pidfd on it. */
static int watch_service(Bench *b, unsigned t) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t pid;
        int fd, r;

        r = sd_bus_call_method(b->control, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionUnixProcessID", &error, &reply, "s", targets[t].bus_name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "u", &pid);
        if (r < 0)
                return r;
        b->service_pid[t] = (pid_t) pid;

        closep(&b->service_fd[t]);
        fd = pidfd_open((pid_t) pid);
        b->service_fd[t] = fd;
        return fd < 0 ? -errno : 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && !*new_owner)
                *(bool *) userdata = true;
        return 0;
}

/*
 * Stops the running instance of target t and returns once the bus has seen
 * its name go, so that the next call to it activates a new instance. Waiting
 * for the process alone would not do: durabusd gives up its name first and
 * exits after, and the bus may see the exit after a call that raced it.
 */
static int stop_service(Bench *b, unsigned t) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(freep) char *rule = NULL;
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + STOP_TIMEOUT_USEC;
        bool gone = false;
        int r;

        /* The instance that runs now, if any: NameHasNoOwner is ENXIO. */
        r = watch_service(b, t);
        if (r == -ENXIO)
                return 0;
        if (r < 0)
                return r;

        if (asprintf(&rule, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'",
                     targets[t].bus_name) < 0)
                return -ENOMEM;
        r = sd_bus_add_match(b->control, &slot, rule, on_name_owner_changed, &gone);
        if (r < 0)
                return r;

        r = terminate(b->service_fd[t]);
        closep(&b->service_fd[t]);
        b->service_fd[t] = -1;
        if (r < 0)
                return r;

        while (!gone) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = sd_bus_process(b->control, NULL);
                if (r == 0)
                        r = sd_bus_wait(b->control, deadline - now);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- files ---- */

static char *path_join(const char *dir, const char *name) {
        char *path;

        return asprintf(&path, "%s/%s", dir, name) < 0 ? NULL : path;
}

static int write_file(const char *dir, const char *name, const char *contents) {
        _cleanup_(freep) char *path = path_join(dir, name);
        _cleanup_(fclosep) FILE *f = NULL;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        if (fputs(contents, f) < 0 || fflush(f) != 0)
                return -EIO;
        return 0;
}

static int make_dir(const char *dir, const char *name, char **ret_path) {
        char *path = path_join(dir, name);

        if (!path)
                return -ENOMEM;
        if (mkdir(path, 0700) < 0) {
                free(path);
                return -errno;
        }
        *ret_path = path;
        return 0;
}

/* nftw() passes no user data: the total of the walk in progress. */
static uint64_t walk_bytes;

static int add_blocks(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        walk_bytes += (uint64_t) st->st_blocks * 512u;
        return 0;
}

/* What du(1) says of dir: the blocks its files take, in bytes. */
static int disk_usage(const char *dir, uint64_t *ret) {
        walk_bytes = 0;
        if (nftw(dir, add_blocks, 16, FTW_PHYS) < 0)
                return -errno;
        *ret = walk_bytes;
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

static const char *filesystem_name(const char *dir) {
        struct statfs sf;

        if (statfs(dir, &sf) < 0)
                return "unknown";
        switch (sf.f_type) {
        case EXT4_SUPER_MAGIC:
                return "ext2/3/4";
        case TMPFS_MAGIC:
                return "tmpfs (syncs cost nothing)";
        case BTRFS_SUPER_MAGIC:
                return "btrfs";
        case XFS_SUPER_MAGIC:
                return "xfs";
        case OVERLAYFS_SUPER_MAGIC:
                return "overlayfs";
        default:
                return "other";
        }
}

/* A field of /proc/PID/status in kB (VmHWM, the peak resident set size;
 * RssAnon, what of it now is not a mapped file), in KiB. */
static int status_kib(pid_t pid, const char *field, uint64_t *ret_kib) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_(freep) char *line = NULL;
        char path[64];
        size_t size = 0, n = strlen(field);

        (void) snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &size, f) > 0)
                if (strncmp(line, field, n) == 0 && line[n] == ':' &&
                    sscanf(line + n + 1, "%" SCNu64 " kB", ret_kib) == 1)
                        return 0;
        return -ENODATA;
}

/* ---- the private bus ---- */

static int write_bus_files(Bench *b) {
        _cleanup_(freep) char *services = NULL, *config_dir = NULL, *config = NULL, *durabus = NULL,
                                *ceiling = NULL;
        int r;

        /* config/ is XDG_CONFIG_HOME, made by isolate_environment(). */
        r = make_dir(b->dir, "services", &services);
        if (r >= 0)
                r = make_dir(b->dir, "config/durabus", &config_dir);
        if (r < 0)
                return r;

        /* The limits of the session bus (/usr/share/dbus-1/session.conf), so
         * the private bus is not the narrower one of dbus-daemon's defaults. */
        if (asprintf(&config,
                     "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                     " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                     "<busconfig>\n"
                     "  <type>session</type>\n"
                     "  <listen>unix:path=%s/bus</listen>\n"
                     "  <auth>EXTERNAL</auth>\n"
                     "  <servicedir>%s</servicedir>\n"
                     "  <policy context=\"default\">\n"
                     "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                     "    <allow eavesdrop=\"true\"/>\n"
                     "    <allow own=\"*\"/>\n"
                     "  </policy>\n"
                     "  <limit name=\"max_incoming_bytes\">1000000000</limit>\n"
                     "  <limit name=\"max_outgoing_bytes\">1000000000</limit>\n"
                     "  <limit name=\"max_message_size\">1000000000</limit>\n"
                     "  <limit name=\"service_start_timeout\">120000</limit>\n"
                     "  <limit name=\"max_match_rules_per_connection\">50000</limit>\n"
                     "  <limit name=\"max_replies_per_connection\">50000</limit>\n"
                     "</busconfig>\n",
                     b->dir, services) < 0)
                return -ENOMEM;
        r = write_file(b->dir, "bus.conf", config);
        if (r < 0)
                return r;

        /* The benchmark measures, it does not test the limits: a million
         * stored messages is exactly the default max-stored-messages. */
        r = write_file(config_dir, "durabus.conf",
                       "[Broker]\nidle-timeout=0\nendpoint-activation=false\nmax-stored-messages=0\n"
                       "max-stored-bytes=0\n");
        if (r < 0)
                return r;

        if (asprintf(&durabus, "[D-BUS Service]\nName=" DURABUS_BUS_NAME "\nExec=%s --config %s/durabus.conf "
                     "--state-dir %s\n", b->settings.durabusd, config_dir, b->state_dir) < 0 ||
            asprintf(&ceiling, "[D-BUS Service]\nName=" CEILING_BUS_NAME "\nExec=%s\n", b->settings.ceiling) < 0)
                return -ENOMEM;
        r = write_file(services, DURABUS_BUS_NAME ".service", durabus);
        if (r >= 0)
                r = write_file(services, CEILING_BUS_NAME ".service", ceiling);
        return r;
}

/* The services inherit the daemon's environment: everything of theirs goes
 * to the temporary directory, and nothing reaches the user's own bus. */
static int isolate_environment(Bench *b) {
        static const struct {
                const char *variable, *dir;
        } homes[] = {
                { "HOME", "home" },
                { "XDG_CONFIG_HOME", "config" },
                { "XDG_DATA_HOME", "data" },
                { "XDG_STATE_HOME", "state" },
                { "XDG_CACHE_HOME", "cache" },
        };
        _cleanup_(freep) char *bus = NULL;

        for (size_t i = 0; i < ELEMENTSOF(homes); i++) {
                _cleanup_(freep) char *path = path_join(b->dir, homes[i].dir);

                if (!path)
                        return -ENOMEM;
                if ((mkdir(path, 0700) < 0 && errno != EEXIST) || setenv(homes[i].variable, path, 1) < 0)
                        return -errno;
        }

        if (asprintf(&bus, "unix:path=%s/bus", b->dir) < 0)
                return -ENOMEM;
        if (setenv("DBUS_SESSION_BUS_ADDRESS", bus, 1) < 0 || unsetenv("DBUS_STARTER_ADDRESS") < 0 ||
            unsetenv("DBUS_STARTER_BUS_TYPE") < 0)
                return -errno;
        return 0;
}

static void exec_daemon(const char *dir, int address_fd, int log_fd) {
        _cleanup_(freep) char *config = NULL, *print = NULL;
        sigset_t all;

        /* Gone with us, whatever kills us; in a process group of its own so
         * that Ctrl-C reaches only us, and we stop it and its services in
         * order. The signals we wait for on a signalfd are blocked: unblock. */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        (void) setpgid(0, 0);
        sigfillset(&all);
        (void) sigprocmask(SIG_UNBLOCK, &all, NULL);
        if (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0 ||
            fcntl(address_fd, F_SETFD, 0) < 0)
                _exit(127);
        if (asprintf(&config, "--config-file=%s/bus.conf", dir) < 0 ||
            asprintf(&print, "--print-address=%d", address_fd) < 0)
                _exit(127);
        execlp("dbus-daemon", "dbus-daemon", "--nofork", config, print, (char *) NULL);
        _exit(127);
}

/* Starts dbus-daemon and reads the address it prints once it listens. Its
 * output and that of the services goes to DIR/bus.log, shown on failure. */
static int start_daemon(Bench *b) {
        _cleanup_(closep) int log_fd = -1, read_fd = -1, write_fd = -1;
        _cleanup_(freep) char *log = path_join(b->dir, "bus.log");
        struct pollfd p;
        char address[512];
        ssize_t n;
        int fds[2], r;

        if (!log)
                return -ENOMEM;
        log_fd = open(log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (log_fd < 0 || pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        read_fd = fds[0];
        write_fd = fds[1];

        b->daemon_pid = fork();
        if (b->daemon_pid < 0)
                return -errno;
        if (b->daemon_pid == 0)
                exec_daemon(b->dir, write_fd, log_fd);
        closep(&write_fd);
        write_fd = -1;

        p = (struct pollfd) { .fd = read_fd, .events = POLLIN };
        r = poll(&p, 1, DAEMON_TIMEOUT_MS);
        if (r < 0)
                return -errno;
        n = r > 0 ? read(read_fd, address, sizeof address - 1) : 0;
        if (n <= 0) {
                fprintf(stderr, "durabus-bench: dbus-daemon did not start (is it installed?)\n");
                return -EIO;
        }
        address[n] = '\0';
        address[strcspn(address, "\n")] = '\0';
        b->address = strdup(address);
        return b->address ? 0 : -ENOMEM;
}

static int connect_bus(Bench *b, sd_event *event, sd_bus **ret) {
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, b->address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_set_method_call_timeout(bus, (uint64_t) b->settings.timeout_sec * USEC_PER_SEC);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0 && event)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

/* A direct connection to durabus (Broker.OpenDirect), asked for over the
 * control connection: a peer of the service, without Hello. */
static int connect_direct(Bench *b, sd_event *event, sd_bus **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_close_unrefp) sd_bus *bus = NULL;
        int fd, r;

        r = sd_bus_call_method(b->control, DURABUS_BUS_NAME, DURABUS_BROKER_PATH, DURABUS_BROKER_INTERFACE,
                               "OpenDirect", &error, &reply, "a{sv}", 0);
        if (r < 0)
                return call_failed("OpenDirect", &error, r);
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return r;
        /* The descriptor is the reply's. */
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;

        r = sd_bus_new(&bus);
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        r = sd_bus_set_fd(bus, fd, fd);
        if (r < 0) {
                (void) close(fd);
                return r;
        }
        r = sd_bus_set_method_call_timeout(bus, (uint64_t) b->settings.timeout_sec * USEC_PER_SEC);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0 && event)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

static int bench_setup(Bench *b) {
        _cleanup_(freep) char *template = path_join(b->settings.tmpdir, "durabus-bench-XXXXXX");
        int r;

        if (!template)
                return -ENOMEM;
        if (!mkdtemp(template)) {
                fprintf(stderr, "durabus-bench: Failed to create a directory in '%s': %m\n", b->settings.tmpdir);
                return -errno;
        }
        b->dir = TAKE_PTR(template);
        b->state_dir = path_join(b->dir, "state/durabus");
        if (!b->state_dir)
                return -ENOMEM;

        r = isolate_environment(b);
        if (r >= 0)
                r = write_bus_files(b);
        if (r < 0) {
                fprintf(stderr, "durabus-bench: Failed to prepare '%s': %s\n", b->dir, strerror(-r));
                return r;
        }

        r = start_daemon(b);
        if (r < 0)
                return r;
        r = connect_bus(b, NULL, &b->control);
        if (r < 0)
                fprintf(stderr, "durabus-bench: Failed to connect to the private bus: %s\n", strerror(-r));
        return r;
}

static void dump_log(const Bench *b) {
        _cleanup_(freep) char *path = path_join(b->dir, "bus.log");
        _cleanup_(fclosep) FILE *f = path ? fopen(path, "re") : NULL;
        char buffer[4096];
        size_t n;

        if (!f)
                return;
        fprintf(stderr, "---- the log of the bus and its services ----\n");
        while ((n = fread(buffer, 1, sizeof buffer, f)) > 0)
                (void) fwrite(buffer, 1, n, stderr);
}

/* Stops the services, then the daemon, then removes the directory: also
 * after a half-done setup. */
static void bench_done(Bench *b) {
        for (unsigned t = 0; t < N_TARGETS; t++) {
                /* An instance started since we last looked is stopped too. */
                if (b->control)
                        (void) watch_service(b, t);
                if (b->service_fd[t] >= 0)
                        (void) terminate(b->service_fd[t]);
                closep(&b->service_fd[t]);
        }
        b->control = sd_bus_close_unref(b->control);

        if (b->daemon_pid > 0) {
                (void) kill(b->daemon_pid, SIGTERM);
                (void) waitpid(b->daemon_pid, NULL, 0);
        }
        /* The services the daemon left behind are ours to reap (we are
         * their subreaper): where init does not, they would stay zombies. */
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;

        if (b->dir) {
                /* What went wrong may be in it; after Ctrl-C nothing did. */
                if (b->failed && !b->interrupted)
                        dump_log(b);
                if (nftw(b->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                        fprintf(stderr, "durabus-bench: Failed to remove '%s': %m\n", b->dir);
        }
        free(b->dir);
        free(b->state_dir);
        free(b->address);
}

/* ---- traffic ---- */

typedef struct Traffic Traffic;

typedef struct Subscriber {
        Traffic *traffic;
        sd_bus *bus;
        char name[16];
        char *batch[ACK_BATCH + 1];     /* ids received, not in an Ack yet; NULL-terminated */
        unsigned n_batch;
        unsigned received;
        unsigned acked;
} Subscriber;

/*
 * One producer connection sending total messages, IN_FLIGHT at a time (or,
 * in lockstep, one at a time, each once the previous has arrived), and
 * n_subscribers connections each subscribing, receiving all and
 * acknowledging them ACK_BATCH at a time. Without a producer the
 * subscribers receive what is stored: a replay.
 */
struct Traffic {
        sd_event *event;
        bool direct;            /* every connection a direct one (durabus only) */
        const char *destination;        /* NULL over direct connections */
        char path[96];
        bool produce;
        bool lockstep;
        unsigned batch;                 /* above 1: SendBatch of that many, and Messages signals */
        uint64_t expect_pending;        /* what each Subscribe should say is stored */
        unsigned total;
        sd_bus *producer;
        unsigned issued, replied;
        Subscriber subscribers[FANOUT];
        unsigned n_subscribers, n_subscribed, acks_in_flight;
        uint64_t *latencies;    /* lockstep: per message, from its Send to its Message */
        uint64_t sent_at, start, end;
};

static void traffic_done(Traffic *t) {
        for (unsigned k = 0; k < t->n_subscribers; k++) {
                Subscriber *s = &t->subscribers[k];

                for (unsigned i = 0; i < s->n_batch; i++)
                        free(s->batch[i]);
                s->bus = sd_bus_close_unref(s->bus);
        }
        t->producer = sd_bus_close_unref(t->producer);
        t->event = sd_event_unref(t->event);
}

static int traffic_fail(Traffic *t, int r) {
        (void) sd_event_exit(t->event, r);
        return 0;
}

/* Whether m is an error reply, which ends the loop with its errno. */
static bool failed_reply(Traffic *t, sd_bus_message *m, const char *what) {
        const sd_bus_error *error = sd_bus_message_get_error(m);

        if (!error)
                return false;
        fprintf(stderr, "durabus-bench: %s failed: %s: %s\n", what, error->name, error->message);
        (void) traffic_fail(t, sd_bus_message_get_errno(m) > 0 ? -sd_bus_message_get_errno(m) : -EIO);
        return true;
}

static int on_send_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

/* How many messages the batch that follows the first done ones holds:
 * t->batch, or what is left of the total. */
static unsigned batch_after(const Traffic *t, unsigned done) {
        return t->total - done < t->batch ? t->total - done : t->batch;
}

/* One SendBatch of the next messages, up to t->batch of them. */
static int send_batch(Traffic *t) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        unsigned n = batch_after(t, t->issued);
        char id[16];
        int r;

        r = sd_bus_message_new_method_call(t->producer, &call, t->destination, t->path, DURABUS_ENDPOINT_INTERFACE,
                                           "SendBatch");
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "(ssa{sv})");
        for (unsigned i = 0; r >= 0 && i < n; i++) {
                (void) snprintf(id, sizeof id, "m%08u", t->issued + i);
                r = sd_bus_message_append(call, "(ssa{sv})", id, payload, 0);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r >= 0)
                r = sd_bus_call_async(t->producer, NULL, call, on_send_reply, t, 0);
        if (r < 0)
                return r;

        if (t->issued == 0)
                t->start = now_usec(CLOCK_MONOTONIC);
        t->issued += n;
        return 0;
}

static int traffic_fill(Traffic *t) {
        unsigned in_flight = t->lockstep ? 1u : t->batch > 1 ? BATCH_CALLS_IN_FLIGHT * t->batch : IN_FLIGHT;
        char id[16];
        int r;

        if (!t->produce || t->n_subscribed < t->n_subscribers)
                return 0;

        while (t->issued < t->total && t->issued - t->replied < in_flight) {
                if (t->batch > 1) {
                        r = send_batch(t);
                        if (r < 0)
                                return r;
                        continue;
                }

                /* In lockstep the next Send also waits for the previous
                 * Message and its Ack, so each latency is of one message
                 * alone on the bus. */
                if (t->lockstep && (t->subscribers[0].received < t->issued || t->acks_in_flight > 0))
                        return 0;

                (void) snprintf(id, sizeof id, "m%08u", t->issued);
                t->sent_at = now_usec(CLOCK_MONOTONIC);
                if (t->issued == 0)
                        t->start = t->sent_at;
                r = sd_bus_call_method_async(t->producer, NULL, t->destination, t->path,
                                             DURABUS_ENDPOINT_INTERFACE, "Send", on_send_reply, t, "ssa{sv}", id,
                                             payload, 0);
                if (r < 0)
                        return r;
                t->issued++;
        }
        return 0;
}

/* After each event: sends what may go now; ends the loop once every Send
 * has its reply and every subscriber has acknowledged every message. */
static int traffic_advance(Traffic *t) {
        int r;

        r = traffic_fill(t);
        if (r < 0)
                return traffic_fail(t, r);

        if (t->replied < t->total)
                return 0;
        for (unsigned k = 0; k < t->n_subscribers; k++)
                if (t->subscribers[k].acked < t->total)
                        return 0;
        t->end = now_usec(CLOCK_MONOTONIC);
        return sd_event_exit(t->event, 0);
}

static int on_send_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Traffic *t = userdata;

        if (failed_reply(t, m, "Send"))
                return 0;
        /* Every SendBatch but the last has t->batch messages; whichever
         * reply comes last, the count adds up to the total. */
        t->replied += t->batch <= 1 ? 1 : batch_after(t, t->replied);
        return traffic_advance(t);
}

static int on_ack_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Subscriber *s = userdata;
        Traffic *t = s->traffic;
        uint32_t acked;
        int r;

        if (failed_reply(t, m, "Ack"))
                return 0;
        r = sd_bus_message_read(m, "u", &acked);
        if (r < 0)
                return traffic_fail(t, r);
        s->acked += acked;
        t->acks_in_flight--;
        return traffic_advance(t);
}

static int send_ack(Subscriber *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        Traffic *t = s->traffic;
        int r;

        r = sd_bus_message_new_method_call(s->bus, &call, t->destination, t->path, DURABUS_ENDPOINT_INTERFACE,
                                           "Ack");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", s->name);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, s->batch);
        if (r >= 0)
                r = sd_bus_call_async(s->bus, NULL, call, on_ack_reply, s, 0);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < s->n_batch; i++) {
                free(s->batch[i]);
                s->batch[i] = NULL;
        }
        s->n_batch = 0;
        t->acks_in_flight++;
        return 0;
}

/* One message received: timed in lockstep, and acknowledged in batches. */
static int received(Subscriber *s, const char *id) {
        Traffic *t = s->traffic;
        int r;

        if (t->latencies && s->received < t->total)
                t->latencies[s->received] = now_usec(CLOCK_MONOTONIC) - t->sent_at;
        s->received++;

        s->batch[s->n_batch] = strdup(id);
        if (!s->batch[s->n_batch])
                return -ENOMEM;
        s->n_batch++;
        if (s->n_batch == ACK_BATCH || s->received >= t->total) {
                r = send_ack(s);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Subscriber *s = userdata;
        const char *subscriber, *id;
        int r;

        r = sd_bus_message_read(m, "ss", &subscriber, &id);
        if (r >= 0)
                r = received(s, id);
        if (r < 0)
                return traffic_fail(s->traffic, r);
        return traffic_advance(s->traffic);
}

static int on_messages(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Subscriber *s = userdata;
        const char *subscriber, *id;
        int r;

        r = sd_bus_message_read(m, "s", &subscriber);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "(stsa{sv})");
        while (r >= 0 && (r = sd_bus_message_enter_container(m, 'r', "stsa{sv}")) > 0) {
                r = sd_bus_message_read(m, "s", &id);
                if (r >= 0)
                        r = received(s, id);
                if (r >= 0)
                        r = sd_bus_message_skip(m, "tsa{sv}");
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
        }
        if (r < 0)
                return traffic_fail(s->traffic, r);
        return traffic_advance(s->traffic);
}

static int on_subscribe_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Subscriber *s = userdata;
        Traffic *t = s->traffic;
        uint64_t pending;
        int r;

        if (failed_reply(t, m, "Subscribe"))
                return 0;
        r = sd_bus_message_read(m, "t", &pending);
        if (r < 0)
                return traffic_fail(t, r);
        if (pending != t->expect_pending) {
                fprintf(stderr, "durabus-bench: Subscribe said %" PRIu64 " messages are pending, not %" PRIu64 "\n",
                        pending, t->expect_pending);
                return traffic_fail(t, -EBADMSG);
        }
        t->n_subscribed++;
        return traffic_advance(t);
}

static int on_deadline(sd_event_source *source, uint64_t usec, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(source), -ETIMEDOUT);
}

static int on_signal(sd_event_source *source, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(source), -EINTR);
}

static int traffic_connect(Bench *b, Traffic *t) {
        int r;

        r = sd_event_new(&t->event);
        if (r >= 0)
                r = sd_event_add_time_relative(t->event, NULL, CLOCK_MONOTONIC,
                                               (uint64_t) b->settings.timeout_sec * USEC_PER_SEC, 0, on_deadline,
                                               NULL);
        if (r >= 0)
                r = sd_event_add_signal(t->event, NULL, SIGINT, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(t->event, NULL, SIGTERM, on_signal, NULL);
        if (r >= 0 && t->produce)
                r = (t->direct ? connect_direct : connect_bus)(b, t->event, &t->producer);
        if (r < 0)
                return r;

        for (unsigned k = 0; k < t->n_subscribers; k++) {
                Subscriber *s = &t->subscribers[k];

                s->traffic = t;
                (void) snprintf(s->name, sizeof s->name, "sub%u", k);
                r = (t->direct ? connect_direct : connect_bus)(b, t->event, &s->bus);
                if (r >= 0)
                        r = sd_bus_match_signal(s->bus, NULL, NULL, t->path, DURABUS_ENDPOINT_INTERFACE,
                                                t->batch > 1 ? "Messages" : "Message",
                                                t->batch > 1 ? on_messages : on_message, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Runs t to its end; 0 with t->start and t->end set, or negative errno. */
static int traffic_run(Bench *b, Traffic *t) {
        int r;

        r = traffic_connect(b, t);
        if (r < 0)
                return r;

        /* A replay is timed from its Subscribe, live traffic from its first
         * Send, which waits for every subscriber to be attached. */
        if (!t->produce) {
                t->start = now_usec(CLOCK_MONOTONIC);
                t->replied = t->issued = t->total;
        }
        for (unsigned k = 0; k < t->n_subscribers; k++) {
                Subscriber *s = &t->subscribers[k];

                r = sd_bus_call_method_async(s->bus, NULL, t->destination, t->path, DURABUS_ENDPOINT_INTERFACE,
                                             "Subscribe", on_subscribe_reply, s, "sa{sv}", s->name, 2, "window",
                                             "u", (uint32_t) WINDOW, "batch", "u", (uint32_t) (t->batch > 1 ? t->batch : 1));
                if (r < 0)
                        return r;
        }
        r = traffic_fill(t);
        if (r < 0)
                return r;

        return sd_event_loop(t->event);
}

/* ---- measurements ---- */

static void endpoint_path(char path[static 96], const char *endpoint) {
        (void) snprintf(path, 96, DURABUS_ENDPOINT_PATH_PREFIX "/bench/%s", endpoint);
}

/* Drops what a measurement left in durabus, so the next one starts afresh
 * and the state directory holds only what the disk figures are about. */
static int delete_endpoint(Bench *b, unsigned t, const char *endpoint) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *name = NULL;
        int r;

        if (t != DURABUS)
                return 0;
        if (asprintf(&name, "bench.%s", endpoint) < 0)
                return -ENOMEM;
        r = sd_bus_call_method(b->control, DURABUS_BUS_NAME, DURABUS_BROKER_PATH, DURABUS_BROKER_INTERFACE,
                               "DeleteEndpoint", &error, NULL, "s", name);
        return r < 0 ? call_failed("DeleteEndpoint", &error, r) : 0;
}

static double per_second(unsigned count, uint64_t start, uint64_t end) {
        return end > start ? (double) count * (double) USEC_PER_SEC / (double) (end - start) : NAN;
}

/* Runs a flow of traffic to endpoint and sets row to its messages per
 * second: batch above 1 with SendBatch and Messages signals, direct over
 * direct connections. */
static int measure_traffic(Bench *b, unsigned t, const char *endpoint, unsigned n_subscribers, unsigned batch,
                           bool direct, unsigned row) {
        _cleanup_(traffic_done) Traffic traffic = {
                .direct = direct,
                .destination = direct ? NULL : targets[t].bus_name,
                .produce = true,
                .total = b->settings.messages,
                .n_subscribers = n_subscribers,
                .batch = batch,
        };
        int r;

        endpoint_path(traffic.path, endpoint);
        r = traffic_run(b, &traffic);
        if (r < 0)
                return r;
        b->rows[row].value[t] = per_second(traffic.total, traffic.start, traffic.end);
        return delete_endpoint(b, t, endpoint);
}

static int measure_send(Bench *b, unsigned t) {
        return measure_traffic(b, t, "send", 0, 1, false, ROW_SEND);
}

static int measure_end_to_end(Bench *b, unsigned t) {
        return measure_traffic(b, t, "end_to_end", 1, 1, false, ROW_END_TO_END);
}

static int measure_send_batch(Bench *b, unsigned t) {
        return measure_traffic(b, t, "send_batch", 1, SEND_BATCH, false, ROW_SEND_BATCH);
}

/* (d): (b) with the producer and the subscriber on direct connections. */
static int measure_direct(Bench *b, unsigned t) {
        return measure_traffic(b, t, "direct", 1, 1, true, ROW_DIRECT);
}

static int measure_fan_out(Bench *b, unsigned t) {
        return measure_traffic(b, t, "fan_out", FANOUT, 1, false, ROW_FAN_OUT);
}

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p of n sorted values. */
static double percentile(const uint64_t *sorted, unsigned n, unsigned p) {
        size_t rank = ((size_t) n * p + 99) / 100;

        return (double) sorted[rank > 0 ? rank - 1 : 0];
}

static int measure_latency_over(Bench *b, unsigned t, const char *endpoint, bool direct, unsigned row_p50,
                                unsigned row_p99) {
        _cleanup_(freep) uint64_t *latencies = calloc(b->settings.latency_count, sizeof(uint64_t));
        _cleanup_(traffic_done) Traffic traffic = {
                .direct = direct,
                .destination = direct ? NULL : targets[t].bus_name,
                .produce = true,
                .lockstep = true,
                .total = b->settings.latency_count,
                .n_subscribers = 1,
                .latencies = latencies,
        };
        int r;

        if (!latencies)
                return -ENOMEM;
        endpoint_path(traffic.path, endpoint);
        r = traffic_run(b, &traffic);
        if (r < 0)
                return r;

        qsort(latencies, traffic.total, sizeof(uint64_t), compare_u64);
        b->rows[row_p50].value[t] = percentile(latencies, traffic.total, 50);
        b->rows[row_p99].value[t] = percentile(latencies, traffic.total, 99);
        return delete_endpoint(b, t, endpoint);
}

static int measure_latency(Bench *b, unsigned t) {
        return measure_latency_over(b, t, "latency", false, ROW_LATENCY_P50, ROW_LATENCY_P99);
}

static int measure_latency_direct(Bench *b, unsigned t) {
        return measure_latency_over(b, t, "latency_direct", true, ROW_LATENCY_DIRECT_P50, ROW_LATENCY_DIRECT_P99);
}

static int measure_rss(Bench *b, unsigned t) {
        uint64_t kib;
        int r;

        r = status_kib(b->service_pid[t], "VmHWM", &kib);
        if (r < 0)
                return r;
        b->rows[ROW_RSS].value[t] = (double) kib;
        return 0;
}

/* The time from the call that activates target t again to its reply: a
 * read of StoredMessages, so that durabus opens the stored endpoint. */
static int start_once(Bench *b, unsigned t, uint64_t expect, uint64_t *ret_usec) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char path[96];
        uint64_t start, end, stored;
        int r;

        endpoint_path(path, "stored");
        r = stop_service(b, t);
        if (r < 0)
                return r;

        start = now_usec(CLOCK_MONOTONIC);
        r = sd_bus_get_property_trivial(b->control, targets[t].bus_name, path, DURABUS_ENDPOINT_INTERFACE,
                                        "StoredMessages", &error, 't', &stored);
        end = now_usec(CLOCK_MONOTONIC);
        if (r < 0)
                return call_failed("The activating read of StoredMessages", &error, r);
        if (stored != expect) {
                fprintf(stderr, "durabus-bench: %" PRIu64 " messages stored, not %" PRIu64 "\n", stored, expect);
                return -EBADMSG;
        }

        *ret_usec = end - start;
        return watch_service(b, t);
}

/* The median of --startup-repeat starts: one start is a few milliseconds,
 * which whatever else the machine does can double. */
static int measure_startup(Bench *b, unsigned t, uint64_t expect, unsigned row) {
        unsigned n = b->settings.startup_repeat;
        _cleanup_(freep) uint64_t *samples = calloc(n, sizeof(uint64_t));
        int r;

        if (!samples)
                return -ENOMEM;
        for (unsigned i = 0; i < n; i++) {
                r = start_once(b, t, expect, &samples[i]);
                if (r < 0)
                        return r;
        }

        qsort(samples, n, sizeof(uint64_t), compare_u64);
        b->rows[row].value[t] = percentile(samples, n, 50) / 1000.0;
        return 0;
}

/* (h) with nothing stored. For durabus the endpoint of the stored messages
 * is made first, with the durable subscription that keeps them, detached. */
static int measure_startup_empty(Bench *b, unsigned t) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char path[96];
        int r;

        endpoint_path(path, "stored");
        if (t == DURABUS) {
                r = sd_bus_call_method(b->control, DURABUS_BUS_NAME, path, DURABUS_ENDPOINT_INTERFACE, "Subscribe",
                                       &error, NULL, "sa{sv}", "sub0", 0);
                if (r >= 0)
                        r = sd_bus_call_method(b->control, DURABUS_BUS_NAME, path, DURABUS_ENDPOINT_INTERFACE,
                                               "Unsubscribe", &error, NULL, "sa{sv}", "sub0", 0);
                if (r < 0)
                        return call_failed("Subscribing the subscription that keeps the messages", &error, r);
        }
        return measure_startup(b, t, 0, ROW_STARTUP_EMPTY);
}

/* (i) of durabus on --stored messages, pending for the detached
 * subscription that measure_startup_empty() made: the disk they take. */
static int measure_store(Bench *b, unsigned t) {
        _cleanup_(traffic_done) Traffic store = {
                .destination = DURABUS_BUS_NAME,
                .produce = true,
                .total = b->settings.stored,
        };
        uint64_t bytes = 0;
        int r;

        endpoint_path(store.path, "stored");
        r = traffic_run(b, &store);
        if (r < 0)
                return r;
        r = disk_usage(b->state_dir, &bytes);
        if (r < 0)
                return r;
        b->rows[ROW_DISK_PENDING].value[t] = (double) bytes / (double) b->settings.stored;
        return 0;
}

static int measure_startup_stored(Bench *b, unsigned t) {
        return measure_startup(b, t, b->settings.stored, ROW_STARTUP_STORED);
}

/* (g): the subscription attaches again and takes every stored message,
 * acknowledging them; then (i): the peak RSS of the instance that started on
 * them and replayed them, and the disk left once all are acknowledged. */
static int measure_replay(Bench *b, unsigned t) {
        _cleanup_(traffic_done) Traffic replay = {
                .destination = DURABUS_BUS_NAME,
                .total = b->settings.stored,
                .n_subscribers = 1,
                .expect_pending = b->settings.stored,
        };
        uint64_t bytes = 0, kib = 0;
        int r;

        endpoint_path(replay.path, "stored");
        r = traffic_run(b, &replay);
        if (r < 0)
                return r;
        b->rows[ROW_REPLAY].value[t] = per_second(replay.total, replay.start, replay.end);

        r = status_kib(b->service_pid[t], "VmHWM", &kib);
        if (r < 0)
                return r;
        b->rows[ROW_RSS_REPLAY].value[t] = (double) kib;
        /* VmHWM counts the pages of the databases, which GDBM maps. */
        r = status_kib(b->service_pid[t], "RssAnon", &kib);
        if (r < 0)
                return r;
        b->rows[ROW_ANON_REPLAY].value[t] = (double) kib;

        r = disk_usage(b->state_dir, &bytes);
        if (r < 0)
                return r;
        b->rows[ROW_DISK_ACKED].value[t] = (double) bytes / 1024.0;
        return 0;
}

/* The first call to each target activates it, outside any measurement. */
static int warm_up(Bench *b, unsigned t) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(b->control, targets[t].bus_name, DURABUS_BROKER_PATH, "org.freedesktop.DBus.Peer",
                               "Ping", &error, NULL, "");
        if (r < 0)
                return call_failed("Ping", &error, r);
        return watch_service(b, t);
}

typedef int (*Measure)(Bench *b, unsigned t);

/* In the order they run: each on both targets (where both have it) before
 * the next, so that a change of the machine's load falls on both. Each
 * runs for the items it serves (--only): the activation for all, the
 * storing of --stored messages for those that need them, so that, say, the
 * start-up on a million stored messages is measured without the minutes of
 * everything else. */
static const struct {
        Measure measure;
        const char *what;
        const char *items;
        bool durabus_only;
} plan[] = {
        { warm_up, "activation", "abcdefghi" },
        { measure_send, "(a) Send throughput", "a" },
        { measure_end_to_end, "(b) end to end", "b" },
        { measure_send_batch, "(c) end to end in batches", "c", true },
        { measure_direct, "(d) end to end over direct connections", "d", true },
        { measure_fan_out, "(e) fan-out", "e" },
        { measure_latency, "(f) latency", "f" },
        { measure_latency_direct, "(f) latency over direct connections", "f", true },
        { measure_rss, "(i) peak RSS", "i" },
        { measure_startup_empty, "(h) start-up, nothing stored", "h" },
        { measure_store, "(i) storing messages", "ghi", true },
        { measure_startup_stored, "(h) start-up on stored messages", "h", true },
        { measure_replay, "(g) replay", "g", true },
};

/* Whether --only asks for one of items. */
static bool wanted(const Settings *s, const char *items) {
        return !s->only || strpbrk(s->only, items);
}

static void run_plan(Bench *b) {
        for (size_t i = 0; i < ELEMENTSOF(plan); i++)
                for (unsigned t = 0; t < N_TARGETS; t++) {
                        int r;

                        if (b->interrupted || (plan[i].durabus_only && t != DURABUS) ||
                            !wanted(&b->settings, plan[i].items))
                                continue;
                        r = plan[i].measure(b, t);
                        if (r < 0) {
                                fprintf(stderr, "durabus-bench: %s of %s failed: %s\n", plan[i].what,
                                        targets[t].label, strerror(-r));
                                b->failed = true;
                                if (r == -EINTR)
                                        b->interrupted = true;
                        }
                }
}

/* ---- the report ---- */

static void set_row(Bench *b, unsigned row, const char *item, const char *unit, int decimals, const char *fmt,
                    ...) _printf_(6, 7);

static void set_row(Bench *b, unsigned row, const char *item, const char *unit, int decimals, const char *fmt,
                    ...) {
        Row *r = &b->rows[row];
        va_list ap;

        r->item = item;
        r->unit = unit;
        r->decimals = decimals;
        r->value[DURABUS] = r->value[CEILING] = NAN;
        va_start(ap, fmt);
        (void) vsnprintf(r->what, sizeof r->what, fmt, ap);
        va_end(ap);
}

static void init_rows(Bench *b) {
        static const unsigned of_stored_messages[] = {
                ROW_REPLAY, ROW_STARTUP_STORED, ROW_RSS_REPLAY, ROW_ANON_REPLAY, ROW_DISK_PENDING, ROW_DISK_ACKED,
        };
        const Settings *s = &b->settings;

        set_row(b, ROW_SEND, "a", "msg/s", 0, "Send, %u calls in flight", IN_FLIGHT);
        set_row(b, ROW_END_TO_END, "b", "msg/s", 0, "Send to last Ack, 1 subscriber");
        set_row(b, ROW_SEND_BATCH, "c", "msg/s", 0, "SendBatch of %u to last Ack, batch=%u", SEND_BATCH,
                SEND_BATCH);
        set_row(b, ROW_DIRECT, "d", "msg/s", 0, "(b) over direct connections");
        set_row(b, ROW_FAN_OUT, "e", "msg/s", 0, "Send to last Ack, %u subscribers", FANOUT);
        set_row(b, ROW_LATENCY_P50, "f", "us", 0, "Send -> Message, one at a time, p50");
        set_row(b, ROW_LATENCY_P99, "f", "us", 0, "Send -> Message, one at a time, p99");
        set_row(b, ROW_LATENCY_DIRECT_P50, "f", "us", 0, "The same over direct connections, p50");
        set_row(b, ROW_LATENCY_DIRECT_P99, "f", "us", 0, "The same over direct connections, p99");
        set_row(b, ROW_REPLAY, "g", "msg/s", 0, "Replay of %u stored, with Acks", s->stored);
        set_row(b, ROW_STARTUP_EMPTY, "h", "ms", 1, "Start-up, 0 stored");
        set_row(b, ROW_STARTUP_STORED, "h", "ms", 1, "Start-up, %u stored", s->stored);
        set_row(b, ROW_RSS, "i", "KiB", 0, "Peak RSS (VmHWM) through a-f");
        set_row(b, ROW_RSS_REPLAY, "i", "KiB", 0, "Peak RSS, start-up on %u and replay", s->stored);
        set_row(b, ROW_ANON_REPLAY, "i", "KiB", 0, "RssAnon (no mapped files) after the replay");
        set_row(b, ROW_DISK_PENDING, "i", "B/msg", 1, "Disk per message, %u pending", s->stored);
        set_row(b, ROW_DISK_ACKED, "i", "KiB", 0, "Disk of the state dir, all acknowledged");

        b->rows[ROW_SEND_BATCH].absent[CEILING] = "no batching in the zero-storage peer";
        /* The ceiling is what the bus carries; a direct connection has no
         * bus to compare with. */
        b->rows[ROW_DIRECT].absent[CEILING] = b->rows[ROW_LATENCY_DIRECT_P50].absent[CEILING] =
                b->rows[ROW_LATENCY_DIRECT_P99].absent[CEILING] = "no bus involved";
        for (size_t i = 0; i < ELEMENTSOF(of_stored_messages); i++)
                b->rows[of_stored_messages[i]].absent[CEILING] = "stores nothing";
        for (unsigned i = 0; i < N_ROWS; i++)
                if (!wanted(s, b->rows[i].item))
                        b->rows[i].absent[DURABUS] = b->rows[i].absent[CEILING] = "not run (--only)";
}

static const char *absent_reason(const Bench *b, const Row *row, unsigned t) {
        return row->absent[t] ? row->absent[t] : b->interrupted ? "not run" : "failed";
}

static double ratio(const Row *row) {
        return row->value[DURABUS] / row->value[CEILING];
}

static void print_value(const Bench *b, const Row *row, unsigned t) {
        if (isnan(row->value[t]))
                printf(" %15s", absent_reason(b, row, t));
        else
                printf(" %15.*f", row->decimals, row->value[t]);
}

static void print_table(const Bench *b, const char *filesystem) {
        const Settings *s = &b->settings;

        printf("durabus-bench: %u messages of %u bytes (f: %u, g and h: %u%s), %u Sends in flight,\n"
               "Ack every %u ids, window %u; state directory on %s.\n\n",
               s->messages, PAYLOAD_SIZE, s->latency_count, s->stored,
               s->stored < 1000000 ? "; --stored 1000000 for the full figure" : "", IN_FLIGHT, ACK_BATCH, WINDOW,
               filesystem);
        printf("%-4s %-42s %-6s %15s %15s %15s\n", "item", "measurement", "unit", targets[DURABUS].label,
               targets[CEILING].label, "durabus/ceiling");
        for (unsigned i = 0; i < N_ROWS; i++) {
                const Row *row = &b->rows[i];

                printf("%-4s %-42s %-6s", row->item, row->what, row->unit);
                if (row->absent[DURABUS] && row->absent[DURABUS] == row->absent[CEILING]) {
                        printf(" %s\n", row->absent[DURABUS]);
                        continue;
                }
                print_value(b, row, DURABUS);
                print_value(b, row, CEILING);
                if (isnan(ratio(row)))
                        printf("\n");
                else
                        printf(" %15.2f\n", ratio(row));
        }
}

static void json_value(FILE *f, const char *key, double value, const char *absent) {
        if (isnan(value))
                fprintf(f, ", \"%s\": null, \"%s_absent\": \"%s\"", key, key, absent);
        else
                fprintf(f, ", \"%s\": %.6g", key, value);
}

static int write_json(const Bench *b, const char *filesystem) {
        _cleanup_(fclosep) FILE *f = fopen(b->settings.json_path, "we");
        const Settings *s = &b->settings;

        if (!f)
                return -errno;
        fprintf(f,
                "{\n  \"settings\": {\"messages\": %u, \"payload_bytes\": %u, \"sends_in_flight\": %u, "
                "\"ack_batch\": %u, \"window\": %u, \"fan_out_subscribers\": %u, \"latency_messages\": %u, "
                "\"stored_messages\": %u, \"state_filesystem\": \"%s\"},\n  \"results\": [",
                s->messages, PAYLOAD_SIZE, IN_FLIGHT, ACK_BATCH, WINDOW, FANOUT, s->latency_count, s->stored,
                filesystem);
        for (unsigned i = 0; i < N_ROWS; i++) {
                const Row *row = &b->rows[i];

                fprintf(f, "%s\n    {\"item\": \"%s\", \"measurement\": \"%s\", \"unit\": \"%s\"", i ? "," : "",
                        row->item, row->what, row->unit);
                for (unsigned t = 0; t < N_TARGETS; t++)
                        json_value(f, targets[t].label, row->value[t], absent_reason(b, row, t));
                json_value(f, "ratio", ratio(row), "no figure to compare");
                fprintf(f, "}");
        }
        fprintf(f, "\n  ]\n}\n");
        return fflush(f) == 0 ? 0 : -errno;
}

/* ---- the command line ---- */

static void help(void) {
        printf("Usage: durabus-bench [OPTION...]\n"
               "Measures durabus against the ceiling of the bus on a private dbus-daemon.\n\n"
               "  --messages N       messages of a, b and e (default: 20000)\n"
               "  --latency-count N  messages of f, one at a time (default: 2000)\n"
               "  --stored N         messages stored for g, h and i (default: 100000;\n"
               "                     1000000 for the full start-up figure)\n"
               "  --only ITEMS       measure only these items, e.g. 'a' or 'cdf' (default: all)\n"
               "  --startup-repeat N starts per figure of h, the median kept (default: 1)\n"
               "  --json FILE        also write the results to FILE as JSON\n"
               "  --timeout SECONDS  deadline of each measurement (default: 300)\n"
               "  --tmpdir DIR       where the temporary directory goes (default: $TMPDIR,\n"
               "                     else /var/tmp)\n"
               "  --durabusd PATH    the durabusd to measure (default: the build tree's)\n"
               "  --ceiling PATH     the durabus-ceiling to measure against (likewise)\n"
               "  --help             print this help and exit\n");
}

static int parse_count(const char *option, const char *value, unsigned max, unsigned *ret) {
        char *end;
        unsigned long n;

        errno = 0;
        n = strtoul(value, &end, 10);
        if (errno != 0 || end == value || *end || value[0] == '-' || n < 1 || n > max) {
                fprintf(stderr, "durabus-bench: %s takes a number from 1 to %u, not '%s'\n", option, max, value);
                return -EINVAL;
        }
        *ret = (unsigned) n;
        return 0;
}

/* 1 to run, 0 to exit successfully (--help), negative on a usage error. */
static int parse_arguments(int argc, char **argv, Settings *s) {
        enum { ARG_MESSAGES = 0x100, ARG_LATENCY_COUNT, ARG_STORED, ARG_ONLY, ARG_STARTUP_REPEAT, ARG_JSON,
               ARG_TIMEOUT, ARG_TMPDIR, ARG_DURABUSD, ARG_CEILING, ARG_HELP };
        static const struct option options[] = {
                { "messages", required_argument, NULL, ARG_MESSAGES },
                { "latency-count", required_argument, NULL, ARG_LATENCY_COUNT },
                { "stored", required_argument, NULL, ARG_STORED },
                { "only", required_argument, NULL, ARG_ONLY },
                { "startup-repeat", required_argument, NULL, ARG_STARTUP_REPEAT },
                { "json", required_argument, NULL, ARG_JSON },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "tmpdir", required_argument, NULL, ARG_TMPDIR },
                { "durabusd", required_argument, NULL, ARG_DURABUSD },
                { "ceiling", required_argument, NULL, ARG_CEILING },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case ARG_MESSAGES:
                        r = parse_count("--messages", optarg, MESSAGES_MAX, &s->messages);
                        break;
                case ARG_LATENCY_COUNT:
                        r = parse_count("--latency-count", optarg, MESSAGES_MAX, &s->latency_count);
                        break;
                case ARG_STORED:
                        r = parse_count("--stored", optarg, MESSAGES_MAX, &s->stored);
                        break;
                case ARG_ONLY:
                        if (!*optarg || strspn(optarg, "abcdefghi") != strlen(optarg)) {
                                fprintf(stderr, "durabus-bench: --only takes item letters from a to i, not '%s'\n",
                                        optarg);
                                r = -EINVAL;
                        }
                        s->only = optarg;
                        break;
                case ARG_STARTUP_REPEAT:
                        r = parse_count("--startup-repeat", optarg, STARTUP_REPEAT_MAX, &s->startup_repeat);
                        break;
                case ARG_TIMEOUT:
                        r = parse_count("--timeout", optarg, TIMEOUT_MAX_SEC, &s->timeout_sec);
                        break;
                case ARG_JSON:
                        s->json_path = optarg;
                        break;
                case ARG_TMPDIR:
                        s->tmpdir = optarg;
                        break;
                case ARG_DURABUSD:
                        s->durabusd = optarg;
                        break;
                case ARG_CEILING:
                        s->ceiling = optarg;
                        break;
                case ARG_HELP:
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'durabus-bench --help'.\n");
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }
        if (optind < argc) {
                fprintf(stderr, "durabus-bench: unexpected argument '%s'\nTry 'durabus-bench --help'.\n",
                        argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char **argv) {
        _cleanup_(bench_done) Bench b = {
                .settings = {
                        .messages = 20000,
                        .latency_count = 2000,
                        .stored = 100000,
                        .startup_repeat = 1,
                        .timeout_sec = 300,
                        .durabusd = DURABUSD_PATH,
                        .ceiling = CEILING_PATH,
                        .tmpdir = getenv("TMPDIR") ?: "/var/tmp",
                },
                .service_fd = { -1, -1 },
        };
        const char *filesystem;
        sigset_t mask;
        int r;

        r = parse_arguments(argc, argv, &b.settings);
        if (r <= 0)
                return r;

        /* Taken by the signalfd of each measurement's loop, so that Ctrl-C
         * ends the run through bench_done(), which leaves nothing behind. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;

        /* Services orphaned by the daemon's exit come to us, see bench_done(). */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return -errno;

        memset(payload, 'x', PAYLOAD_SIZE);
        init_rows(&b);

        r = bench_setup(&b);
        if (r < 0) {
                b.failed = true;
                return r;
        }
        filesystem = filesystem_name(b.dir);

        run_plan(&b);

        print_table(&b, filesystem);
        if (b.settings.json_path) {
                r = write_json(&b, filesystem);
                if (r < 0) {
                        fprintf(stderr, "durabus-bench: Failed to write '%s': %s\n", b.settings.json_path,
                                strerror(-r));
                        return r;
                }
        }
        return b.failed ? -EIO : 0;
}

int main(int argc, char **argv) {
        int r = run(argc, argv);

        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
