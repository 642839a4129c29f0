/* SPDX-License-Identifier: MIT */
/*
 * durabusd: the durable message bus of the session. run() reads top to
 * bottom: arguments, event loop, signals, store, bus (objects, names),
 * loop; then a last commit and an orderly close of every database.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "access-dbus.h"
#include "activation.h"
#include "broker-dbus.h"
#include "config.h"
#include "context.h"
#include "direct-dbus.h"
#include "endpoint-dbus.h"
#include "names.h"
#include "util.h"

/* How long a starting service waits for the previous one to leave the state
 * directory; the bus gives an activation 25 s in all. */
#define LOCK_TIMEOUT_USEC (10 * 1000 * 1000)

int log_debug_enabled = 0;

/* The command line; options given there win over the configuration file. */
typedef struct Arguments {
        char *config_path;
        char *state_dir;
        char *address;
        bool has_idle_timeout, has_max_payload, no_endpoint_activation;
        uint64_t idle_timeout_sec;
        uint64_t max_payload;
} Arguments;

static void arguments_done(Arguments *a) {
        free(a->config_path);
        free(a->state_dir);
        free(a->address);
}

static void help(void) {
        printf("Usage: durabusd [OPTION...]\n"
               "The durable message bus of the session: org.durabus1 on the session bus.\n"
               "Normally started by D-Bus activation, not by hand.\n\n"
               "  --config FILE             read this configuration file (default:\n"
               "                            $XDG_CONFIG_HOME/durabus/durabus.conf, else\n"
               "                            " DURABUS_SYSTEM_CONFIG ")\n"
               "  --state-dir DIR           where the databases live\n"
               "                            (default: $XDG_STATE_HOME/durabus)\n"
               "  --idle-timeout SECONDS    exit after this long without calls or attached\n"
               "                            subscriptions; 0 never (default: %d)\n"
               "  --max-payload BYTES       largest payload accepted by Send (default: %d)\n"
               "  --no-endpoint-activation  write no activation files for endpoint bus names\n"
               "  --address ADDRESS         connect to this bus instead of the session bus\n"
               "  --verbose                 log debug messages\n"
               "  --version                 print the version and exit\n"
               "  --help                    print this help and exit\n",
               CONFIG_IDLE_TIMEOUT_DEFAULT_SEC, CONFIG_MAX_PAYLOAD_DEFAULT);
}

static int parse_number(const char *option, const char *value, uint64_t max, uint64_t *ret) {
        _cleanup_(freep) char *problem = NULL;
        int r;

        r = config_parse_number(option, value, max, ret, &problem);
        if (r < 0)
                fprintf(stderr, "durabusd: %s\nTry 'durabusd --help'.\n", problem);
        return r;
}

static int set_string(char **field, const char *value) {
        free(*field);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

/* 1 to run, 0 to exit successfully (--help, --version), negative on error. */
static int parse_arguments(int argc, char **argv, Arguments *a) {
        enum { ARG_CONFIG = 0x100, ARG_STATE_DIR, ARG_IDLE_TIMEOUT, ARG_MAX_PAYLOAD, ARG_NO_ENDPOINT_ACTIVATION,
               ARG_ADDRESS, ARG_VERBOSE, ARG_VERSION, ARG_HELP };
        static const struct option options[] = {
                { "config", required_argument, NULL, ARG_CONFIG },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "idle-timeout", required_argument, NULL, ARG_IDLE_TIMEOUT },
                { "max-payload", required_argument, NULL, ARG_MAX_PAYLOAD },
                { "no-endpoint-activation", no_argument, NULL, ARG_NO_ENDPOINT_ACTIVATION },
                { "address", required_argument, NULL, ARG_ADDRESS },
                { "verbose", no_argument, NULL, ARG_VERBOSE },
                { "version", no_argument, NULL, ARG_VERSION },
                { "help", no_argument, NULL, ARG_HELP },
                {},
        };
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case ARG_CONFIG:
                        r = set_string(&a->config_path, optarg);
                        break;
                case ARG_STATE_DIR:
                        r = set_string(&a->state_dir, optarg);
                        break;
                case ARG_IDLE_TIMEOUT:
                        r = parse_number("--idle-timeout", optarg, CONFIG_IDLE_TIMEOUT_MAX_SEC,
                                         &a->idle_timeout_sec);
                        a->has_idle_timeout = true;
                        break;
                case ARG_MAX_PAYLOAD:
                        r = parse_number("--max-payload", optarg, CONFIG_MAX_PAYLOAD_MAX, &a->max_payload);
                        a->has_max_payload = true;
                        break;
                case ARG_NO_ENDPOINT_ACTIVATION:
                        a->no_endpoint_activation = true;
                        break;
                case ARG_ADDRESS:
                        r = set_string(&a->address, optarg);
                        break;
                case ARG_VERBOSE:
                        log_debug_enabled = 1;
                        break;
                case ARG_VERSION:
                        printf("durabusd %s\n", DURABUS_VERSION);
                        return 0;
                case ARG_HELP:
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'durabusd --help'.\n");
                        return -EINVAL;
                }
                if (r < 0)
                        return r;
        }

        if (optind < argc) {
                fprintf(stderr, "durabusd: unexpected argument '%s'\nTry 'durabusd --help'.\n", argv[optind]);
                return -EINVAL;
        }

        return 1;
}

