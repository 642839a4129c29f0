/* SPDX-License-Identifier: MIT */

/*
 * The example programs of client/examples, run as a user would run them
 * against the built service on a private bus (see fixture.h): what they
 * print, on which stream, their exit status, and what they leave stored.
 * Both listeners take the same arguments and print the same lines, so most
 * cases run for each; they part where the service dies under them. Plus a
 * check of the build wiring of the GDBus bindings the GLib example is built
 * on.
 *
 * The environment names the programs: $DURABUS_GLIB_LISTEN is the GLib
 * example, $DURABUS_C_LISTEN the libdurabus one; $INTERFACES_DIR holds the
 * introspection XML.
 */

#include "fixture.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "durabus-gdbus.h"

#define ENDPOINT "app.jobs"
#define SUBSCRIBER "indexer"

/* ---- Running an example ------------------------------------------------- */

/* A listener example: the test data of the cases that run for each. It
 * starts with the fixture's options, as fixture_setup() expects. */
typedef struct Listener {
        FixtureOptions options;
        const char *env;        /* the variable that holds its path */
        const char *name;       /* its name, which prefixes its errors */
        const char *tests;      /* the test path its cases go under */
} Listener;

static const Listener glib_listen = {
        .env = "DURABUS_GLIB_LISTEN",
        .name = "durabus-glib-listen",
        .tests = "/examples/glib-listen",
};

static const Listener c_listen = {
        .env = "DURABUS_C_LISTEN",
        .name = "durabus-c-listen",
        .tests = "/examples/c-listen",
};

/* An example started in the background. Both pipes are drained as the
 * output comes, so the program never blocks on a full pipe. */
typedef struct Example {
        GSubprocess *proc;
        GDataInputStream *out;  /* standard output, read line by line */
        GOutputStream *err;     /* standard error, collected in memory */
        gboolean err_done;
        gboolean exited;
} Example;

static void on_err_done(GObject *source, GAsyncResult *result, gpointer data) {
        Example *ex = data;
        g_autoptr(GError) error = NULL;

        g_output_stream_splice_finish(G_OUTPUT_STREAM(source), result, &error);
        g_assert_no_error(error);
        ex->err_done = TRUE;
}

static void on_exited(GObject *source, GAsyncResult *result, gpointer data) {
        Example *ex = data;

        (void) g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
        ex->exited = TRUE;
}

/* Starts the program named by the environment variable program_var with
 * the arguments that follow, up to a NULL. It inherits our environment,
 * where GTestDBus has put the private bus in DBUS_SESSION_BUS_ADDRESS. */
static Example *example_start(const char *program_var, ...) G_GNUC_NULL_TERMINATED;
static Example *example_start(const char *program_var, ...) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        const char *program = g_getenv(program_var);
        Example *ex = g_new0(Example, 1);
        const char *arg;
        va_list ap;

        g_assert_nonnull(program);
        g_ptr_array_add(argv, (gpointer) program);
        va_start(ap, program_var);
        while ((arg = va_arg(ap, const char *)))
                g_ptr_array_add(argv, (gpointer) arg);
        va_end(ap);
        g_ptr_array_add(argv, NULL);

        ex->proc = g_subprocess_newv((const char *const *) argv->pdata,
                                     G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
        g_assert_no_error(error);
        ex->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(ex->proc));
        ex->err = g_memory_output_stream_new_resizable();
        g_output_stream_splice_async(ex->err, g_subprocess_get_stderr_pipe(ex->proc),
                                     G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
                                     G_PRIORITY_DEFAULT, NULL, on_err_done, ex);
        g_subprocess_wait_async(ex->proc, NULL, on_exited, ex);
        return ex;
}

static void example_free(Example *ex) {
        /* Only a failing test gets here with the program still running. */
        if (!ex->exited)
                g_subprocess_force_exit(ex->proc);
        fixture_wait_for(&ex->exited);
        fixture_wait_for(&ex->err_done);
        g_object_unref(ex->out);
        g_object_unref(ex->err);
        g_object_unref(ex->proc);
        g_free(ex);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Example, example_free)

