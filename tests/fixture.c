/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <gio/gunixfdlist.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * GLib 2.74's GTestDBus spawns dbus-daemon with every descriptor of ours left
 * open, so from the second test case on the daemon inherits the pipe on which
 * GTestDBus's cleanup process waits for the test process to die. A test that
 * aborts then leaves that process and the daemon running, and meson waits out
 * its 300 s timeout. Marking our descriptors close-on-exec before the bus
 * comes up keeps the pipe to ourselves, so a failure fails fast and leaves
 * nothing behind.
 */
static void keep_descriptors_from_children(void) {
        g_autoptr(GDir) dir = g_dir_open("/proc/self/fd", 0, NULL);
        const char *entry;

        g_assert_nonnull(dir);
        while ((entry = g_dir_read_name(dir))) {
                int fd = atoi(entry), flags = fd > 2 ? fcntl(fd, F_GETFD) : -1;

                if (flags >= 0)
                        (void) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
        }
}

static char *write_service_file(const char *dir, const char *args) {
        const char *daemon = g_getenv("DURABUSD");
        const char *wrapper = g_getenv("DURABUSD_WRAPPER");
        g_autofree char *path = NULL;
        g_autofree char *contents = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_nonnull(daemon);
        path = g_build_filename(dir, "org.durabus1.service", NULL);
        /* No trailing space: the bus would pass it on as an empty argument. */
        contents = g_strdup_printf("[D-BUS Service]\nName=org.durabus1\nExec=%s%s%s%s%s\n",
                                   wrapper ? wrapper : "", wrapper ? " " : "", daemon, args ? " " : "",
                                   args ? args : "");
        g_file_set_contents(path, contents, -1, &error);
        g_assert_no_error(error);
        return g_steal_pointer(&path);
}

void fixture_setup(Fixture *f, gconstpointer data) {
        const FixtureOptions *options = data;
        g_autofree char *file = NULL;
        g_autoptr(GError) error = NULL;
        const char *address;

        keep_descriptors_from_children();

        /* Isolated per test by G_TEST_OPTION_ISOLATE_DIRS; the daemon passes
         * this environment on to the service it activates. */
        /* G_TEST_OPTION_ISOLATE_DIRS gives GLib fresh directories but points
         * the variables themselves at /dev/null; the daemon hands them on to
         * the service, so set them to the isolated directories. */
        g_setenv("HOME", g_get_home_dir(), TRUE);
        g_setenv("XDG_STATE_HOME", g_get_user_state_dir(), TRUE);
        g_setenv("XDG_DATA_HOME", g_get_user_data_dir(), TRUE);
        g_setenv("XDG_CONFIG_HOME", g_get_user_config_dir(), TRUE);
        g_setenv("XDG_CACHE_HOME", g_get_user_cache_dir(), TRUE);

        f->state_dir = g_build_filename(g_get_user_state_dir(), "durabus", NULL);
        f->services_dir = g_build_filename(g_get_user_cache_dir(), "test-services", NULL);
        f->endpoint_services_dir = g_build_filename(g_get_user_data_dir(), "dbus-1", "services", NULL);
        g_assert_cmpint(g_mkdir_with_parents(f->services_dir, 0700), ==, 0);
        g_assert_cmpint(g_mkdir_with_parents(f->endpoint_services_dir, 0700), ==, 0);

        file = write_service_file(f->services_dir, options ? options->service_args : NULL);

        f->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_test_dbus_add_service_dir(f->bus, f->services_dir);
        g_test_dbus_add_service_dir(f->bus, f->endpoint_services_dir);
        g_test_dbus_up(f->bus);

        address = g_test_dbus_get_bus_address(f->bus);
        f->conn = g_dbus_connection_new_for_address_sync(
                address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                NULL, NULL, &error);
        g_assert_no_error(error);
}

