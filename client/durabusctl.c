/* SPDX-License-Identifier: MIT */

/*
 * durabusctl: the command-line client of durabus, the durable message bus of
 * the session. Each command is one or two calls of libdurabus; `listen` runs
 * an sd-event loop that prints the messages of one subscription, which the
 * library keeps attached across restarts of the service. With a token file,
 * every command proves the token right after connecting, and the library
 * proves it again to each new instance of the service.
 *
 * Output is text by default, or one JSON object per line (-o json), built
 * with json-glib. The client shares no code with the service.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "durabus.h"

#define PROGRAM "durabusctl"

#define DURABUS_BUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"
#define BROKER_IFACE "org.durabus1.Broker"
#define ENDPOINT_IFACE "org.durabus1.Endpoint"
#define ENDPOINT_PATH_PREFIX "/org/durabus1/endpoint/"
#define ENDPOINT_NAME_MAX 200
#define ERROR_INVALID_NAME DURABUS_ERROR_INVALID_NAME

#define EXIT_USAGE 2
#define USEC_PER_SEC UINT64_C(1000000)

/* The service takes tokens of up to 1024 characters; a file much larger
 * than that is not a token file. */
#define TOKEN_FILE_MAX 4096

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

static void strv_freep(char ***l) {
        durabus_strv_free(*l);
}

