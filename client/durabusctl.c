/* SPDX-License-Identifier: MIT */

/*
 * durabusctl: the command-line client of durabus, the durable message bus of
 * the session. Each command is a few method calls on org.durabus1; `listen`
 * runs an sd-event loop that prints the Message signals of one subscription.
 *
 * The client speaks only the public D-Bus API (the XML in introspection/) and
 * shares no code with the service.
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#define PROGRAM "durabusctl"

#define DURABUS_BUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"
#define BROKER_IFACE "org.durabus1.Broker"
#define ENDPOINT_IFACE "org.durabus1.Endpoint"
#define ENDPOINT_PATH_PREFIX "/org/durabus1/endpoint/"
#define ENDPOINT_NAME_MAX 200
#define ERROR_INVALID_NAME "org.durabus1.Error.InvalidName"

#define EXIT_USAGE 2
#define USEC_PER_SEC UINT64_C(1000000)

/* Acknowledgements of a burst of messages travel in one Ack call, but a long
 * replay is still confirmed in slices of this size rather than all at the
 * end, so an interrupted listener leaves little to be delivered again. */
#define ACK_BATCH_MAX 256

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

/* Returns the pointer and leaves NULL behind, so the cleanup that guarded it
 * no longer frees it. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _p_ = (p);   \
                (p) = NULL;                \
                _p_;                       \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static void strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

/* ---- Reporting ----------------------------------------------------------
 * Every failure is printed once, where it happens; callers only pass the
 * negative errno up, and main() turns it into the exit code. */

_printf_(1, 2) static int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry '" PROGRAM " --help'.\n", stderr);
        return -EINVAL;
}

_printf_(2, 3) static int log_errno(int r, const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, ": %s\n", strerror(-r));
        return r;
}

static int log_oom(void) {
        fputs(PROGRAM ": Out of memory\n", stderr);
        return -ENOMEM;
}

/* The service's messages already name what was wrong, so they are shown
 * as they came, with the error name that scripts can match on. */
static int log_bus_error(int r, const sd_bus_error *error, const char *method) {
        if (sd_bus_error_is_set(error))
                fprintf(stderr, PROGRAM ": %s (%s)\n", error->message ? error->message : method, error->name);
        else
                log_errno(r, "%s failed", method);
        return r;
}

/* ---- Checking arguments ------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;

        /* strtoull() would accept leading blanks and a minus sign that
         * wraps around; a count or a number of seconds has neither. */
        if (*s < '0' || *s > '9')
                return -EINVAL;

        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -errno;
        if (*end != '\0')
                return -EINVAL;

        *ret = v;
        return 0;
}

/* sd-bus refuses to append a string that is not valid UTF-8 with a bare
 * -EINVAL; checking first lets us say which argument is at fault. The rules
 * are sd-bus's: no overlong forms, no surrogates, nothing above U+10FFFF and
 * no noncharacters. */
static bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                uint32_t c;
                size_t len;

                if (*p < 0x80) {
                        p++;
                        continue;
                }

                if ((*p & 0xE0) == 0xC0) {
                        len = 2;
                        c = *p & 0x1F;
                } else if ((*p & 0xF0) == 0xE0) {
                        len = 3;
                        c = *p & 0x0F;
                } else if ((*p & 0xF8) == 0xF0) {
                        len = 4;
                        c = *p & 0x07;
                } else
                        return false;

                /* A continuation byte is never NUL, so this also stops at a
                 * sequence cut short by the end of the string. */
                for (size_t i = 1; i < len; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        c = (c << 6) | (p[i] & 0x3F);
                }

                if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000))
                        return false;
                if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || (c >= 0xFDD0 && c <= 0xFDEF) ||
                    (c & 0xFFFE) == 0xFFFE)
                        return false;

                p += len;
        }

        return true;
}

static int check_utf8(const char *s, const char *what) {
        if (utf8_is_valid(s))
                return 0;

        fprintf(stderr, PROGRAM ": The %s is not valid UTF-8; D-Bus carries only UTF-8 text\n", what);
        return -EINVAL;
}

static bool is_name_start_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* The service decides what a valid endpoint name is. The client checks the
 * same rule first because an invalid name may not even make a valid object
 * path, which sd-bus would refuse with a bare -EINVAL; it reports it as the
 * service would, under the same error name. */