void fixture_teardown(Fixture *f, gconstpointer data) {
        pid_t pid = fixture_service_pid(f);

        /* Stop the service in order, as its idle exit would, so each test
         * also proves a clean shutdown; the bus goes down after it. */
        if (pid > 0)
                fixture_kill_service(f, SIGTERM);

        g_dbus_connection_close_sync(f->conn, NULL, NULL);
        g_clear_object(&f->conn);
        g_test_dbus_down(f->bus);
        g_clear_object(&f->bus);
        g_clear_pointer(&f->state_dir, g_free);
        g_clear_pointer(&f->services_dir, g_free);
        g_clear_pointer(&f->endpoint_services_dir, g_free);
}

void fixture_write_private_file(const char *path, const char *contents) {
        g_autofree char *dir = g_path_get_dirname(path);
        g_autoptr(GError) error = NULL;

        g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
        g_file_set_contents_full(path, contents, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error);
        g_assert_no_error(error);
}

void fixture_write_config(const char *contents) {
        g_autofree char *path = g_build_filename(g_get_user_config_dir(), "durabus", "durabus.conf", NULL);

        fixture_write_private_file(path, contents);
}

GDBusConnection *fixture_connect(Fixture *f) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *c;

        c = g_dbus_connection_new_for_address_sync(
                g_test_dbus_get_bus_address(f->bus),
                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL,
                NULL, &error);
        g_assert_no_error(error);
        return c;
}

GVariant *fixture_call(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                       const char *reply_type, GError **error) {
        return g_dbus_connection_call_sync(c, DURABUS_NAME, path, iface, method, args,
                                           reply_type ? G_VARIANT_TYPE(reply_type) : NULL, G_DBUS_CALL_FLAGS_NONE,
                                           FIXTURE_TIMEOUT_MS, NULL, error);
}

GVariant *fixture_call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method, GVariant *args,
                          const char *reply_type) {
        g_autoptr(GError) error = NULL;
        GVariant *reply;

        reply = fixture_call(c, path, iface, method, args, reply_type, &error);
        g_assert_no_error(error);
        return reply;
}

GError *fixture_call_error(GDBusConnection *c, const char *path, const char *iface, const char *method,
                           GVariant *args) {
        g_autoptr(GVariant) reply = NULL;
        GError *error = NULL;

        reply = fixture_call(c, path, iface, method, args, NULL, &error);
        return error;
}

char *fixture_endpoint_path(const char *name) {
        g_autofree char *slashed = g_strdup(name);

        g_strdelimit(slashed, ".", '/');
        return g_strconcat("/org/durabus1/endpoint/", slashed, NULL);
}

GVariant *fixture_get_property(GDBusConnection *c, const char *path, const char *iface, const char *property) {
        g_autoptr(GVariant) reply = NULL;
        GVariant *value;

        reply = fixture_call_ok(c, path, PROPERTIES_IFACE, "Get", g_variant_new("(ss)", iface, property), "(v)");
        g_variant_get(reply, "(v)", &value);
        return value;
}

/* ---- Broker ---------------------------------------------------------- */

void fixture_open_endpoint(GDBusConnection *c, const char *name, char **ret_path) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(c, BROKER_PATH, BROKER_IFACE, "OpenEndpoint", g_variant_new("(sa{sv})", name, NULL),
                                "(o)");
        if (ret_path)
                g_variant_get(reply, "(o)", ret_path);
}

void fixture_delete_endpoint(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(c, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint", g_variant_new("(s)", name), "()");
}

GVariant *fixture_list_endpoints(GDBusConnection *c) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(c, BROKER_PATH, BROKER_IFACE, "ListEndpoints", NULL, "(a(so))");
        return g_variant_get_child_value(reply, 0);
}

static GDBusConnection *open_direct(GDBusConnection *c, GError **error) {
        g_autoptr(GUnixFDList) fds = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GSocket) socket = NULL;
        g_autoptr(GSocketConnection) stream = NULL;
        gint32 index;
        int fd;

        reply = g_dbus_connection_call_with_unix_fd_list_sync(c, DURABUS_NAME, BROKER_PATH, BROKER_IFACE,
                                                              "OpenDirect", g_variant_new("(a{sv})", NULL),
                                                              G_VARIANT_TYPE("(h)"), G_DBUS_CALL_FLAGS_NONE,
                                                              FIXTURE_TIMEOUT_MS, NULL, &fds, NULL, error);
        if (!reply)
                return NULL;
        g_variant_get(reply, "(h)", &index);
        fd = g_unix_fd_list_get(fds, index, error);
        if (fd < 0)
                return NULL;
        socket = g_socket_new_from_fd(fd, error);
        if (!socket) {
                (void) close(fd);
                return NULL;
        }
        stream = g_socket_connection_factory_create_connection(socket);
        return g_dbus_connection_new_sync(G_IO_STREAM(stream), NULL, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT,
                                          NULL, NULL, error);
}