/* For the token: no copy of it is left in memory that is given back. */
static void erase_and_freep(char **s) {
        if (*s)
                explicit_bzero(*s, strlen(*s));
        free(*s);
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
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
 * as they came, with the error name that scripts can match on. libdurabus
 * names local failures too (System.Error.*), so the name is nearly always
 * there. */
static int log_bus_error(int r, const sd_bus_error *error, const char *what) {
        if (sd_bus_error_is_set(error))
                fprintf(stderr, PROGRAM ": %s (%s)\n", error->message ? error->message : what, error->name);
        else
                log_errno(r, "%s failed", what);
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

/* ---- Output ---------------------------------------------------------------
 * Text is what a person reads; -o json prints one JSON object per line
 * instead, for scripts. Objects are built with json-glib, which takes care
 * of the escaping of payloads and ids. */

typedef enum OutputMode {
        OUTPUT_TEXT,
        OUTPUT_JSON,
} OutputMode;

static int write_failed(void) {
        return log_errno(errno > 0 ? -errno : -EIO, "Failed to write to standard output");
}

/* Prints a line and flushes it, so that a listener's reader gets each
 * message as it comes and an acknowledgement only follows what surely
 * reached standard output. */
_printf_(1, 2) static int print_line(const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vprintf(fmt, ap);
        va_end(ap);
        if (r < 0 || putchar('\n') == EOF || fflush(stdout) != 0)
                return write_failed();
        return 0;
}

/* A builder with an object opened: add members, then print_json_line(). */
static JsonBuilder *json_line_new(void) {
        JsonBuilder *b = json_builder_new();

        json_builder_begin_object(b);
        return b;
}

static void line_add_string(JsonBuilder *b, const char *key, const char *value) {
        json_builder_set_member_name(b, key);
        json_builder_add_string_value(b, value);
}

/* JSON numbers of json-glib are signed 64-bit; sequence numbers, counts and
 * timestamps stay far below 2^63. */
static void line_add_uint(JsonBuilder *b, const char *key, uint64_t value) {
        json_builder_set_member_name(b, key);
        json_builder_add_int_value(b, (gint64) value);
}

static void line_add_bool(JsonBuilder *b, const char *key, bool value) {
        json_builder_set_member_name(b, key);
        json_builder_add_boolean_value(b, value);
}

/* Closes the object and prints it on one line. */
static int print_json_line(JsonBuilder *b) {
        g_autoptr(JsonGenerator) generator = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;

        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(generator, root);
        text = json_generator_to_data(generator, NULL);
        if (!text)
                return log_oom();

        return print_line("%s", text);
}

/* ---- Talking to the service --------------------------------------------- */

typedef struct Args {
        const char *address;            /* NULL: the session bus (--user) */
        const char *token_file;         /* NULL: $DURABUS_TOKEN_FILE, if set */
        uint64_t timeout_usec;          /* 0: sd-bus's default */
        OutputMode output;
        const char *id;                 /* send --id; NULL lets the service pick */
        const char *subscriber;         /* NULL when not given */
        bool ack;
        bool forget;
        uint64_t count;                 /* 0: listen until interrupted */
        bool start_new;
        bool window_set;
        uint32_t window;
        char **positional;              /* NULL-terminated, after the command's options */
} Args;

/* libdurabus has no setting for the method call timeout. sd-bus takes its
 * default from $SYSTEMD_BUS_TIMEOUT, for every connection this process opens
 * afterwards, which covers the library's calls as well as our own. */
static int apply_timeout(const Args *args) {
        char value[32];

        if (args->timeout_usec == 0)
                return 0;

        snprintf(value, sizeof value, "%" PRIu64 "s", args->timeout_usec / USEC_PER_SEC);
        if (setenv("SYSTEMD_BUS_TIMEOUT", value, 1) < 0)
                return log_errno(-errno, "Failed to set the method call timeout");
        return 0;
}

/* What is wrong with the contents of a token file, which are never quoted. */
static int token_file_invalid(const char *path, const char *problem) {
        fprintf(stderr, PROGRAM ": The token file '%s' %s\n", path, problem);
        return -EINVAL;
}

/* The token of path, as it is but for one trailing newline. Read with
 * read(2) into a buffer that is erased, not through stdio, whose buffers
 * are freed as they are. */
static int read_token_file(const char *path, char **ret_token) {
        char buf[TOKEN_FILE_MAX + 1];
        size_t size = 0;
        char *token = NULL;
        int fd, r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return log_errno(-errno, "Failed to open the token file '%s'", path);

        while (size < sizeof buf) {
                ssize_t n = read(fd, buf + size, sizeof buf - size);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        r = log_errno(-errno, "Failed to read the token file '%s'", path);
                if (n <= 0)
                        break;
                size += (size_t) n;
        }
        (void) close(fd);

        if (r >= 0 && size > TOKEN_FILE_MAX)
                r = token_file_invalid(path, "is too large to hold a token");
        if (r >= 0 && size > 0 && buf[size - 1] == '\n')
                size--;
        if (r >= 0 && size == 0)
                r = token_file_invalid(path, "is empty");
        if (r >= 0 && memchr(buf, '\0', size))
                r = token_file_invalid(path, "holds a NUL byte");
        if (r >= 0) {
                token = strndup(buf, size);
                r = token ? check_utf8(token, "token") : log_oom();
        }
        explicit_bzero(buf, sizeof buf);
        if (r < 0) {
                erase_and_freep(&token);
                return r;
        }

        *ret_token = token;
        return 0;
}

/* The token of --token-file, else of $DURABUS_TOKEN_FILE; NULL when
 * neither names a file. Read before connecting, so that a file that cannot
 * be read leaves the bus untouched. */
static int read_token(const Args *args, char **ret_token) {
        const char *path = args->token_file ? args->token_file : getenv("DURABUS_TOKEN_FILE");

        if (!path || path[0] == '\0') {
                *ret_token = NULL;
                return 0;
        }

        return read_token_file(path, ret_token);
}

static int client_connect(const Args *args, DurabusClient **ret_client) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(erase_and_freep) char *token = NULL;
        int r;

        r = apply_timeout(args);
        if (r < 0)
                return r;

        r = read_token(args, &token);
        if (r < 0)
                return r;

        if (args->address) {
                r = durabus_client_new_with_address(args->address, &c);
                if (r < 0)
                        return log_errno(r, "Failed to connect to the bus at '%s'", args->address);
        } else {
                r = durabus_client_new(&c);
                if (r < 0)
                        return log_errno(r, "Failed to connect to the session bus");
        }

        /* The library keeps the token and proves it again to every new
         * instance of the service, which a listener lives to see. */
        if (token) {
                r = durabus_client_authenticate(c, token, &error);
                if (r < 0)
                        return log_bus_error(r, &error, "Authenticate");
        }

        *ret_client = TAKE_PTR(c);
        return 0;
}

/* Authenticate on a connection of our own, which makes one call only: the
 * proof is not needed again. */
static int bus_authenticate(sd_bus *bus, const char *token) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &call, DURABUS_BUS_NAME, BROKER_PATH, BROKER_IFACE, "Authenticate");
        /* sd-bus erases the memory of the message when it frees it. */
        if (r >= 0)
                r = sd_bus_message_sensitive(call);
        if (r >= 0)
                r = sd_bus_message_append(call, "s", token);
        if (r < 0)
                return log_errno(r, "Failed to make the Authenticate call");

        r = sd_bus_call(bus, call, 0, &error, NULL);
        if (r < 0)
                return log_bus_error(r, &error, "Authenticate");
        return 0;
}

/* A connection of our own, for what libdurabus does not cover (the Version
 * property of the Broker, every property of an endpoint). */
static int bus_connect(const Args *args, sd_bus **ret_bus) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(erase_and_freep) char *token = NULL;
        int r;

        r = apply_timeout(args);
        if (r < 0)
                return r;

        r = read_token(args, &token);
        if (r < 0)
                return r;

        if (args->address) {
                r = sd_bus_new(&bus);
                if (r < 0)
                        return log_errno(r, "Failed to allocate a bus connection");

                r = sd_bus_set_address(bus, args->address);
                if (r < 0)
                        return log_errno(r, "Invalid bus address '%s'", args->address);

                /* A message bus, not a peer: we need Hello and activation of
                 * org.durabus1. */
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

        if (token) {
                r = bus_authenticate(bus, token);
                if (r < 0)
                        return r;
        }

        *ret_bus = TAKE_PTR(bus);
        return 0;
}

static void ignore_message(_unused_ DurabusSubscription *s, _unused_ const DurabusMessage *m,
                           _unused_ void *userdata) {
}

/* The service takes acknowledgements and unsubscriptions only from the
 * connection a subscription is attached to, so ack and unsubscribe attach
 * it to themselves first. Window 1 keeps the replay that starts with it down
 * to a single Message signal, which nobody dispatches here: it is dropped
 * with the connection and stays unacknowledged unless acknowledged below. */