static int check_endpoint_name(const char *name) {
        char problem[80];
        size_t len = strlen(name), element = 1;
        bool at_start = true;

        if (len == 0)
                snprintf(problem, sizeof problem, "the name is empty");
        else if (len > ENDPOINT_NAME_MAX)
                snprintf(problem, sizeof problem, "%zu characters, more than %d", len, ENDPOINT_NAME_MAX);
        else {
                problem[0] = '\0';

                for (const char *p = name; *p && problem[0] == '\0'; p++) {
                        if (*p == '.') {
                                if (at_start)
                                        snprintf(problem, sizeof problem, "element %zu is empty", element);
                                element++;
                                at_start = true;
                        } else if (at_start && is_digit(*p))
                                snprintf(problem, sizeof problem, "element %zu starts with a digit", element);
                        else if (!is_name_start_char(*p) && !is_digit(*p))
                                snprintf(problem, sizeof problem,
                                         "element %zu has a character outside [A-Za-z0-9_]", element);
                        else
                                at_start = false;
                }

                if (problem[0] == '\0' && at_start)
                        snprintf(problem, sizeof problem, "element %zu is empty", element);
                if (problem[0] == '\0')
                        return 0;
        }

        fprintf(stderr, PROGRAM ": Invalid endpoint name '%s': %s (%s)\n", name, problem, ERROR_INVALID_NAME);
        return -EINVAL;
}

/* Checks the endpoint name and returns its object path in *ret_path, which
 * the caller frees; "app.jobs" becomes /org/durabus1/endpoint/app/jobs. */
static int endpoint_path(const char *name, char **ret_path) {
        char *path;
        int r;

        r = check_endpoint_name(name);
        if (r < 0)
                return r;

        if (asprintf(&path, "%s%s", ENDPOINT_PATH_PREFIX, name) < 0)
                return log_oom();

        for (char *p = path + strlen(ENDPOINT_PATH_PREFIX); *p; p++)
                if (*p == '.')
                        *p = '/';

        *ret_path = path;
        return 0;
}

/* ---- Talking to the service --------------------------------------------- */

typedef struct Args {
        const char *address;            /* NULL: the session bus */
        uint64_t timeout_usec;          /* 0: sd-bus's default */
        const char *id;                 /* send --id; NULL lets the service pick */
        const char *subscriber;         /* NULL when not given */
        bool ack;
        uint64_t count;                 /* 0: listen until interrupted */
        const char *start;              /* NULL: the service's default */
        bool window_set;
        uint32_t window;
        char **positional;              /* NULL-terminated, after the command's options */
} Args;

static int bus_connect(const Args *args, sd_bus **ret_bus) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (args->address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return log_errno(r, "Failed to allocate a bus connection");

                r = sd_bus_set_address(bus, args->address);
                if (r < 0)
                        return log_errno(r, "Invalid bus address '%s'", args->address);

                /* A message bus, not a peer: we need Hello, a unique name
                 * and activation of org.durabus1. */
                r = sd_bus_set_bus_client(bus, 1);
                if (r < 0)
                        return log_errno(r, "Failed to make the connection a bus client");

                r = sd_bus_start(bus);
                if (r < 0)
                        return log_errno(r, "Failed to connect to the bus at '%s'", args->address);
        } else {
                r = sd_bus_open_user(&bus);
                if (r < 0)
                        return log_errno(r, "Failed to connect to the session bus");
        }

        if (args->timeout_usec > 0) {
                r = sd_bus_set_method_call_timeout(bus, args->timeout_usec);
                if (r < 0)
                        return log_errno(r, "Failed to set the method call timeout");
        }

        *ret_bus = TAKE_PTR(bus);
        return 0;
}

/* Attaches the subscription to this connection. On success, when
 * ret_service is not NULL, it receives the unique name of the service
 * connection that answered (the sender of the Message signals to come, NULL
 * on a peer-to-peer connection), which the caller frees. */
static int call_subscribe(sd_bus *bus, const char *path, const char *subscriber, const char *start, bool window_set,
                          uint32_t window, char **ret_service) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *sender;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "Subscribe");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", subscriber);
        if (r >= 0)
                r = sd_bus_message_open_container(call, 'a', "{sv}");
        if (r >= 0 && start)
                r = sd_bus_message_append(call, "{sv}", "start", "s", start);
        if (r >= 0 && window_set)
                r = sd_bus_message_append(call, "{sv}", "window", "u", window);
        if (r >= 0)
                r = sd_bus_message_close_container(call);
        if (r < 0)
                return log_errno(r, "Failed to build the Subscribe call");

        r = sd_bus_call(bus, call, 0, &error, &reply);
        if (r < 0)
                return log_bus_error(r, &error, "Subscribe");

        if (ret_service) {
                sender = sd_bus_message_get_sender(reply);
                if (!sender) {
                        *ret_service = NULL;
                        return 0;
                }

                *ret_service = strdup(sender);
                if (!*ret_service)
                        return log_oom();
        }

        return 0;
}