GDBusConnection *fixture_open_direct(GDBusConnection *c) {
        g_autoptr(GError) error = NULL;
        GDBusConnection *direct;

        direct = open_direct(c, &error);
        g_assert_no_error(error);
        return direct;
}

GError *fixture_open_direct_error(GDBusConnection *c) {
        g_autoptr(GDBusConnection) direct = NULL;
        GError *error = NULL;

        direct = open_direct(c, &error);
        if (direct)
                g_dbus_connection_close_sync(direct, NULL, NULL);
        return error;
}

/* ---- Endpoint -------------------------------------------------------- */

GVariant *fixture_endpoint_call_ok(GDBusConnection *c, const char *endpoint, const char *method, GVariant *args,
                                   const char *reply_type) {
        g_autofree char *path = fixture_endpoint_path(endpoint);

        return fixture_call_ok(c, path, ENDPOINT_IFACE, method, args, reply_type);
}

GError *fixture_endpoint_call_error(GDBusConnection *c, const char *endpoint, const char *method, GVariant *args) {
        g_autofree char *path = fixture_endpoint_path(endpoint);

        return fixture_call_error(c, path, ENDPOINT_IFACE, method, args);
}

guint64 fixture_send(GDBusConnection *c, const char *endpoint, const char *id, const char *payload, char **ret_id) {
        g_autoptr(GVariant) reply = NULL;
        const char *out_id;
        guint64 seq;

        reply = fixture_endpoint_call_ok(c, endpoint, "Send", g_variant_new("(ssa{sv})", id, payload, NULL), "(st)");
        g_variant_get(reply, "(&st)", &out_id, &seq);
        if (ret_id)
                *ret_id = g_strdup(out_id);
        return seq;
}

guint64 fixture_subscribe(GDBusConnection *c, const char *endpoint, const char *subscriber) {
        return fixture_subscribe_with(c, endpoint, subscriber, NULL, 0);
}

guint64 fixture_subscribe_with(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *start,
                               guint32 window) {
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder options;
        guint64 pending;

        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        if (start)
                g_variant_builder_add(&options, "{sv}", "start", g_variant_new_string(start));
        if (window > 0)
                g_variant_builder_add(&options, "{sv}", "window", g_variant_new_uint32(window));
        reply = fixture_endpoint_call_ok(c, endpoint, "Subscribe", g_variant_new("(sa{sv})", subscriber, &options),
                                         "(t)");
        g_variant_get(reply, "(t)", &pending);
        return pending;
}

void fixture_unsubscribe(GDBusConnection *c, const char *endpoint, const char *subscriber, gboolean forget) {
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder options;

        g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
        if (forget)
                g_variant_builder_add(&options, "{sv}", "forget", g_variant_new_boolean(TRUE));
        reply = fixture_endpoint_call_ok(c, endpoint, "Unsubscribe", g_variant_new("(sa{sv})", subscriber, &options),
                                         "()");
}

guint32 fixture_ack(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *const *ids) {
        g_autoptr(GVariant) reply = NULL;
        guint32 acked;

        reply = fixture_endpoint_call_ok(c, endpoint, "Ack", g_variant_new("(s^as)", subscriber, ids), "(u)");
        g_variant_get(reply, "(u)", &acked);
        return acked;
}

guint64 fixture_clear_all(GDBusConnection *c, const char *endpoint) {
        g_autoptr(GVariant) reply = NULL;
        guint64 removed;

        reply = fixture_endpoint_call_ok(c, endpoint, "ClearAll", NULL, "(t)");
        g_variant_get(reply, "(t)", &removed);
        return removed;
}