static int attach_briefly(DurabusClient *c, const char *endpoint, const char *subscriber,
                          DurabusSubscription **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const DurabusSubscribeOptions options = { .window = 1 };
        int r;

        r = durabus_subscribe(c, endpoint, subscriber, &options, ignore_message, NULL, ret, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Subscribe");
        return 0;
}

/* ---- send, endpoints, open, stats, clear, delete ------------------------ */

/* Checks an endpoint name, then connects: every verb on one endpoint starts
 * so, and a bad name is refused before the bus is touched. */
static int endpoint_client_connect(const Args *args, const char *name, DurabusClient **ret) {
        int r;

        r = check_endpoint_name(name);
        if (r < 0)
                return r;

        return client_connect(args, ret);
}

static int verb_send(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *id = NULL;
        const char *endpoint = args->positional[0], *payload = args->positional[1];
        uint64_t seq;
        int r;

        r = check_endpoint_name(endpoint);
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

        r = client_connect(args, &c);
        if (r < 0)
                return r;

        r = durabus_send(c, endpoint, args->id, payload, &id, &seq, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Send");

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "id", id);
                line_add_uint(b, "seq", seq);
                return print_json_line(b);
        }

        return print_line("%s %" PRIu64, id, seq);
}

static int print_endpoint(const Args *args, const char *name) {
        _cleanup_(freep) char *path = NULL;
        int r;

        r = endpoint_path(name, &path);
        if (r < 0)
                return r;

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "name", name);
                line_add_string(b, "path", path);
                return print_json_line(b);
        }

        return print_line("%s %s", name, path);
}

static int verb_endpoints(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(strv_freep) char **names = NULL;
        int r;

        r = client_connect(args, &c);
        if (r < 0)
                return r;

        r = durabus_list_endpoints(c, &names, &error);
        if (r < 0)
                return log_bus_error(r, &error, "ListEndpoints");

        /* libdurabus returns the names only; the path follows from each by
         * the rule of the API (introspection/org.durabus1.Broker.xml). */
        for (char **n = names; *n; n++) {
                r = print_endpoint(args, *n);
                if (r < 0)
                        return r;
        }

        return 0;
}

static int verb_open(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = args->positional[0];
        _cleanup_(freep) char *path = NULL;
        int r;

        r = endpoint_client_connect(args, name, &c);
        if (r < 0)
                return r;

        r = durabus_open_endpoint(c, name, &error);
        if (r < 0)
                return log_bus_error(r, &error, "OpenEndpoint");

        if (args->output == OUTPUT_JSON)
                return print_endpoint(args, name);

        r = endpoint_path(name, &path);
        if (r < 0)
                return r;
        return print_line("%s", path);
}

/* "StoredMessages" -> "stored-messages" (sep '-') or "stored_messages" (sep '_'). */
static char *property_key(const char *property, char sep) {
        GString *key = g_string_new(NULL);

        for (const char *p = property; *p; p++) {
                if (g_ascii_isupper(*p) && p != property)
                        g_string_append_c(key, sep);
                g_string_append_c(key, g_ascii_tolower(*p));
        }
        return g_string_free(key, FALSE);
}

/* Prints one subscription of the Subscriptions property, a (sbt). */
static int print_subscriptions(sd_bus_message *reply, JsonBuilder *json) {
        const char *name;
        uint64_t pending;
        int attached, r;

        r = sd_bus_message_enter_container(reply, 'a', "(sbt)");
        if (r < 0)
                return r;

        if (json)
                json_builder_begin_array(json);
        while ((r = sd_bus_message_read(reply, "(sbt)", &name, &attached, &pending)) > 0) {
                if (!json) {
                        r = print_line("subscription %s %s pending %" PRIu64, name,
                                       attached ? "attached" : "detached", pending);
                        if (r < 0)
                                return r;
                        continue;
                }
                json_builder_begin_object(json);
                line_add_string(json, "name", name);
                line_add_bool(json, "attached", attached);
                line_add_uint(json, "pending", pending);
                json_builder_end_object(json);
        }
        if (r < 0)
                return r;
        if (json)
                json_builder_end_array(json);

        return sd_bus_message_exit_container(reply);
}

/* Prints one property of GetAll's reply: strings and counts as "key value"
 * lines (JSON members), Subscriptions as one line per subscription. */