static int call_unsubscribe(sd_bus *bus, const char *path, const char *subscriber) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        /* No "forget": the subscription stays durable and keeps collecting
         * messages for the next listener. */
        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "Unsubscribe", &error, NULL, "sa{sv}",
                               subscriber, 0);
        if (r < 0)
                return log_bus_error(r, &error, "Unsubscribe");

        return 0;
}

/* ids is NULL-terminated. */
static int call_ack(sd_bus *bus, const char *path, const char *subscriber, char **ids, uint32_t *ret_acked) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        uint32_t acked;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "Ack");
        if (r >= 0)
                r = sd_bus_message_append(call, "s", subscriber);
        if (r >= 0)
                r = sd_bus_message_append_strv(call, ids);
        if (r < 0)
                return log_errno(r, "Failed to build the Ack call");

        r = sd_bus_call(bus, call, 0, &error, &reply);
        if (r < 0)
                return log_bus_error(r, &error, "Ack");

        r = sd_bus_message_read(reply, "u", &acked);
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of Ack");

        if (ret_acked)
                *ret_acked = acked;
        return 0;
}

/* ---- send, endpoints, clear, delete, ack -------------------------------- */

static int verb_send(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *path = NULL;
        const char *payload = args->positional[1], *id;
        uint64_t seq;
        int r;

        r = endpoint_path(args->positional[0], &path);
        if (r < 0)
                return r;
        r = check_utf8(payload, "payload");
        if (r < 0)
                return r;
        if (args->id) {
                r = check_utf8(args->id, "message id");
                if (r < 0)
                        return r;
        }

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "Send", &error, &reply, "ssa{sv}",
                               args->id ? args->id : "", payload, 0);
        if (r < 0)
                return log_bus_error(r, &error, "Send");

        r = sd_bus_message_read(reply, "st", &id, &seq);
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of Send");

        printf("%s %" PRIu64 "\n", id, seq);
        return 0;
}

static int verb_endpoints(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name, *path;
        int r;

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, BROKER_PATH, BROKER_IFACE, "ListEndpoints", &error, &reply,
                               NULL);
        if (r < 0)
                return log_bus_error(r, &error, "ListEndpoints");

        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of ListEndpoints");

        while ((r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0)
                printf("%s %s\n", name, path);
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of ListEndpoints");

        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of ListEndpoints");

        return 0;
}

static int verb_clear(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *path = NULL;
        uint64_t removed;
        int r;

        r = endpoint_path(args->positional[0], &path);
        if (r < 0)
                return r;

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "ClearAll", &error, &reply, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "ClearAll");

        r = sd_bus_message_read(reply, "t", &removed);
        if (r < 0)
                return log_errno(r, "Failed to parse the reply of ClearAll");

        printf("%" PRIu64 "\n", removed);
        return 0;
}

static int verb_delete(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = args->positional[0];
        int r;

        r = check_endpoint_name(name);
        if (r < 0)
                return r;

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint", &error, NULL,
                               "s", name);
        if (r < 0)
                return log_bus_error(r, &error, "DeleteEndpoint");

        return 0;
}

static int verb_ack(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(freep) char *path = NULL;
        char **ids = args->positional + 1;
        uint32_t acked;
        int r;

        r = endpoint_path(args->positional[0], &path);
        if (r < 0)
                return r;
        for (char **i = ids; *i; i++) {
                r = check_utf8(*i, "message id");
                if (r < 0)
                        return r;
        }

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        /* The service takes acknowledgements only from the connection the
         * subscription is attached to. Window 1 keeps the replay that starts
         * with it down to a single Message signal, which sd-bus queues and
         * drops with the connection: nobody here prints it, and it stays
         * unacknowledged unless its id is among ours. */
        r = call_subscribe(bus, path, args->subscriber, NULL, true, 1, NULL);
        if (r < 0)
                return r;

        r = call_ack(bus, path, args->subscriber, ids, &acked);
        if (r < 0) {
                /* Closing the connection would detach it too; detaching in
                 * order is only a courtesy, and the Ack failure is what the
                 * user needs to read. */
                (void) call_unsubscribe(bus, path, args->subscriber);
                return r;
        }

        r = call_unsubscribe(bus, path, args->subscriber);
        if (r < 0)
                return r;

        printf("%" PRIu32 "\n", acked);
        return 0;
}