guint64 fixture_endpoint_u64_property(GDBusConnection *c, const char *endpoint, const char *property) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) value = fixture_get_property(c, path, ENDPOINT_IFACE, property);

        g_assert_cmpstr(g_variant_get_type_string(value), ==, "t");
        return g_variant_get_uint64(value);
}

guint64 fixture_stored_messages(GDBusConnection *c, const char *endpoint) {
        return fixture_endpoint_u64_property(c, endpoint, "StoredMessages");
}

/* ---- Errors ---------------------------------------------------------- */

void fixture_assert_dbus_error_at(const char *file, int line, const char *func, const GError *error,
                                  const char *name, const char *needle) {
        g_autoptr(GError) stripped = NULL;
        g_autofree char *remote = NULL;

        if (!error) {
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "D-Bus error name", "(success)", "==",
                                           name);
                return;
        }
        remote = g_dbus_error_get_remote_error(error);
        if (g_strcmp0(remote, name) != 0) {
                g_test_message("Error received: %s", error->message);
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "D-Bus error name", remote, "==", name);
                return;
        }

        stripped = g_error_copy(error);
        g_dbus_error_strip_remote_error(stripped);
        g_test_message("%s: %s", remote, stripped->message);
        if (stripped->message[0] == '\0')
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "error message", stripped->message, "!=",
                                           "");
        else if (needle && !strstr(stripped->message, needle))
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "error message names the bad value",
                                           stripped->message, "contains", needle);
}

/* ---- The service process and the bus --------------------------------- */

pid_t fixture_service_pid(Fixture *f) {
        g_autoptr(GVariant) reply = NULL;
        guint32 pid;

        reply = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                            g_variant_new("(s)", DURABUS_NAME), G_VARIANT_TYPE("(u)"),
                                            G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, NULL);
        if (!reply)
                return 0;

        g_variant_get(reply, "(u)", &pid);
        return (pid_t) pid;
}

pid_t fixture_start_service(Fixture *f) {
        g_autoptr(GVariant) reply = NULL;
        pid_t pid;

        reply = fixture_call_ok(f->conn, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, "()");
        pid = fixture_service_pid(f);
        g_assert_cmpint(pid, >, 0);
        return pid;
}

static gboolean timeout_cb(gpointer data) {
        g_error("Timed out after %d ms waiting for %s", FIXTURE_TIMEOUT_MS, (const char *) data);
        return G_SOURCE_REMOVE;
}

static void wait_until(gboolean (*done)(gpointer), gpointer data, const char *what) {
        guint timeout = g_timeout_add(FIXTURE_TIMEOUT_MS, timeout_cb, (gpointer) what);

        while (!done(data))
                g_main_context_iteration(NULL, TRUE);
        g_source_remove(timeout);
}

static gboolean flag_is_set(gpointer data) {
        return *(gboolean *) data;
}

void fixture_wait_for(gboolean *flag) {
        wait_until(flag_is_set, flag, "an awaited event");
}

static void name_vanished(GDBusConnection *c, const char *name, gpointer data) {
        *(gboolean *) data = TRUE;
}

guint fixture_watch_name_vanishing(Fixture *f, const char *name, gboolean *vanished) {
        return g_bus_watch_name_on_connection(f->conn, name, G_BUS_NAME_WATCHER_FLAGS_NONE, NULL, name_vanished,
                                              vanished, NULL);
}

void fixture_wait_for_name_to_vanish(Fixture *f, const char *name) {
        gboolean vanished = FALSE;
        guint watch = fixture_watch_name_vanishing(f, name, &vanished);

        fixture_wait_for(&vanished);
        g_bus_unwatch_name(watch);
}

void fixture_close_connection(Fixture *f, GDBusConnection *c) {
        g_autofree char *name = g_strdup(g_dbus_connection_get_unique_name(c));
        g_autoptr(GError) error = NULL;
        gboolean vanished = FALSE;
        guint watch;

        watch = fixture_watch_name_vanishing(f, name, &vanished);
        g_dbus_connection_close_sync(c, NULL, &error);
        g_assert_no_error(error);
        fixture_wait_for(&vanished);
        g_bus_unwatch_name(watch);
}