static int print_property(sd_bus_message *reply, const char *property, JsonBuilder *json) {
        _cleanup_(freep) char *key = property_key(property, json ? '_' : '-');
        const char *contents, *text;
        uint64_t number;
        int r;

        r = sd_bus_message_peek_type(reply, NULL, &contents);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'v', contents);
        if (r < 0)
                return r;

        if (json)
                json_builder_set_member_name(json, key);

        if (streq(contents, "s")) {
                r = sd_bus_message_read(reply, "s", &text);
                if (r >= 0 && json)
                        json_builder_add_string_value(json, text);
                else if (r >= 0)
                        r = print_line("%s %s", key, text);
        } else if (streq(contents, "t")) {
                r = sd_bus_message_read(reply, "t", &number);
                if (r >= 0 && json)
                        json_builder_add_int_value(json, (gint64) number);
                else if (r >= 0)
                        r = print_line("%s %" PRIu64, key, number);
        } else if (streq(contents, "a(sbt)"))
                r = print_subscriptions(reply, json);
        else {
                /* A property of a newer service: shown as its D-Bus type. */
                r = sd_bus_message_skip(reply, contents);
                if (r >= 0 && json)
                        json_builder_add_null_value(json);
                else if (r >= 0)
                        r = print_line("%s (%s)", key, contents);
        }
        if (r < 0)
                return r;

        return sd_bus_message_exit_container(reply);
}

/* Every property of the endpoint, read with one GetAll over a connection of
 * our own: libdurabus wraps only the stored counts. */
static int verb_stats(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        g_autoptr(JsonBuilder) json = NULL;
        _cleanup_(freep) char *path = NULL;
        const char *name = args->positional[0], *property;
        int r;

        r = endpoint_path(name, &path);
        if (r < 0)
                return r;

        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_call_method(bus, DURABUS_BUS_NAME, path, "org.freedesktop.DBus.Properties", "GetAll", &error,
                               &reply, "s", ENDPOINT_IFACE);
        if (r < 0)
                return log_bus_error(r, &error, "GetAll");

        if (args->output == OUTPUT_JSON)
                json = json_line_new();

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &property);
                if (r >= 0)
                        r = print_property(reply, property, json);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r < 0)
                return log_errno(r, "Failed to read the properties of endpoint '%s'", name);

        return json ? print_json_line(json) : 0;
}

static int verb_clear(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = args->positional[0];
        uint64_t removed;
        int r;

        r = endpoint_client_connect(args, name, &c);
        if (r < 0)
                return r;

        r = durabus_clear(c, name, &removed, &error);
        if (r < 0)
                return log_bus_error(r, &error, "ClearAll");

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "endpoint", name);
                line_add_uint(b, "removed", removed);
                return print_json_line(b);
        }

        return print_line("%" PRIu64, removed);
}

static int verb_delete(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *name = args->positional[0];
        int r;

        r = endpoint_client_connect(args, name, &c);
        if (r < 0)
                return r;

        r = durabus_delete_endpoint(c, name, &error);
        if (r < 0)
                return log_bus_error(r, &error, "DeleteEndpoint");

        /* Text says nothing on success; a script reading JSON gets a line. */
        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "endpoint", name);
                line_add_bool(b, "deleted", true);
                return print_json_line(b);
        }

        return 0;
}

/* ---- ack, unsubscribe ----------------------------------------------------- */

static int verb_ack(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(durabus_subscription_unrefp) DurabusSubscription *s = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *endpoint = args->positional[0];
        char **ids = args->positional + 1;
        uint32_t acked;
        int r;

        r = check_endpoint_name(endpoint);
        if (r < 0)
                return r;
        for (char **i = ids; *i; i++) {
                r = check_utf8(*i, "message id");
                if (r < 0)
                        return r;
        }

        r = client_connect(args, &c);
        if (r < 0)
                return r;

        r = attach_briefly(c, endpoint, args->subscriber, &s);
        if (r < 0)
                return r;

        /* On failure, unreffing s detaches the subscription without waiting;
         * the Ack failure is what the user needs to read. */
        r = durabus_subscription_ack_many(s, (const char *const *) ids, &acked, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Ack");

        r = durabus_subscription_unsubscribe(s, false, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Unsubscribe");

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "endpoint", endpoint);
                line_add_string(b, "subscriber", args->subscriber);
                line_add_uint(b, "acked", acked);
                return print_json_line(b);
        }

        return print_line("%" PRIu32, acked);
}

static int verb_unsubscribe(const Args *args) {
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(durabus_subscription_unrefp) DurabusSubscription *s = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *endpoint = args->positional[0];
        int r;

        r = check_endpoint_name(endpoint);
        if (r < 0)
                return r;

        r = client_connect(args, &c);
        if (r < 0)
                return r;

        r = attach_briefly(c, endpoint, args->subscriber, &s);
        if (r < 0)
                return r;

        r = durabus_subscription_unsubscribe(s, args->forget, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Unsubscribe");

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "endpoint", endpoint);
                line_add_string(b, "subscriber", args->subscriber);
                line_add_bool(b, "forgotten", args->forget);
                return print_json_line(b);
        }

        return 0;
}

/* ---- version -------------------------------------------------------------- */

static int verb_version(const Args *args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) char *service = NULL;
        int r;

        /* libdurabus has no call for the Broker's Version property: read it
         * over a connection of our own. */
        r = bus_connect(args, &bus);
        if (r < 0)
                return r;

        r = sd_bus_get_property_string(bus, DURABUS_BUS_NAME, BROKER_PATH, BROKER_IFACE, "Version", &error,
                                       &service);
        if (r < 0)
                return log_bus_error(r, &error, "Get Version");

        if (args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "client", DURABUS_VERSION);
                line_add_string(b, "service", service);
                return print_json_line(b);
        }

        r = print_line("client %s", DURABUS_VERSION);
        if (r >= 0)
                r = print_line("service %s", service);
        return r;
}