/* $XDG_<name>_HOME/suffix, or ~/fallback/suffix per the XDG base directories. */
static char *xdg_path(const char *variable, const char *fallback, const char *suffix) {
        const char *base = getenv(variable), *home = getenv("HOME");
        char *path;

        if (base && base[0] == '/')
                return asprintf(&path, "%s/%s", base, suffix) < 0 ? NULL : path;
        if (!home || home[0] != '/')
                return NULL;
        return asprintf(&path, "%s/%s/%s", home, fallback, suffix) < 0 ? NULL : path;
}

/* Tokens are secrets: a file that holds one should be for our user's eyes
 * only. A warning, not a refusal, since the file is the user's own. */
static void warn_if_tokens_exposed(const Config *config, const char *path) {
        struct stat st;

        for (size_t i = 0; i < config->policy.n_clients; i++)
                if (config->policy.clients[i].match == CLIENT_MATCH_TOKEN) {
                        if (stat(path, &st) >= 0 && (st.st_mode & 0077))
                                log_warning("'%s' holds tokens and others may read it (mode %04o): chmod 600 it",
                                            path, (unsigned) (st.st_mode & 07777));
                        return;
                }
}

/* The configuration: defaults, then the file (the one named on the command
 * line, else the user's, else the system default), then the command line. */
static int load_config(const Arguments *a, Config *ret) {
        _cleanup_(freep) char *user = NULL, *problem = NULL;
        Config config = config_defaults();
        const char *path = DURABUS_SYSTEM_CONFIG;
        bool required = true;
        int r;

        user = xdg_path("XDG_CONFIG_HOME", ".config", "durabus/durabus.conf");
        if (a->config_path)
                path = a->config_path;
        else if (user && access(user, F_OK) == 0)
                path = user;
        else
                /* Only the system default may be missing. */
                required = false;
        r = config_load(&config, path, required, &problem);
        if (r < 0) {
                log_error("Invalid configuration: %s", problem);
                return r;
        }
        warn_if_tokens_exposed(&config, path);

        if (a->has_idle_timeout)
                config.idle_timeout_sec = a->idle_timeout_sec;
        if (a->has_max_payload)
                config.max_payload = a->max_payload;
        if (a->no_endpoint_activation)
                config.endpoint_activation = false;

        *ret = config;
        return 0;
}

static void context_done(Context *c) {
        int r;

        if (c->committer)
                committer_run(c->committer);
        if (c->broker) {
                r = broker_close_all(c->broker);
                if (r < 0)
                        log_error("Not every endpoint was closed in order; they are repaired at the next start");
        }
        c->committer = committer_free(c->committer);
        access_dbus_done(c);
        direct_dbus_done(c);
        c->idle_timer = sd_event_source_disable_unref(c->idle_timer);
        c->sweep_timer = sd_event_source_disable_unref(c->sweep_timer);
        c->bus = sd_bus_flush_close_unref(c->bus);
        c->broker = broker_free(c->broker);
        c->event = sd_event_unref(c->event);
        free(c->state_dir);
        free(c->services_dir);
        free(c->exec_line);
        g_strfreev(c->discard_oldest);
        g_strfreev(c->broadcast);
        policy_done(&c->policy);
}

/*
 * An orderly exit: give up the names first, so that new calls start a new
 * service instead of reaching this one; then handle what was already sent to
 * us, so no call that raced the exit is dropped; then leave the loop.
 */
static void begin_exit(Context *c) {
        int r;

        if (c->exiting)
                return;
        c->exiting = true;

        broker_dbus_release_names(c);
        while ((r = sd_bus_process(c->bus, NULL)) > 0)
                ;
        if (r < 0)
                log_warning("Failed to process the last messages: %s", strerror(-r));

        committer_run(c->committer);
        (void) sd_bus_flush(c->bus);
        (void) sd_event_exit(c->event, 0);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_info("Received %s, exiting", strsignal((int) si->ssi_signo));
        begin_exit(userdata);
        return 0;
}

static int restart_idle_timer(Context *c) {
        int r;

        r = sd_event_source_set_time_relative(c->idle_timer, c->idle_timeout_usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->idle_timer, SD_EVENT_ONESHOT);
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Context *c = userdata;

        if (c->n_attached == 0 && !committer_busy(c->committer) && !access_dbus_busy(c) && !direct_dbus_busy(c)) {
                log_info("Idle for %" PRIu64 " s, exiting", c->idle_timeout_usec / 1000000);
                begin_exit(c);
                return 0;
        }

        return restart_idle_timer(c);
}

/* Every method call starts the idle period anew. */
static int on_message(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;

        if (c->idle_timer && sd_bus_message_is_method_call(m, NULL, NULL) > 0)
                (void) restart_idle_timer(c);
        return 0;
}