static gboolean process_gone(gpointer data) {
        pid_t pid = GPOINTER_TO_INT(data);

        /* The daemon is the service's parent and reaps it; until then the
         * process is a zombie, which kill(pid, 0) still finds, so look at
         * its state instead. */
        g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", pid);
        g_autofree char *contents = NULL;
        const char *state;

        if (!g_file_get_contents(stat_path, &contents, NULL, NULL))
                return TRUE;
        state = strrchr(contents, ')');
        return state && (state[2] == 'Z' || state[2] == 'X');
}

static gboolean wake_up(gpointer data) {
        return G_SOURCE_CONTINUE;
}

void fixture_wait_for_process_gone(pid_t pid) {
        /* Nothing signals the end of a process that is not our child, so
         * wake up for a look at it on each iteration of a short poll. */
        guint poll = g_timeout_add(5, wake_up, NULL);

        wait_until(process_gone, GINT_TO_POINTER(pid), "a process to end");
        g_source_remove(poll);
}

void fixture_kill_service(Fixture *f, int sig) {
        pid_t pid = fixture_service_pid(f);
        gboolean vanished = FALSE;
        guint watch;

        g_assert_cmpint(pid, >, 0);
        watch = fixture_watch_name_vanishing(f, DURABUS_NAME, &vanished);
        g_assert_cmpint(kill(pid, sig), ==, 0);
        fixture_wait_for(&vanished);
        g_bus_unwatch_name(watch);

        /* The name goes when the socket closes; the process may still be
         * ending. */
        fixture_wait_for_process_gone(pid);
}

/* ---- Numbered messages ----------------------------------------------- */

char *fixture_message_id(guint i) {
        return g_strdup_printf("msg-%04u", i);
}

char *fixture_message_payload(guint i) {
        return g_strdup_printf("{\"n\": %u}", i);
}

GArray *fixture_send_numbered(GDBusConnection *c, const char *endpoint, guint first, guint n) {
        GArray *seqs = g_array_sized_new(FALSE, FALSE, sizeof(guint64), n);

        for (guint i = first; i < first + n; i++) {
                g_autofree char *id = fixture_message_id(i);
                g_autofree char *payload = fixture_message_payload(i);
                g_autofree char *out_id = NULL;
                guint64 seq = fixture_send(c, endpoint, id, payload, &out_id);

                g_assert_cmpstr(out_id, ==, id);
                g_array_append_val(seqs, seq);
        }
        return seqs;
}

guint64 fixture_seq_at(GArray *seqs, guint i) {
        g_assert_cmpuint(i, <, seqs->len);
        return g_array_index(seqs, guint64, i);
}

#define MAX_IN_FLIGHT 100

/* The state of one fixture_send_pipelined(). */
typedef struct Pipeline {
        GDBusConnection *conn;
        const char *path;
        guint total;
        guint next;             /* the next message to send */
        guint outstanding;
        gboolean done;
        GArray *seqs;
        SendBatch *batch;
} Pipeline;

typedef struct PipelineCall {
        Pipeline *pipeline;
        guint index;
} PipelineCall;

static void pipeline_reply(GObject *source, GAsyncResult *result, gpointer data);

static void pipeline_send_next(Pipeline *p) {
        g_autofree char *id = fixture_message_id(p->next);
        g_autofree char *payload = fixture_message_payload(p->next);
        PipelineCall *call = g_new0(PipelineCall, 1);

        call->pipeline = p;
        call->index = p->next++;
        p->outstanding++;
        g_dbus_connection_call(p->conn, DURABUS_NAME, p->path, ENDPOINT_IFACE, "Send",
                               g_variant_new("(ssa{sv})", id, payload, NULL), G_VARIANT_TYPE("(st)"),
                               G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, pipeline_reply, call);
}