/* ---- listen ----------------------------------------------------------------
 * libdurabus attaches the subscription again whenever the service goes away
 * and comes back, and the service then replays what was not acknowledged.
 * Messages printed before the restart come again then, redelivered: they
 * are recognized by their seq (the replay is in sequence order, and seq
 * grows strictly per endpoint), acknowledged when --ack asks for it, and not
 * printed twice. So the output of one listen is each message once, in
 * order, across any number of restarts. */

typedef struct Listener {
        const Args *args;
        sd_event *event;
        DurabusSubscription *subscription;
        bool failed;                    /* a failure was printed; the loop exits with it */
        bool finished;                  /* unsubscribed, the loop is about to exit */
        uint64_t received;
        bool printed_any;
        uint64_t last_seq;              /* of the last message printed */
        char **unacked;                 /* printed, not acknowledged yet; NULL-terminated */
        size_t n_unacked;
        unsigned lost_acks;             /* acknowledgements a restart made void */
        sd_event_source *ack_source;
} Listener;

static void listener_done(Listener *l) {
        sd_event_source_unref(l->ack_source);
        durabus_strv_free(l->unacked);
}

/* A handler that fails ends the loop with the error, already printed. */
static void listener_fail(Listener *l, int r) {
        l->failed = true;
        (void) sd_event_exit(l->event, r);
}

/* The instance that delivered the messages is gone (the new one does not
 * know the subscription yet, or the old one died under the call): these
 * acknowledgements did not count, and the messages come again. */
static bool is_lost_to_restart(int r, const sd_bus_error *error) {
        return r == -ESRCH || sd_bus_error_has_name(error, SD_BUS_ERROR_NO_REPLY) ||
               sd_bus_error_has_name(error, SD_BUS_ERROR_DISCONNECTED);
}

static int listener_flush_acks(Listener *l) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (l->n_unacked == 0)
                return 0;

        r = durabus_subscription_ack_many(l->subscription, (const char *const *) l->unacked, NULL, &error);
        if (r < 0 && !is_lost_to_restart(r, &error))
                return log_bus_error(r, &error, "Ack");
        if (r < 0)
                l->lost_acks += l->n_unacked;
        else
                l->lost_acks = 0;

        l->unacked = durabus_strv_free(l->unacked);
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
                listener_fail(l, r);

        return 0;
}

/* Ends listening in order: confirms what was printed, detaches the
 * subscription rather than just dropping the connection, and leaves the
 * loop with exit status 0. */
static void listener_finish(Listener *l) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        if (l->finished)
                return;
        l->finished = true;

        r = listener_flush_acks(l);
        if (r < 0)
                return listener_fail(l, r);

        if (l->lost_acks > 0)
                fprintf(stderr,
                        PROGRAM ": The service restarted before %u acknowledgements were stored; those messages "
                                "will be delivered again\n",
                        l->lost_acks);

        /* Not attached, after a restart the library has not caught up with
         * yet: nothing is left to detach at the service. */
        r = durabus_subscription_unsubscribe(l->subscription, false, &error);
        if (r < 0 && !is_lost_to_restart(r, &error))
                return listener_fail(l, log_bus_error(r, &error, "Unsubscribe"));

        (void) sd_event_exit(l->event, 0);
}

static int on_signal(_unused_ sd_event_source *s, _unused_ const struct signalfd_siginfo *si, void *userdata) {
        listener_finish(userdata);
        return 0;
}

static bool listener_has_enough(const Listener *l) {
        return l->args->count > 0 && l->received >= l->args->count;
}

static int print_message(const Listener *l, const DurabusMessage *m) {
        if (l->args->output == OUTPUT_JSON) {
                g_autoptr(JsonBuilder) b = json_line_new();

                line_add_string(b, "endpoint", m->endpoint);
                line_add_string(b, "subscriber", m->subscriber);
                line_add_uint(b, "seq", m->seq);
                line_add_string(b, "id", m->id);
                line_add_string(b, "payload", m->payload);
                line_add_uint(b, "timestamp", m->timestamp);
                line_add_uint(b, "delivery_count", m->delivery_count);
                line_add_bool(b, "redelivered", m->redelivered);
                return print_json_line(b);
        }

        /* The payload last, as it is. */
        return print_line("%" PRIu64 " %s %s", m->seq, m->id, m->payload);
}

static void on_message(_unused_ DurabusSubscription *s, const DurabusMessage *m, void *userdata) {
        Listener *l = userdata;
        int r;

        /* Messages queued behind the last one --count asked for, or behind
         * an interruption, stay unprinted and unacknowledged, for the next
         * listener. */
        if (l->finished || listener_has_enough(l))
                return;

        /* Printed before the service restarted; acknowledged again, since
         * that acknowledgement may be among those the restart lost. */
        if (l->printed_any && m->seq <= l->last_seq) {
                if (l->args->ack) {
                        r = listener_queue_ack(l, m->id);
                        if (r < 0)
                                listener_fail(l, r);
                }
                return;
        }

        /* Acknowledge only what surely reached standard output. */
        r = print_message(l, m);
        if (r < 0)
                return listener_fail(l, r);
        l->received++;
        l->printed_any = true;
        l->last_seq = m->seq;

        if (l->args->ack) {
                r = listener_queue_ack(l, m->id);
                if (r < 0)
                        return listener_fail(l, r);
        }

        if (listener_has_enough(l))
                listener_finish(l);
}