static int connect_bus(const char *address, sd_bus **ret) {
        _cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
        int r;

        /* Under activation the bus tells us its address; a daemon started
         * for tests has no DBUS_SESSION_BUS_ADDRESS of its own to pass on. */
        if (!address)
                address = getenv("DBUS_STARTER_ADDRESS");
        if (!address)
                return sd_bus_open_user(ret);

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r < 0)
                return r;
        r = sd_bus_set_bus_client(bus, true);
        if (r < 0)
                return r;
        r = sd_bus_start(bus);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(bus);
        return 0;
}

static int setup_context(Context *c, const Arguments *a, Config *config, char **argv) {
        _cleanup_(freep) char *exe = NULL;
        int r;

        c->max_payload = config->max_payload;
        c->max_stored_messages = config->max_stored_messages;
        c->max_stored_bytes = config->max_stored_bytes;
        c->max_endpoints = config->max_endpoints;
        c->max_subscriptions = config->max_subscriptions;
        c->max_attached = config->max_attached;
        c->discard_oldest = TAKE_PTR(config->discard_oldest);
        c->broadcast = TAKE_PTR(config->broadcast);
        c->policy = config->policy;
        config->policy = (Policy) {};
        c->uid = geteuid();
        access_dbus_init(c);
        c->idle_timeout_usec = config->idle_timeout_sec * 1000000;

        r = direct_dbus_init(c);
        if (r < 0)
                return log_error_errno(r, "Failed to set up direct connections: %m");

        c->state_dir = a->state_dir ? strdup(a->state_dir) : xdg_path("XDG_STATE_HOME", ".local/state", "durabus");
        if (!c->state_dir)
                return log_error_errno(-EINVAL, "No state directory: neither $XDG_STATE_HOME nor $HOME is set");

        if (config->endpoint_activation) {
                c->services_dir = xdg_path("XDG_DATA_HOME", ".local/share", "dbus-1/services");
                if (!c->services_dir)
                        log_warning("Neither $XDG_DATA_HOME nor $HOME is set: no activation files for endpoints");
                exe = realpath("/proc/self/exe", NULL);
                if (!exe)
                        return log_error_errno(-errno, "Failed to find our own executable: %m");
                c->exec_line = activation_exec_line(exe, argv + 1);
                if (!c->exec_line)
                        return log_oom();
        }

        r = broker_new(c->state_dir, LOCK_TIMEOUT_USEC, &c->broker);
        if (r == -EBUSY)
                return log_error_errno(r, "State directory '%s' is in use by another durabusd", c->state_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to open state directory '%s': %m", c->state_dir);

        return 0;
}

static int setup_bus(Context *c, const char *address) {
        int r;

        r = connect_bus(address, &c->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the bus: %m");

        r = committer_new(c->event, endpoint_dbus_deliver, c, &c->committer);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the group commit: %m");

        r = broker_dbus_register(c, c->bus);
        if (r >= 0)
                r = endpoint_dbus_register(c, c->bus);
        if (r >= 0)
                r = sd_bus_add_filter(c->bus, NULL, on_message, c);
        if (r < 0)
                return log_error_errno(r, "Failed to register the objects: %m");

        r = sd_bus_attach_event(c->bus, c->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");

        /* A lost bus means no caller can reach us any more. */
        r = sd_bus_set_exit_on_disconnect(c->bus, true);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the bus connection: %m");

        r = broker_dbus_publish_all(c);
        if (r < 0)
                return log_error_errno(r, "Failed to publish the endpoints: %m");

        /* Last, once everything answers: owning the name is what makes the
         * bus hand us the calls that activated us. */
        r = sd_bus_request_name(c->bus, DURABUS_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to own the bus name " DURABUS_BUS_NAME ": %m");

        return 0;
}

static int run(int argc, char **argv) {
        _cleanup_(arguments_done) Arguments a = {};
        _cleanup_(context_done) Context c = {};
        _cleanup_(config_done) Config config = {};
        sigset_t mask;
        int r;

        r = parse_arguments(argc, argv, &a);
        if (r <= 0)
                return r;

        r = load_config(&a, &config);
        if (r < 0)
                return r;

        r = sd_event_default(&c.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m");

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %m");
        r = sd_event_add_signal(c.event, NULL, SIGTERM, on_signal, &c);
        if (r >= 0)
                r = sd_event_add_signal(c.event, NULL, SIGINT, on_signal, &c);
        if (r < 0)
                return log_error_errno(r, "Failed to handle SIGTERM and SIGINT: %m");

        r = setup_context(&c, &a, &config, argv);
        if (r < 0)
                return r;

        r = setup_bus(&c, a.address);
        if (r < 0)
                return r;

        if (c.idle_timeout_usec > 0) {
                r = sd_event_add_time_relative(c.event, &c.idle_timer, CLOCK_MONOTONIC, c.idle_timeout_usec, 0,
                                               on_idle_timer, &c);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up the idle timer: %m");
        }

        log_info("Serving %u endpoints from '%s'", g_hash_table_size(c.broker->endpoints), c.state_dir);
        return sd_event_loop(c.event);
}

int main(int argc, char **argv) {
        int r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : r;
}