static void pipeline_reply(GObject *source, GAsyncResult *result, gpointer data) {
        g_autofree PipelineCall *call = data;
        Pipeline *p = call->pipeline;
        SendBatch *batch = p->batch;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (reply) {
                g_variant_get(reply, "(&st)", NULL, &g_array_index(p->seqs, guint64, call->index));
                batch->replied++;
        } else {
                if (batch->kill_after == 0)
                        g_assert_no_error(error);
                g_test_message("Send of message %u failed: %s", call->index, error->message);
                batch->failed++;
        }

        if (batch->kill_after > 0 && !batch->killed && batch->replied == batch->kill_after) {
                g_assert_cmpint(kill(batch->kill_pid, SIGKILL), ==, 0);
                batch->killed = TRUE;
        }

        p->outstanding--;
        if (p->next < p->total)
                pipeline_send_next(p);
        else if (p->outstanding == 0)
                p->done = TRUE;
}

/* What the watchdog of fixture_send_pipelined() saw last. */
typedef struct PipelineWatch {
        Pipeline *pipeline;
        guint answered_at_last_look;
} PipelineWatch;

static gboolean pipeline_stalled_cb(gpointer data) {
        PipelineWatch *w = data;
        guint answered = w->pipeline->next - w->pipeline->outstanding;

        if (answered == w->answered_at_last_look)
                g_error("No pipelined Send got an answer for %d ms (%u of %u answered)", FIXTURE_TIMEOUT_MS,
                        answered, w->pipeline->total);
        w->answered_at_last_look = answered;
        return G_SOURCE_CONTINUE;
}

GArray *fixture_send_pipelined(GDBusConnection *c, const char *endpoint, guint n, SendBatch *batch) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        SendBatch no_batch = { 0 };
        Pipeline p = { .conn = c, .path = path, .total = n, .batch = batch ? batch : &no_batch };

        g_assert_cmpuint(n, >, 0);
        p.seqs = g_array_new(FALSE, TRUE, sizeof(guint64));
        g_array_set_size(p.seqs, n);
        while (p.next < MIN(n, MAX_IN_FLIGHT))
                pipeline_send_next(&p);

        /* Only a stall fails: under the sanitizers, a large backlog may
         * take longer than the timeout as a whole. */
        PipelineWatch w = { &p, 0 };
        guint watchdog = g_timeout_add(FIXTURE_TIMEOUT_MS, pipeline_stalled_cb, &w);
        while (!p.done)
                g_main_context_iteration(NULL, TRUE);
        g_source_remove(watchdog);
        return p.seqs;
}

/* ---- Collected Message signals --------------------------------------- */

static void free_delivered(gpointer p) {
        Delivered *d = p;

        g_free(d->path);
        g_free(d->subscriber);
        g_free(d->id);
        g_free(d->payload);
        g_free(d);
}

/* The fields of a message that both signals carry alike. */
static void read_meta(Delivered *d, const char *path, GVariant *meta) {
        d->path = g_strdup(path);
        g_assert_true(g_variant_lookup(meta, "timestamp", "t", &d->timestamp));
        g_assert_true(g_variant_lookup(meta, "delivery-count", "u", &d->delivery_count));
}

static void on_message(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                       const char *signal, GVariant *params, gpointer data) {
        Collector *collector = data;
        g_autoptr(GVariant) meta = NULL;
        Delivered *d = g_new0(Delivered, 1);

        g_variant_get(params, "(ssts@a{sv})", &d->subscriber, &d->id, &d->seq, &d->payload, &meta);
        read_meta(d, path, meta);
        g_ptr_array_add(collector->messages, d);
}

static void on_messages(GDBusConnection *c, const char *sender, const char *path, const char *iface,
                        const char *signal, GVariant *params, gpointer data) {
        Collector *collector = data;
        g_autoptr(GVariant) messages = NULL;
        const char *subscriber;

        g_assert_true(g_variant_is_of_type(params, G_VARIANT_TYPE("(sa(stsa{sv}))")));
        g_variant_get(params, "(&s@a(stsa{sv}))", &subscriber, &messages);
        collector->n_batches++;
        g_assert_cmpuint(g_variant_n_children(messages), >, 0);
        for (gsize i = 0; i < g_variant_n_children(messages); i++) {
                g_autoptr(GVariant) meta = NULL;
                Delivered *d = g_new0(Delivered, 1);

                g_variant_get_child(messages, i, "(sts@a{sv})", &d->id, &d->seq, &d->payload, &meta);
                d->subscriber = g_strdup(subscriber);
                d->signal_no = collector->n_batches;
                read_meta(d, path, meta);
                g_ptr_array_add(collector->messages, d);
        }
}