typedef struct LineWait {
        gboolean done;
        char *line;
        GError *error;
} LineWait;

static void on_line(GObject *source, GAsyncResult *result, gpointer data) {
        LineWait *w = data;

        w->line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), result, NULL, &w->error);
        w->done = TRUE;
}

/* The next line of standard output without its newline, or NULL at its
 * end; fails the test after the fixture's timeout. */
static char *example_read_line(Example *ex) {
        LineWait w = {};

        g_data_input_stream_read_line_async(ex->out, G_PRIORITY_DEFAULT, NULL, on_line, &w);
        fixture_wait_for(&w.done);
        g_assert_no_error(w.error);
        return w.line;
}

/* Checks that the program prints nothing more, waits for its exit and
 * returns its exit status; its standard error goes to *ret_err. */
static int example_wait(Example *ex, char **ret_err) {
        GMemoryOutputStream *err = G_MEMORY_OUTPUT_STREAM(ex->err);
        g_autofree char *extra = example_read_line(ex);

        g_assert_cmpstr(extra, ==, NULL);
        fixture_wait_for(&ex->err_done);
        fixture_wait_for(&ex->exited);

        *ret_err = g_strndup(g_memory_output_stream_get_data(err) ?: "", g_memory_output_stream_get_data_size(err));
        g_test_message("Standard error: %s", *ret_err);
        g_assert_true(g_subprocess_get_if_exited(ex->proc));
        return g_subprocess_get_exit_status(ex->proc);
}

/* "SEQ ID PAYLOAD", the line a listener prints for numbered message i. */
static char *message_line(guint i, guint64 seq) {
        g_autofree char *id = fixture_message_id(i);
        g_autofree char *payload = fixture_message_payload(i);

        return g_strdup_printf("%" G_GUINT64_FORMAT " %s %s", seq, id, payload);
}

static guint64 send_numbered(Fixture *f, guint i) {
        g_autofree char *id = fixture_message_id(i);
        g_autofree char *payload = fixture_message_payload(i);

        return fixture_send(f->conn, ENDPOINT, id, payload, NULL);
}

static void assert_next_line(Example *ex, guint i, guint64 seq) {
        g_autofree char *line = example_read_line(ex);
        g_autofree char *expected = message_line(i, seq);

        g_assert_cmpstr(line, ==, expected);
}

/* ---- Both listeners ------------------------------------------------------ */