/* ---- listen ------------------------------------------------------------- */

typedef struct Listener {
        const Args *args;
        sd_bus *bus;
        sd_event *event;
        const char *path;
        const char *subscriber;         /* "" for an ephemeral subscription */
        bool subscribed;
        char *service;                  /* unique name of the connection that answered Subscribe */
        bool failed;                    /* a failure was printed; the loop exits with it */
        bool finished;                  /* unsubscribed, the loop is about to exit */
        uint64_t received;
        char **unacked;                 /* printed, not acknowledged yet; NULL-terminated */
        size_t n_unacked;
        sd_event_source *ack_source;
} Listener;

static void listener_done(Listener *l) {
        sd_event_source_unref(l->ack_source);
        strv_free(l->unacked);
        free(l->service);
}

/* A handler that fails must not return the error to sd-bus, which would
 * close the connection without a word; it ends the loop with it instead. */
static int listener_fail(Listener *l, int r) {
        l->failed = true;
        (void) sd_event_exit(l->event, r);
        return 0;
}

static int listener_flush_acks(Listener *l) {
        int r;

        if (l->n_unacked == 0)
                return 0;

        r = call_ack(l->bus, l->path, l->subscriber, l->unacked, NULL);
        if (r < 0)
                return r;

        strv_free(l->unacked);
        l->unacked = NULL;
        l->n_unacked = 0;
        return 0;
}