Collector *collector_new(GDBusConnection *c) {
        Collector *collector = g_new0(Collector, 1);

        collector->conn = g_object_ref(c);
        collector->messages = g_ptr_array_new_with_free_func(free_delivered);
        /* Message signals are unicast: no match rule is needed for the bus
         * to route them here, the subscription only dispatches them. */
        collector->subscription = g_dbus_connection_signal_subscribe(
                c, NULL, ENDPOINT_IFACE, "Message", NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE, on_message, collector, NULL);
        collector->batch_subscription = g_dbus_connection_signal_subscribe(c, NULL, ENDPOINT_IFACE, "Messages",
                                                                           NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                                                           on_messages, collector, NULL);
        return collector;
}

void collector_free(Collector *collector) {
        g_dbus_connection_signal_unsubscribe(collector->conn, collector->subscription);
        g_dbus_connection_signal_unsubscribe(collector->conn, collector->batch_subscription);
        g_ptr_array_unref(collector->messages);
        g_object_unref(collector->conn);
        g_free(collector);
}

typedef struct CountWait {
        Collector *collector;
        guint n;
} CountWait;

static gboolean has_count(gpointer data) {
        CountWait *w = data;
        return w->collector->messages->len >= w->n;
}

void collector_wait(Collector *collector, guint n) {
        CountWait w = { collector, n };
        wait_until(has_count, &w, "Message signals");
}

void collector_sync(Collector *collector) {
        g_autoptr(GVariant) reply = NULL;

        reply = fixture_call_ok(collector->conn, BROKER_PATH, "org.freedesktop.DBus.Peer", "Ping", NULL, "()");
        while (g_main_context_iteration(NULL, FALSE))
                ;
}

const Delivered *collector_get(Collector *collector, guint i) {
        g_assert_cmpuint(i, <, collector->messages->len);
        return g_ptr_array_index(collector->messages, i);
}

guint32 fixture_ack_collected(GDBusConnection *c, const char *endpoint, const char *subscriber,
                              Collector *collector, guint from, guint to) {
        g_autoptr(GPtrArray) ids = g_ptr_array_new();

        for (guint i = from; i < to; i++)
                g_ptr_array_add(ids, collector_get(collector, i)->id);
        g_ptr_array_add(ids, NULL);
        return fixture_ack(c, endpoint, subscriber, (const char *const *) ids->pdata);
}

void fixture_assert_delivered(const Delivered *d, const char *endpoint, const char *subscriber, guint number,
                              guint64 seq, guint32 delivery_count) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autofree char *id = fixture_message_id(number);
        g_autofree char *payload = fixture_message_payload(number);

        g_assert_cmpstr(d->path, ==, path);
        g_assert_cmpstr(d->subscriber, ==, subscriber);
        g_assert_cmpstr(d->id, ==, id);
        g_assert_cmpuint(d->seq, ==, seq);
        g_assert_cmpstr(d->payload, ==, payload);
        g_assert_cmpuint(d->delivery_count, ==, delivery_count);
}

/* ---- Restarting under clients that activate it ----------------------- */

char *fixture_service_unique_name(Fixture *f) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        char *owner;

        reply = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", DURABUS_NAME),
                                            G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL,
                                            &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(s)", &owner);
        return owner;
}

void fixture_stop_service_instance(Fixture *f, int sig) {
        g_autofree char *unique = fixture_service_unique_name(f);
        pid_t pid = fixture_service_pid(f);

        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(kill(pid, sig), ==, 0);
        fixture_wait_for_name_to_vanish(f, unique);
        fixture_wait_for_process_gone(pid);
}

/* ---- Helpers of the reliability tests -------------------------------- */

guint64 fixture_env_uint(const char *name, guint64 fallback, guint64 min, guint64 max) {
        const char *value = g_getenv(name);
        g_autoptr(GError) error = NULL;
        guint64 n;

        if (!value || !*value)
                return fallback;
        if (!g_ascii_string_to_unsigned(value, 10, min, max, &n, &error))
                g_error("Invalid value '%s' of %s: %s", value, name, error->message);
        return n;
}