/* The library could not attach the subscription again after the service
 * went away: the service does not start, or the name is taken. */
static void on_subscription_error(_unused_ DurabusSubscription *s, int error, const sd_bus_error *bus_error,
                                  void *userdata) {
        Listener *l = userdata;

        /* A Message signal that could not be read stays unacknowledged and
         * comes again on the next attach: worth a word, not an exit. */
        if (error == -EBADMSG) {
                fputs(PROGRAM ": Skipped a Message signal that could not be read\n", stderr);
                return;
        }

        fputs(PROGRAM ": Lost the subscription when the service went away\n", stderr);
        listener_fail(l, log_bus_error(error, bus_error, "Subscribe"));
}

static void on_disconnected(_unused_ DurabusClient *c, void *userdata) {
        Listener *l = userdata;

        fputs(PROGRAM ": Lost the connection to the bus\n", stderr);
        listener_fail(l, -ECONNRESET);
}

static int verb_listen(const Args *args) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(durabus_client_unrefp) DurabusClient *c = NULL;
        _cleanup_(durabus_subscription_unrefp) DurabusSubscription *s = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(listener_done) Listener l = {
                .args = args,
        };
        const DurabusSubscribeOptions options = {
                .start_new = args->start_new,
                .window = args->window,
        };
        const char *endpoint = args->positional[0];
        sigset_t mask;
        int r;

        r = check_endpoint_name(endpoint);
        if (r < 0)
                return r;

        /* libdurabus takes window 0 for "the service's default", so a 0
         * would not reach the service, which refuses it; say so as it
         * would. */
        if (args->window_set && args->window == 0) {
                fprintf(stderr, PROGRAM ": Invalid window 0: must be 1 to 65536 (%s)\n", SD_BUS_ERROR_INVALID_ARGS);
                return -EINVAL;
        }

        r = client_connect(args, &c);
        if (r < 0)
                return r;

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

        r = durabus_client_set_disconnect_handler(c, on_disconnected, &l);
        if (r < 0)
                return log_errno(r, "Failed to watch the bus connection");

        r = durabus_client_attach_event(c, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_errno(r, "Failed to attach the bus to the event loop");

        /* The replay starts right after the reply; what arrives meanwhile is
         * queued and dispatched by the loop. */
        r = durabus_subscribe(c, endpoint, args->subscriber, &options, on_message, &l, &s, &error);
        if (r < 0)
                return log_bus_error(r, &error, "Subscribe");
        l.subscription = s;

        r = durabus_subscription_set_error_handler(s, on_subscription_error, &l);
        if (r < 0)
                return log_errno(r, "Failed to watch the subscription");

        r = sd_event_loop(event);
        if (r < 0 && !l.failed)
                log_errno(r, "The event loop failed");

        /* Whatever else is queued is not ours to dispatch any more. */
        (void) durabus_client_detach_event(c);
        return r;
}

/* ---- Command line ------------------------------------------------------- */

enum {
        ARG_VERSION = 0x100,
        ARG_USER,
        ARG_ADDRESS,
        ARG_TOKEN_FILE,
        ARG_TIMEOUT,
        ARG_ID,
        ARG_SUBSCRIBER,
        ARG_ACK,
        ARG_FORGET,
        ARG_COUNT,
        ARG_START,
        ARG_WINDOW,
};

/* Accepted before the command and after it alike. */
#define COMMON_OPTIONS                                                  \
        { "help", no_argument, NULL, 'h' },                             \
        { "user", no_argument, NULL, ARG_USER },                        \
        { "address", required_argument, NULL, ARG_ADDRESS },            \
        { "token-file", required_argument, NULL, ARG_TOKEN_FILE },      \
        { "timeout", required_argument, NULL, ARG_TIMEOUT },            \
        { "output", required_argument, NULL, 'o' }

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

static const struct option unsubscribe_options[] = {
        COMMON_OPTIONS,
        { "subscriber", required_argument, NULL, ARG_SUBSCRIBER },
        { "forget", no_argument, NULL, ARG_FORGET },
        {}
};

static const char common_options_help[] =
        "  -h --help              Show this help\n"
        "     --user              Connect to the session bus ($DBUS_SESSION_BUS_ADDRESS,\n"
        "                         else $XDG_RUNTIME_DIR/bus); the default\n"
        "     --address ADDRESS   Connect to the bus at this D-Bus address instead\n"
        "     --token-file FILE   Prove the token in FILE (one trailing newline is not\n"
        "                         part of it) to a service that does not trust this\n"
        "                         caller; default $DURABUS_TOKEN_FILE\n"
        "     --timeout SECONDS   Give up on a call that gets no reply in time\n"
        "                         (default 25)\n"
        "  -o --output=FORMAT     text (the default) or json: one JSON object per line\n";