static int listener_queue_ack(Listener *l, const char *id) {
        char **ids;
        int r;

        ids = reallocarray(l->unacked, l->n_unacked + 2, sizeof(char *));
        if (!ids)
                return log_oom();
        l->unacked = ids;

        ids[l->n_unacked] = strdup(id);
        if (!ids[l->n_unacked])
                return log_oom();
        ids[++l->n_unacked] = NULL;

        if (l->n_unacked >= ACK_BATCH_MAX)
                return listener_flush_acks(l);

        /* The ack source has idle priority: it runs once the bus has nothing
         * more ready for us, so a burst is acknowledged in one call. */
        r = sd_event_source_set_enabled(l->ack_source, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_errno(r, "Failed to schedule an acknowledgement");

        return 0;
}

static int on_ack_due(_unused_ sd_event_source *s, void *userdata) {
        Listener *l = userdata;
        int r;

        r = listener_flush_acks(l);
        if (r < 0)
                return listener_fail(l, r);

        return 0;
}

/* Ends listening in order: confirms what was printed, detaches the
 * subscription rather than just dropping the connection, and leaves the
 * loop with exit status 0. This has to happen inside the loop: sd-bus
 * closes a connection when the loop it is attached to exits. */
static int listener_finish(Listener *l) {
        int r;

        if (l->finished)
                return 0;
        l->finished = true;

        r = listener_flush_acks(l);
        if (r >= 0)
                r = call_unsubscribe(l->bus, l->path, l->subscriber);
        if (r < 0)
                return listener_fail(l, r);

        (void) sd_event_exit(l->event, 0);
        return 0;
}

static int on_signal(_unused_ sd_event_source *s, _unused_ const struct signalfd_siginfo *si, void *userdata) {
        return listener_finish(userdata);
}

static bool listener_has_enough(const Listener *l) {
        return l->args->count > 0 && l->received >= l->args->count;
}

static int on_message(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        Listener *l = userdata;
        const char *subscriber, *id, *payload;
        uint64_t seq;
        int r;

        /* Message signals are unicast, and match rules do not stop another
         * peer from sending us one: only the connection that answered our
         * Subscribe speaks for the service. */
        if (!l->subscribed || !streq_ptr(sd_bus_message_get_sender(m), l->service))
                return 0;

        /* Signals queued behind the last one --count asked for, or behind
         * an interruption, stay unprinted and unacknowledged, for the next
         * listener. */
        if (l->finished || listener_has_enough(l))
                return 0;

        r = sd_bus_message_read(m, "ssts", &subscriber, &id, &seq, &payload);
        if (r < 0)
                return listener_fail(l, log_errno(r, "Failed to parse a Message signal"));
        if (!streq(subscriber, l->subscriber))
                return 0;

        /* Acknowledge only what surely reached standard output. */
        if (printf("%" PRIu64 " %s %s\n", seq, id, payload) < 0 || fflush(stdout) != 0)
                return listener_fail(l, log_errno(errno > 0 ? -errno : -EIO, "Failed to write to standard output"));
        l->received++;

        if (l->args->ack) {
                r = listener_queue_ack(l, id);
                if (r < 0)
                        return listener_fail(l, r);
        }

        if (listener_has_enough(l))
                return listener_finish(l);

        return 0;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        Listener *l = userdata;
        const char *name, *old_owner, *new_owner;
        int r;

        if (!streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus"))
                return 0;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0)
                return listener_fail(l, log_errno(r, "Failed to parse a NameOwnerChanged signal"));

        /* Activation, or an idle exit of an earlier instance racing our
         * Subscribe, may also show up here; only the departure of the very
         * connection that holds our subscription ends the listener. */
        if (!l->subscribed || !l->service || !streq(old_owner, l->service))
                return 0;

        fprintf(stderr, PROGRAM ": The durabus service (%s, %s) went away\n", DURABUS_BUS_NAME, l->service);
        return listener_fail(l, -ECONNRESET);
}

static int on_disconnected(_unused_ sd_bus_message *m, void *userdata, _unused_ sd_bus_error *ret_error) {
        Listener *l = userdata;

        fputs(PROGRAM ": Lost the connection to the bus\n", stderr);
        return listener_fail(l, -ECONNRESET);
}

static int verb_listen(const Args *args) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *disconnected_slot = NULL, *owner_slot = NULL,
                                                   *message_slot = NULL;
        _cleanup_(listener_done) Listener l = {
                .args = args,
                .subscriber = args->subscriber ? args->subscriber : "",
        };
        _cleanup_(freep) char *path = NULL;
        sigset_t mask;
        int r;

        r = endpoint_path(args->positional[0], &path);
        if (r < 0)
                return r;
        l.path = path;

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;
        l.bus = bus;

        r = sd_event_new(&event);
        if (r < 0)
                return log_errno(r, "Failed to create an event loop");
        l.event = event;

        /* Blocked before Subscribe, so a signal that comes early waits in
         * the signalfd and still ends listening through an Unsubscribe. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_errno(-errno, "Failed to block SIGINT and SIGTERM");

        r = sd_event_add_signal(event, NULL, SIGINT, on_signal, &l);
        if (r >= 0)
                r = sd_event_add_signal(event, NULL, SIGTERM, on_signal, &l);
        if (r < 0)
                return log_errno(r, "Failed to watch SIGINT and SIGTERM");

        if (args->ack) {
                r = sd_event_add_defer(event, &l.ack_source, on_ack_due, &l);
                if (r >= 0)
                        r = sd_event_source_set_priority(l.ack_source, SD_EVENT_PRIORITY_IDLE);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l.ack_source, SD_EVENT_OFF);
                if (r < 0)
                        return log_errno(r, "Failed to set up acknowledgements");
        }

        r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_errno(r, "Failed to attach the bus to the event loop");

        r = sd_bus_match_signal(bus, &disconnected_slot, "org.freedesktop.DBus.Local", NULL,
                                "org.freedesktop.DBus.Local", "Disconnected", on_disconnected, &l);
        if (r < 0)
                return log_errno(r, "Failed to watch the bus connection");

        r = sd_bus_add_match(bus, &owner_slot,
                             "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                             "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                             "arg0='" DURABUS_BUS_NAME "'",
                             on_name_owner_changed, &l);
        if (r < 0)
                return log_errno(r, "Failed to watch the owner of %s", DURABUS_BUS_NAME);

        /* Installed before Subscribe: the replay starts right after the
         * reply, and whatever arrives while sd_bus_call() waits for that
         * reply is queued, then dispatched to this match by the loop. */
        r = sd_bus_match_signal(bus, &message_slot, DURABUS_BUS_NAME, path, ENDPOINT_IFACE, "Message", on_message,
                                &l);
        if (r < 0)
                return log_errno(r, "Failed to watch Message signals");

        r = call_subscribe(bus, path, l.subscriber, args->start, args->window_set, args->window, &l.service);
        if (r < 0)
                return r;
        l.subscribed = true;

        r = sd_event_loop(event);
        if (r < 0 && !l.failed)
                log_errno(r, "The event loop failed");

        return r;
}

/* ---- Command line ------------------------------------------------------- */

enum {
        ARG_VERSION = 0x100,
        ARG_ADDRESS,
        ARG_TIMEOUT,
        ARG_ID,
        ARG_SUBSCRIBER,
        ARG_ACK,
        ARG_COUNT,
        ARG_START,
        ARG_WINDOW,
};