static void test_listen_replay(Fixture *f, gconstpointer data) {
        const Listener *l = data;
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        guint64 seqs[3];

        g_test_summary("A listener example receives the messages sent before it ran, prints each as "
                       "'SEQ ID PAYLOAD', acknowledges it, and exits 0 after COUNT; nothing stays stored.");

        for (guint i = 0; i < G_N_ELEMENTS(seqs); i++)
                seqs[i] = send_numbered(f, i);

        ex = example_start(l->env, ENDPOINT, SUBSCRIBER, "3", NULL);
        for (guint i = 0; i < G_N_ELEMENTS(seqs); i++)
                assert_next_line(ex, i, seqs[i]);
        g_assert_cmpint(example_wait(ex, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");

        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

static void test_listen_live(Fixture *f, gconstpointer data) {
        const Listener *l = data;
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        guint64 seq;

        g_test_summary("A listener example also receives a message sent while it listens.");

        seq = send_numbered(f, 0);
        ex = example_start(l->env, ENDPOINT, SUBSCRIBER, "2", NULL);

        /* Once it printed the first message it is subscribed, so the next
         * one is delivered live. */
        assert_next_line(ex, 0, seq);
        seq = send_numbered(f, 1);
        assert_next_line(ex, 1, seq);

        g_assert_cmpint(example_wait(ex, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

static void test_listen_invalid_endpoint(Fixture *f, gconstpointer data) {
        const Listener *l = data;
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        g_autofree char *prefix = g_strconcat(l->name, ": ", NULL);

        g_test_summary("An error of the service makes a listener example exit 1, printing nothing on standard "
                       "output and, on standard error, the bad value and the D-Bus error name in parentheses.");

        ex = example_start(l->env, "9lives", SUBSCRIBER, NULL);
        g_assert_cmpint(example_wait(ex, &err), ==, 1);
        g_assert_true(g_str_has_prefix(err, prefix));
        g_assert_true(g_str_has_suffix(err, " (" ERROR_INVALID_NAME ")\n"));
        g_assert_nonnull(strstr(err, "'9lives'"));
}

static void test_listen_usage(gconstpointer data) {
        const Listener *l = data;
        g_autoptr(Example) missing = NULL, zero = NULL;
        g_autofree char *err = NULL, *zero_err = NULL;
        g_autofree char *prefix = g_strconcat(l->name, ": ", NULL);

        g_test_summary("Wrong arguments make a listener example exit 2, before it uses the bus: a missing one "
                       "with its usage, a COUNT that is not a positive number with what is wrong.");

        missing = example_start(l->env, ENDPOINT, NULL);
        g_assert_cmpint(example_wait(missing, &err), ==, 2);
        g_assert_true(g_str_has_prefix(err, "Usage: "));

        zero = example_start(l->env, ENDPOINT, SUBSCRIBER, "0", NULL);
        g_assert_cmpint(example_wait(zero, &zero_err), ==, 2);
        g_assert_true(g_str_has_prefix(zero_err, prefix));
}

/* ---- The GLib example ---------------------------------------------------- */

static void test_glib_listen_service_gone(Fixture *f, gconstpointer data) {
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        guint64 seq;

        g_test_summary("When the service dies under it, the GLib example (which does not re-subscribe, unlike "
                       "libdurabus) says so and exits 1 rather than wait for nothing.");

        seq = send_numbered(f, 0);
        ex = example_start(glib_listen.env, ENDPOINT, SUBSCRIBER, NULL);
        assert_next_line(ex, 0, seq);

        /* The kill may catch the Ack of that message on its way, and then the
         * Ack fails first; either way the example must stop with a message. */
        fixture_kill_service(f, SIGKILL);
        g_assert_cmpint(example_wait(ex, &err), ==, 1);
        g_assert_true(g_str_has_prefix(err, "durabus-glib-listen: "));
}

/* ---- The C example ------------------------------------------------------- */

/* The unique name of the service's connection; the service must run. */
static char *service_unique_name(Fixture *f) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        char *name;

        reply = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", DURABUS_NAME),
                                            G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL,
                                            &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(s)", &name);
        return name;
}

/*
 * Sends sig to the running service and waits until its process is gone and
 * the bus has dropped its connection. fixture_kill_service() waits for
 * org.durabus1 to have no owner, which it may never see here: the example's
 * libdurabus starts a new instance as soon as the old one is gone. The old
 * instance's unique name is never owned again.
 */
static void kill_service_instance(Fixture *f, int sig) {
        g_autofree char *unique = service_unique_name(f);
        pid_t pid = fixture_service_pid(f);

        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(kill(pid, sig), ==, 0);
        fixture_wait_for_name_to_vanish(f, unique);
        fixture_wait_for_process_gone(pid);
}

static void test_c_listen_service_killed(Fixture *f, gconstpointer data) {
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        guint64 seqs[4];

        g_test_summary("When the service is killed under it, the C example keeps listening: libdurabus attaches "
                       "the subscription to a new instance, and the example prints each message once, in order, "
                       "says nothing about the restart, and exits 0 after COUNT; nothing stays stored.");

        seqs[0] = send_numbered(f, 0);
        seqs[1] = send_numbered(f, 1);
        ex = example_start(c_listen.env, ENDPOINT, SUBSCRIBER, "4", NULL);
        assert_next_line(ex, 0, seqs[0]);
        assert_next_line(ex, 1, seqs[1]);

        /* The kill may catch an Ack on its way: that message then comes
         * again, redelivered, and must not be printed twice. */
        kill_service_instance(f, SIGKILL);

        /* Stored by a new instance, started by these calls unless the
         * example's library did first. */
        seqs[2] = send_numbered(f, 2);
        seqs[3] = send_numbered(f, 3);
        assert_next_line(ex, 2, seqs[2]);
        assert_next_line(ex, 3, seqs[3]);

        g_assert_cmpint(example_wait(ex, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

static void test_c_listen_sigterm(Fixture *f, gconstpointer data) {
        g_autoptr(Example) ex = NULL;
        g_autofree char *err = NULL;
        guint64 seq;

        g_test_summary("SIGTERM ends the C example without COUNT cleanly: exit 0, nothing on standard error, and "
                       "the message it printed is acknowledged.");

        seq = send_numbered(f, 0);
        ex = example_start(c_listen.env, ENDPOINT, SUBSCRIBER, NULL);
        assert_next_line(ex, 0, seq);

        /* The loop takes the signal only after the message handler, and so
         * the Ack it waits for, is done. */
        g_subprocess_send_signal(ex->proc, SIGTERM);
        g_assert_cmpint(example_wait(ex, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

/* ---- The GDBus bindings ------------------------------------------------- */

static char *method_names(GDBusMethodInfo **methods) {
        g_autoptr(GString) names = g_string_new(NULL);

        for (; methods && *methods; methods++)
                g_string_append_printf(names, "%s ", (*methods)->name);
        return g_string_free(g_steal_pointer(&names), FALSE);
}

static void test_bindings_match_xml(void) {
        g_autofree char *file = g_build_filename(g_getenv("INTERFACES_DIR"), ENDPOINT_IFACE ".xml", NULL);
        g_autofree char *xml = NULL;
        g_autofree char *expected = NULL, *generated = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(GError) error = NULL;
        GDBusInterfaceInfo *iface = durabus_endpoint_interface_info(), *xml_iface;

        g_test_summary("The GDBus bindings are generated from introspection/: DurabusEndpoint has the "
                       "methods of org.durabus1.Endpoint.xml, in its order.");

        g_file_get_contents(file, &xml, NULL, &error);
        g_assert_no_error(error);
        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        xml_iface = g_dbus_node_info_lookup_interface(node, ENDPOINT_IFACE);
        g_assert_nonnull(xml_iface);

        g_assert_cmpstr(iface->name, ==, xml_iface->name);
        expected = method_names(xml_iface->methods);
        generated = method_names(iface->methods);
        g_assert_cmpstr(generated, ==, expected);
}

/* The cases both listener examples pass, under l->tests. */
static void add_listener_tests(const Listener *l) {
        g_autofree char *replay = g_strconcat(l->tests, "/replay-and-ack", NULL);
        g_autofree char *live = g_strconcat(l->tests, "/live", NULL);
        g_autofree char *invalid = g_strconcat(l->tests, "/invalid-endpoint", NULL);
        g_autofree char *usage = g_strconcat(l->tests, "/usage", NULL);

        g_test_add(replay, Fixture, l, fixture_setup, test_listen_replay, fixture_teardown);
        g_test_add(live, Fixture, l, fixture_setup, test_listen_live, fixture_teardown);
        g_test_add(invalid, Fixture, l, fixture_setup, test_listen_invalid_endpoint, fixture_teardown);
        g_test_add_data_func(usage, l, test_listen_usage);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add_func("/gdbus/endpoint/matches-xml", test_bindings_match_xml);

        add_listener_tests(&glib_listen);
        g_test_add("/examples/glib-listen/service-gone", Fixture, NULL, fixture_setup,
                   test_glib_listen_service_gone, fixture_teardown);

        add_listener_tests(&c_listen);
        g_test_add("/examples/c-listen/survives-service-kill", Fixture, NULL, fixture_setup,
                   test_c_listen_service_killed, fixture_teardown);
        g_test_add("/examples/c-listen/sigterm", Fixture, NULL, fixture_setup, test_c_listen_sigterm,
                   fixture_teardown);

        return g_test_run();
}