static const char exit_status_help[] =
        "\n"
        "Exit status: 0 on success, 1 when the service or the bus reports a failure\n"
        "(printed as \"" PROGRAM ": MESSAGE (ERROR.NAME)\") or the token file cannot be\n"
        "read, 2 on a usage error.\n";

static const char send_help[] =
        "Usage: " PROGRAM " send ENDPOINT PAYLOAD [--id ID]\n"
        "\n"
        "Stores PAYLOAD (UTF-8 text) in ENDPOINT, creating the endpoint on first use,\n"
        "and prints the message's id and sequence number: \"ID SEQ\". The service\n"
        "replies once the message is on disk. Without --id the service generates an\n"
        "id; when ENDPOINT still stores a message with the given id, nothing new is\n"
        "stored and that message's id and sequence number are printed.\n"
        "A PAYLOAD that starts with '-' goes after '--'.\n"
        "JSON: {\"id\": ID, \"seq\": SEQ}\n"
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
        "Listening goes on when the service restarts: the subscription attaches\n"
        "itself again (after proving the token of --token-file to the new instance)\n"
        "and the service replays what was not acknowledged. Messages printed before\n"
        "the restart are not printed again (and acknowledged again with --ack); each\n"
        "message is printed once, in order.\n"
        "JSON: {\"endpoint\", \"subscriber\", \"seq\", \"id\", \"payload\", \"timestamp\"\n"
        "(microseconds since the epoch, taken at send), \"delivery_count\",\n"
        "\"redelivered\" (true when delivered before: it may have been handled)}\n"
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
        "JSON: {\"endpoint\", \"subscriber\", \"acked\"}\n"
        "\n"
        "Options:\n"
        "     --subscriber NAME   The durable subscription acknowledging (required)\n";

static const char unsubscribe_help[] =
        "Usage: " PROGRAM " unsubscribe ENDPOINT --subscriber NAME [--forget]\n"
        "\n"
        "With --forget, deletes the durable subscription NAME: messages no longer\n"
        "wait for its acknowledgement, and a later subscription of that name starts\n"
        "afresh. Without --forget the subscription stays and keeps collecting\n"
        "messages, so this only checks that no listener holds it. Prints nothing.\n"
        "\n"
        "The service takes Unsubscribe only from the connection a subscription is\n"
        "attached to. So unsubscribe first subscribes as NAME (with window 1), then\n"
        "unsubscribes. Hence it fails with org.durabus1.Error.SubscriberBusy while a\n"
        "listener holds NAME, and without --forget it creates the durable\n"
        "subscription NAME when it does not exist yet.\n"
        "JSON: {\"endpoint\", \"subscriber\", \"forgotten\"}\n"
        "\n"
        "Options:\n"
        "     --subscriber NAME   The durable subscription (required)\n"
        "     --forget            Delete the subscription\n";

static const char endpoints_help[] =
        "Usage: " PROGRAM " endpoints\n"
        "\n"
        "Lists every endpoint, sorted by name, one per line: \"NAME PATH\".\n"
        "JSON: {\"name\", \"path\"} per endpoint\n"
        "\n"
        "Options:\n";

static const char open_help[] =
        "Usage: " PROGRAM " open ENDPOINT\n"
        "\n"
        "Creates ENDPOINT unless it exists, and prints its object path.\n"
        "JSON: {\"name\", \"path\"}\n"
        "\n"
        "Options:\n";

static const char stats_help[] =
        "Usage: " PROGRAM " stats ENDPOINT\n"
        "\n"
        "Prints every property of ENDPOINT, one \"key value\" line each: name, bus-name,\n"
        "stored-messages, stored-bytes (payloads and ids), discarded-messages,\n"
        "expired-messages, and one line per durable subscription:\n"
        "\"subscription NAME attached|detached pending N\", N being the stored\n"
        "messages it has not acknowledged. Reading creates nothing: an endpoint that\n"
        "does not exist fails with org.freedesktop.DBus.Error.UnknownObject.\n"
        "JSON: {\"name\", \"bus_name\", \"stored_messages\", \"stored_bytes\",\n"
        "\"subscriptions\": [{\"name\", \"attached\", \"pending\"}], \"discarded_messages\",\n"
        "\"expired_messages\"}\n"
        "\n"
        "Options:\n";

static const char clear_help[] =
        "Usage: " PROGRAM " clear ENDPOINT\n"
        "\n"
        "Deletes every stored message of ENDPOINT and prints how many there were.\n"
        "Its subscriptions stay.\n"
        "JSON: {\"endpoint\", \"removed\"}\n"
        "\n"
        "Options:\n";

static const char delete_help[] =
        "Usage: " PROGRAM " delete ENDPOINT\n"
        "\n"
        "Deletes ENDPOINT with its stored messages, its subscriptions and its bus\n"
        "name. Fails with org.durabus1.Error.NoSuchEndpoint when there is none.\n"
        "Prints nothing.\n"
        "JSON: {\"endpoint\", \"deleted\": true}\n"
        "\n"
        "Options:\n";