/* Accepted before the command and after it alike. */
#define COMMON_OPTIONS                                                  \
        { "help", no_argument, NULL, 'h' },                             \
        { "address", required_argument, NULL, ARG_ADDRESS },            \
        { "timeout", required_argument, NULL, ARG_TIMEOUT }

static const struct option plain_options[] = {
        COMMON_OPTIONS,
        {}
};

static const struct option send_options[] = {
        COMMON_OPTIONS,
        { "id", required_argument, NULL, ARG_ID },
        {}
};

static const struct option listen_options[] = {
        COMMON_OPTIONS,
        { "subscriber", required_argument, NULL, ARG_SUBSCRIBER },
        { "ack", no_argument, NULL, ARG_ACK },
        { "count", required_argument, NULL, ARG_COUNT },
        { "start", required_argument, NULL, ARG_START },
        { "window", required_argument, NULL, ARG_WINDOW },
        {}
};

static const struct option ack_options[] = {
        COMMON_OPTIONS,
        { "subscriber", required_argument, NULL, ARG_SUBSCRIBER },
        {}
};

static const char common_options_help[] =
        "  -h --help              Show this help\n"
        "     --address ADDRESS   Connect to the bus at this D-Bus address instead of\n"
        "                         the session bus ($DBUS_SESSION_BUS_ADDRESS)\n"
        "     --timeout SECONDS   Give up on a call that gets no reply in time\n"
        "                         (default 25)\n";

static const char send_help[] =
        "Usage: " PROGRAM " send ENDPOINT PAYLOAD [--id ID]\n"
        "\n"
        "Stores PAYLOAD (UTF-8 text) in ENDPOINT, creating the endpoint on first use,\n"
        "and prints the message's id and sequence number: \"ID SEQ\". The service\n"
        "replies once the message is on disk. Without --id the service generates an\n"
        "id; when ENDPOINT still stores a message with the given id, nothing new is\n"
        "stored and that message's id and sequence number are printed.\n"
        "A PAYLOAD that starts with '-' goes after '--'.\n"
        "\n"
        "Options:\n"
        "     --id ID             Use ID as the message id (at most 255 bytes)\n";

static const char listen_help[] =
        "Usage: " PROGRAM " listen ENDPOINT [--subscriber NAME] [--ack] [--count N]\n"
        "                                 [--start all|new] [--window N]\n"
        "\n"
        "Prints each message of ENDPOINT as it arrives, one line each: \"SEQ ID PAYLOAD\"\n"
        "(the payload last, as it is). With --subscriber, the durable subscription NAME\n"
        "first replays every stored message it has not acknowledged, then follows new\n"
        "ones; without it, an ephemeral subscription receives only messages sent\n"
        "while it listens. SIGINT or SIGTERM ends listening with exit status 0.\n"
        "Messages that are not acknowledged are delivered again next time.\n"
        "\n"
        "Options:\n"
        "     --subscriber NAME   Use the durable subscription NAME, creating it on\n"
        "                         first use\n"
        "     --ack               Acknowledge each message after printing it\n"
        "                         (needs --subscriber)\n"
        "     --count N           Exit after N messages\n"
        "     --start all|new     For a new subscription: receive every stored message\n"
        "                         (all, the default) or only those sent from now on\n"
        "     --window N          At most N messages delivered but not acknowledged\n"
        "                         (1 to 65536, service default 1000)\n";

static const char ack_help[] =
        "Usage: " PROGRAM " ack ENDPOINT --subscriber NAME ID...\n"
        "\n"
        "Acknowledges the messages with the given ids for the durable subscription\n"
        "NAME and prints how many were acknowledged now (not before). Ids ENDPOINT\n"
        "does not store are skipped.\n"
        "\n"
        "The service accepts acknowledgements only from the connection a subscription\n"
        "is attached to. So ack first subscribes as NAME (with window 1, ignoring the\n"
        "message the service then starts to deliver), acknowledges, and unsubscribes\n"
        "again without forgetting the subscription. Hence it fails with\n"
        "org.durabus1.Error.SubscriberBusy while a listener holds NAME, and it creates\n"
        "the durable subscription NAME when it does not exist yet.\n"
        "\n"
        "Options:\n"
        "     --subscriber NAME   The durable subscription acknowledging (required)\n";

static const char endpoints_help[] =
        "Usage: " PROGRAM " endpoints\n"
        "\n"
        "Lists every endpoint, sorted by name, one per line: \"NAME PATH\".\n"
        "\n"
        "Options:\n";