/* One call of a producer in flight. */
typedef struct ProducerCall {
        Producer *producer;
        guint offset;
} ProducerCall;

static void producer_reply(GObject *source, GAsyncResult *result, gpointer data);

static void producer_send_next(Producer *p) {
        g_autofree char *id = fixture_message_id(p->first + p->next);
        g_autofree char *payload = fixture_message_payload(p->first + p->next);
        ProducerCall *call = g_new0(ProducerCall, 1);

        call->producer = p;
        call->offset = p->next++;
        p->outstanding++;
        /* No timeout of its own: the caller's watchdog fails a stall, and
         * a busy test process may take its time to read a reply. */
        g_dbus_connection_call(p->conn, DURABUS_NAME, p->path, ENDPOINT_IFACE, "Send",
                               g_variant_new("(ssa{sv})", id, payload, NULL), G_VARIANT_TYPE("(st)"),
                               G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL, producer_reply, call);
}

static void producer_reply(GObject *source, GAsyncResult *result, gpointer data) {
        g_autofree ProducerCall *call = data;
        Producer *p = call->producer;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        if (error)
                g_error("Send of message %u to endpoint '%s' failed: %s", p->first + call->offset, p->endpoint,
                        error->message);
        g_variant_get(reply, "(&st)", NULL, &g_array_index(p->seqs, guint64, call->offset));
        p->replied++;

        p->outstanding--;
        if (p->next < p->total)
                producer_send_next(p);
        else if (p->outstanding == 0)
                p->done = TRUE;
}

Producer *producer_new(GDBusConnection *c, const char *endpoint, guint first, guint n, guint max_in_flight) {
        Producer *p = g_new0(Producer, 1);

        g_assert_cmpuint(n, >, 0);
        g_assert_cmpuint(max_in_flight, >, 0);
        g_assert_cmpuint(max_in_flight, <=, MAX_IN_FLIGHT);
        p->conn = g_object_ref(c);
        p->endpoint = g_strdup(endpoint);
        p->path = fixture_endpoint_path(endpoint);
        p->first = first;
        p->total = n;
        p->seqs = g_array_new(FALSE, TRUE, sizeof(guint64));
        g_array_set_size(p->seqs, n);
        while (p->next < MIN(n, max_in_flight))
                producer_send_next(p);
        return p;
}

void producer_free(Producer *p) {
        if (!p)
                return;
        /* Each call in flight points to it. */
        g_assert_cmpuint(p->outstanding, ==, 0);
        g_object_unref(p->conn);
        g_free(p->endpoint);
        g_free(p->path);
        g_array_unref(p->seqs);
        g_free(p);
}

/* What producers_wait() watches. */
typedef struct ProducersWait {
        GPtrArray *producers;
        guint64 replied_at_last_look;
} ProducersWait;

static guint64 producers_replied(GPtrArray *producers) {
        guint64 replied = 0;

        for (guint i = 0; i < producers->len; i++)
                replied += ((Producer *) g_ptr_array_index(producers, i))->replied;
        return replied;
}

static gboolean producers_stalled_cb(gpointer data) {
        ProducersWait *w = data;
        guint64 replied = producers_replied(w->producers);

        if (replied == w->replied_at_last_look)
                g_error("No Send of %u producers got a reply for %d ms (%" G_GUINT64_FORMAT " replies so far)",
                        w->producers->len, FIXTURE_TIMEOUT_MS, replied);
        w->replied_at_last_look = replied;
        return G_SOURCE_CONTINUE;
}

static gboolean producers_done(GPtrArray *producers) {
        for (guint i = 0; i < producers->len; i++)
                if (!((Producer *) g_ptr_array_index(producers, i))->done)
                        return FALSE;
        return TRUE;
}

void producers_wait(GPtrArray *producers) {
        ProducersWait w = { producers, producers_replied(producers) };
        guint watchdog = g_timeout_add(FIXTURE_TIMEOUT_MS, producers_stalled_cb, &w);

        while (!producers_done(producers))
                g_main_context_iteration(NULL, TRUE);
        g_source_remove(watchdog);
}