static const char version_help[] =
        "Usage: " PROGRAM " version\n"
        "\n"
        "Prints the version of this client and of the running service (starting it\n"
        "if needed): \"client VERSION\" and \"service VERSION\" lines.\n"
        "JSON: {\"client\", \"service\"}\n"
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

static int check_subscriber(const char *verb, const Args *args) {
        if (!args->subscriber || args->subscriber[0] == '\0')
                return usage_error("%s: missing --subscriber NAME", verb);
        return 0;
}

static int check_ack(const Args *args) {
        return check_subscriber("ack", args);
}

static int check_unsubscribe(const Args *args) {
        return check_subscriber("unsubscribe", args);
}

static const char *const endpoint_arg[] = { "ENDPOINT" };
static const char *const send_args[] = { "ENDPOINT", "PAYLOAD" };
static const char *const ack_args[] = { "ENDPOINT", "ID" };

static const Verb verbs[] = {
        { "send", send_options, send_args, 2, 2, NULL, verb_send, send_help },
        { "listen", listen_options, endpoint_arg, 1, 1, check_listen, verb_listen, listen_help },
        { "ack", ack_options, ack_args, 2, -1, check_ack, verb_ack, ack_help },
        { "unsubscribe", unsubscribe_options, endpoint_arg, 1, 1, check_unsubscribe, verb_unsubscribe,
          unsubscribe_help },
        { "endpoints", plain_options, NULL, 0, 0, NULL, verb_endpoints, endpoints_help },
        { "open", plain_options, endpoint_arg, 1, 1, NULL, verb_open, open_help },
        { "stats", plain_options, endpoint_arg, 1, 1, NULL, verb_stats, stats_help },
        { "clear", plain_options, endpoint_arg, 1, 1, NULL, verb_clear, clear_help },
        { "delete", plain_options, endpoint_arg, 1, 1, NULL, verb_delete, delete_help },
        { "version", plain_options, NULL, 0, 0, NULL, verb_version, version_help },
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
              "  unsubscribe ENDPOINT --subscriber NAME [--forget]\n"
              "                         Delete (--forget) a durable subscription\n"
              "  endpoints              List the endpoints: \"NAME PATH\"\n"
              "  open ENDPOINT          Create an endpoint; prints its path\n"
              "  stats ENDPOINT         Print every property of the endpoint\n"
              "  clear ENDPOINT         Delete every stored message; prints how many\n"
              "  delete ENDPOINT        Delete an endpoint, its messages and subscriptions\n"
              "  version                Print the client's and the service's version\n"
              "\n"
              "ENDPOINT is a name like \"chat\" or \"app.jobs\": elements of [A-Za-z0-9_],\n"
              "not starting with a digit, separated by single dots, 1 to 200 characters.\n"
              "'" PROGRAM " COMMAND --help' describes a command.\n"
              "\n"
              "A service that does not trust the caller (a sandboxed app, or every caller\n"
              "when its configuration says trust-same-user=false) refuses what the caller\n"
              "has no right to with org.freedesktop.DBus.Error.AccessDenied; --token-file\n"
              "proves the token of a client its configuration registers.\n"
              "\n"
              "Options:\n"
              "     --version           Show the version\n",
              stdout);
        fputs(common_options_help, stdout);
        fputs(exit_status_help, stdout);
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
        case ARG_USER:
                args->address = NULL;
                return 0;

        case ARG_ADDRESS:
                args->address = optarg;
                return 0;

        case ARG_TOKEN_FILE:
                if (optarg[0] == '\0')
                        return usage_error("--token-file needs a file name");
                args->token_file = optarg;
                return 0;

        case ARG_TIMEOUT:
                if (parse_u64(optarg, &u) < 0 || u == 0 || u > UINT64_MAX / USEC_PER_SEC)
                        return usage_error("--timeout needs a positive whole number of seconds, not '%s'", optarg);
                args->timeout_usec = u * USEC_PER_SEC;
                return 0;

        case 'o':
                if (streq(optarg, "text"))
                        args->output = OUTPUT_TEXT;
                else if (streq(optarg, "json"))
                        args->output = OUTPUT_JSON;
                else
                        return usage_error("--output needs 'text' or 'json', not '%s'", optarg);
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

        case ARG_FORGET:
                args->forget = true;
                return 0;

        case ARG_COUNT:
                if (parse_u64(optarg, &u) < 0 || u == 0)
                        return usage_error("--count needs a positive whole number, not '%s'", optarg);
                args->count = u;
                return 0;

        case ARG_START:
                if (!streq(optarg, "all") && !streq(optarg, "new"))
                        return usage_error("--start needs 'all' or 'new', not '%s'", optarg);
                args->start_new = streq(optarg, "new");
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
        while ((c = getopt_long(argc, argv, ":ho:", verb->options, NULL)) >= 0) {
                if (c == 'h') {
                        fputs(verb->help, stdout);
                        fputs(common_options_help, stdout);
                        fputs(exit_status_help, stdout);
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
        while ((c = getopt_long(argc, argv, "+:ho:", options, NULL)) >= 0) {
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