static const char clear_help[] =
        "Usage: " PROGRAM " clear ENDPOINT\n"
        "\n"
        "Deletes every stored message of ENDPOINT and prints how many there were.\n"
        "Its subscriptions stay.\n"
        "\n"
        "Options:\n";

static const char delete_help[] =
        "Usage: " PROGRAM " delete ENDPOINT\n"
        "\n"
        "Deletes ENDPOINT with its stored messages, its subscriptions and its bus\n"
        "name. Fails with org.durabus1.Error.NoSuchEndpoint when there is none.\n"
        "\n"
        "Options:\n";

typedef struct Verb {
        const char *name;
        const struct option *options;
        const char *const *arg_names;   /* the last one repeats when max_args < 0 */
        int min_args, max_args;         /* positional arguments; max_args < 0: no limit */
        int (*check)(const Args *args);
        int (*run)(const Args *args);
        const char *help;
} Verb;

static int check_listen(const Args *args) {
        if (args->ack && (!args->subscriber || args->subscriber[0] == '\0'))
                return usage_error("listen: --ack needs --subscriber NAME; ephemeral subscriptions take no "
                                   "acknowledgements");
        return 0;
}

static int check_ack(const Args *args) {
        if (!args->subscriber || args->subscriber[0] == '\0')
                return usage_error("ack: missing --subscriber NAME");
        return 0;
}

static const char *const endpoint_arg[] = { "ENDPOINT" };
static const char *const send_args[] = { "ENDPOINT", "PAYLOAD" };
static const char *const ack_args[] = { "ENDPOINT", "ID" };

static const Verb verbs[] = {
        { "send", send_options, send_args, 2, 2, NULL, verb_send, send_help },
        { "listen", listen_options, endpoint_arg, 1, 1, check_listen, verb_listen, listen_help },
        { "ack", ack_options, ack_args, 2, -1, check_ack, verb_ack, ack_help },
        { "endpoints", plain_options, NULL, 0, 0, NULL, verb_endpoints, endpoints_help },
        { "clear", plain_options, endpoint_arg, 1, 1, NULL, verb_clear, clear_help },
        { "delete", plain_options, endpoint_arg, 1, 1, NULL, verb_delete, delete_help },
};

static void help(void) {
        fputs("Usage: " PROGRAM " [OPTIONS...] COMMAND ...\n"
              "\n"
              "Sends, receives and manages the messages of durabus, the durable message bus\n"
              "of the session (org.durabus1). Messages stay stored until every durable\n"
              "subscription of their endpoint has acknowledged them.\n"
              "\n"
              "Commands:\n"
              "  send ENDPOINT PAYLOAD [--id ID]\n"
              "                         Store a message; prints \"ID SEQ\"\n"
              "  listen ENDPOINT [--subscriber NAME] [--ack] [--count N] [--start all|new]\n"
              "         [--window N]    Print messages as they arrive: \"SEQ ID PAYLOAD\"\n"
              "  ack ENDPOINT --subscriber NAME ID...\n"
              "                         Acknowledge messages; prints how many were new\n"
              "  endpoints              List the endpoints: \"NAME PATH\"\n"
              "  clear ENDPOINT         Delete every stored message; prints how many\n"
              "  delete ENDPOINT        Delete an endpoint, its messages and subscriptions\n"
              "\n"
              "ENDPOINT is a name like \"chat\" or \"app.jobs\": elements of [A-Za-z0-9_],\n"
              "not starting with a digit, separated by single dots, 1 to 200 characters.\n"
              "'" PROGRAM " COMMAND --help' describes a command.\n"
              "\n"
              "Options:\n"
              "  -h --help              Show this help\n"
              "     --version           Show the version\n"
              "     --address ADDRESS   Connect to the bus at this D-Bus address instead of\n"
              "                         the session bus ($DBUS_SESSION_BUS_ADDRESS)\n"
              "     --timeout SECONDS   Give up on a call that gets no reply in time\n"
              "                         (default 25)\n"
              "\n"
              "Exit status: 0 on success, 1 when the service or the bus reports a failure\n"
              "(printed as \"" PROGRAM ": MESSAGE (ERROR.NAME)\"), 2 on a usage error.\n",
              stdout);
}

static const Verb *find_verb(const char *name) {
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

/* One switch for every option of every command: each command's option
 * table decides which of them getopt_long() lets through. */
static int parse_option(int c, char *argv[], Args *args) {
        uint64_t u;

        switch (c) {
        case ARG_ADDRESS:
                args->address = optarg;
                return 0;

        case ARG_TIMEOUT:
                if (parse_u64(optarg, &u) < 0 || u == 0 || u > UINT64_MAX / USEC_PER_SEC)
                        return usage_error("--timeout needs a positive whole number of seconds, not '%s'", optarg);
                args->timeout_usec = u * USEC_PER_SEC;
                return 0;

        case ARG_ID:
                args->id = optarg;
                return 0;

        case ARG_SUBSCRIBER:
                args->subscriber = optarg;
                return 0;

        case ARG_ACK:
                args->ack = true;
                return 0;

        case ARG_COUNT:
                if (parse_u64(optarg, &u) < 0 || u == 0)
                        return usage_error("--count needs a positive whole number, not '%s'", optarg);
                args->count = u;
                return 0;

        case ARG_START:
                if (!streq(optarg, "all") && !streq(optarg, "new"))
                        return usage_error("--start needs 'all' or 'new', not '%s'", optarg);
                args->start = optarg;
                return 0;

        case ARG_WINDOW:
                /* The range is the service's to enforce; the client only
                 * needs a number that fits the D-Bus type. */
                if (parse_u64(optarg, &u) < 0 || u > UINT32_MAX)
                        return usage_error("--window needs a whole number, not '%s'", optarg);
                args->window = (uint32_t) u;
                args->window_set = true;
                return 0;

        case ':':
                return usage_error("option '%s' needs an argument", argv[optind - 1]);

        case '?':
                if (optopt != 0)
                        return usage_error("unknown option '-%c'", optopt);
                return usage_error("unknown option '%s'", argv[optind - 1]);

        default:
                return usage_error("unexpected option code %d", c);
        }
}

/* Returns 0 to run the command, 1 when help was printed, or -EINVAL for a
 * usage error, already reported. argv[0] is the command's name. */
static int parse_verb_argv(const Verb *verb, int argc, char *argv[], Args *args) {
        int c, r, n;

        /* optind = 0 makes GNU getopt start over, at argv[1]. */
        optind = 0;
        while ((c = getopt_long(argc, argv, ":h", verb->options, NULL)) >= 0) {
                if (c == 'h') {
                        fputs(verb->help, stdout);
                        fputs(common_options_help, stdout);
                        return 1;
                }

                r = parse_option(c, argv, args);
                if (r < 0)
                        return r;
        }

        n = argc - optind;
        if (n < verb->min_args)
                return usage_error("%s: missing %s", verb->name, verb->arg_names[n]);
        if (verb->max_args >= 0 && n > verb->max_args)
                return usage_error("%s: unexpected argument '%s'", verb->name, argv[optind + verb->max_args]);

        /* getopt_long() moved the options ahead of them, and argv[argc] is
         * NULL, so they form a string vector as they are. */
        args->positional = argv + optind;

        return verb->check ? verb->check(args) : 0;
}

/* Returns 0 with *ret_verb set to run a command, 1 when help or the version
 * was printed, or -EINVAL for a usage error, already reported. */
static int parse_argv(int argc, char *argv[], Args *args, const Verb **ret_verb) {
        static const struct option options[] = {
                COMMON_OPTIONS,
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        const Verb *verb;
        int c, r;

        /* Errors are reported by usage_error(), in one format. */
        opterr = 0;

        /* '+' stops at the command: what follows is the command's to parse. */
        optind = 0;
        while ((c = getopt_long(argc, argv, "+:h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 1;

                case ARG_VERSION:
                        puts(PROGRAM " " DURABUS_VERSION);
                        return 1;

                default:
                        r = parse_option(c, argv, args);
                        if (r < 0)
                                return r;
                }
        }

        if (optind >= argc)
                return usage_error("missing command");

        verb = find_verb(argv[optind]);
        if (!verb)
                return usage_error("unknown command '%s'", argv[optind]);

        r = parse_verb_argv(verb, argc - optind, argv + optind, args);
        if (r != 0)
                return r;

        *ret_verb = verb;
        return 0;
}

static int flush_stdout(int status) {
        if (fflush(stdout) != 0 || ferror(stdout)) {
                log_errno(errno > 0 ? -errno : -EIO, "Failed to write to standard output");
                return EXIT_FAILURE;
        }
        return status;
}

int main(int argc, char *argv[]) {
        Args args = {};
        const Verb *verb = NULL;
        int r;

        r = parse_argv(argc, argv, &args, &verb);
        if (r < 0)
                return EXIT_USAGE;
        if (r > 0)
                return flush_stdout(EXIT_SUCCESS);

        r = verb->run(&args);
        return flush_stdout(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
