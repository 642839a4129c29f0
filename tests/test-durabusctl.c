/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of durabusctl: the built client, run as a person would
 * run it from a shell, against the built service on a private bus (see
 * fixture.h). They check what it prints, on which stream, and its exit
 * status, also against a service that trusts nobody but the holder of a
 * token.
 *
 * $DURABUSCTL is the client to run. $DURABUSCTL_WRAPPER, when set, is a
 * command line to run it under, e.g. "valgrind --error-exitcode=99 -q".
 */

#include "fixture.h"

#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#define ENDPOINT "chat"

/* ---- Running durabusctl ------------------------------------------------- */

/* A durabusctl started in the background, with its output in pipes. */
typedef struct Ctl {
        GSubprocess *proc;
        GDataInputStream *out;  /* lines of standard output, for listeners */
        gboolean exited;
} Ctl;

static void on_exited(GObject *source, GAsyncResult *result, gpointer data) {
        Ctl *ctl = data;

        (void) g_subprocess_wait_finish(G_SUBPROCESS(source), result, NULL);
        ctl->exited = TRUE;
}

/* envp NULL: the test's environment, where GTestDBus has put the address of
 * the private bus in DBUS_SESSION_BUS_ADDRESS. */
static Ctl *ctl_startv(char **envp, const char *const *args) {
        g_autoptr(GSubprocessLauncher) launcher = NULL;
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;
        const char *program = g_getenv("DURABUSCTL");
        const char *wrapper = g_getenv("DURABUSCTL_WRAPPER");
        Ctl *ctl;

        g_assert_nonnull(program);

        if (wrapper && *wrapper) {
                g_auto(GStrv) words = NULL;

                g_assert_true(g_shell_parse_argv(wrapper, NULL, &words, &error));
                g_assert_no_error(error);
                for (char **w = words; *w; w++)
                        g_ptr_array_add(argv, g_strdup(*w));
        }

        g_ptr_array_add(argv, g_strdup(program));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
        if (envp)
                g_subprocess_launcher_set_environ(launcher, envp);

        ctl = g_new0(Ctl, 1);
        ctl->proc = g_subprocess_launcher_spawnv(launcher, (const char *const *) argv->pdata, &error);
        g_assert_no_error(error);
        ctl->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(ctl->proc));
        g_subprocess_wait_async(ctl->proc, NULL, on_exited, ctl);
        return ctl;
}

/* ctl_startv() for the arguments first and the rest of ap, up to a NULL. */
static Ctl *ctl_startva(const char *first, va_list ap) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();

        for (const char *a = first; a; a = va_arg(ap, const char *))
                g_ptr_array_add(args, (gpointer) a);
        g_ptr_array_add(args, NULL);

        return ctl_startv(NULL, (const char *const *) args->pdata);
}

static Ctl *ctl_start(const char *first, ...) G_GNUC_NULL_TERMINATED;
static Ctl *ctl_start(const char *first, ...) {
        Ctl *ctl;
        va_list ap;

        va_start(ap, first);
        ctl = ctl_startva(first, ap);
        va_end(ap);
        return ctl;
}

static void ctl_free(Ctl *ctl) {
        /* Only a failing test gets here with the process still running. */
        if (!ctl->exited) {
                g_subprocess_force_exit(ctl->proc);
                fixture_wait_for(&ctl->exited);
        }
        g_object_unref(ctl->out);
        g_object_unref(ctl->proc);
        g_free(ctl);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Ctl, ctl_free)

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

/* The next line durabusctl prints, without its newline; fails the test at
 * the end of the output or after the fixture's timeout. */
static char *ctl_read_line(Ctl *ctl) {
        LineWait w = {};

        g_data_input_stream_read_line_async(ctl->out, G_PRIORITY_DEFAULT, NULL, on_line, &w);
        fixture_wait_for(&w.done);
        g_assert_no_error(w.error);
        g_assert_nonnull(w.line);
        return w.line;
}

static char *read_to_end(GInputStream *stream) {
        g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable();
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) bytes = NULL;

        g_output_stream_splice(memory, stream,
                               G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
        g_assert_no_error(error);
        bytes = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(memory));
        if (g_bytes_get_size(bytes) == 0)
                return g_strdup("");  /* g_strndup() would make NULL of it */
        return g_strndup(g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

/* Waits until durabusctl has exited and returns its exit status; the rest
 * of its output goes to ret_out and ret_err when not NULL. */
static int ctl_wait(Ctl *ctl, char **ret_out, char **ret_err) {
        g_autofree char *out = NULL, *err = NULL;

        fixture_wait_for(&ctl->exited);

        /* It has exited, so both pipes end now. */
        out = read_to_end(G_INPUT_STREAM(ctl->out));
        err = read_to_end(g_subprocess_get_stderr_pipe(ctl->proc));
        if (ret_out)
                *ret_out = g_steal_pointer(&out);
        if (ret_err)
                *ret_err = g_steal_pointer(&err);

        g_assert_true(g_subprocess_get_if_exited(ctl->proc));
        return g_subprocess_get_exit_status(ctl->proc);
}

typedef struct Result {
        int status;
        char *out;
        char *err;
} Result;

static void result_clear(Result *r) {
        g_free(r->out);
        g_free(r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Result, result_clear)

static Result ctl_runv(char **envp, const char *const *args) {
        g_autoptr(Ctl) ctl = ctl_startv(envp, args);
        Result r = {};

        r.status = ctl_wait(ctl, &r.out, &r.err);
        return r;
}

/* Runs durabusctl with these arguments to its end. */
static Result ctl_run(const char *first, ...) G_GNUC_NULL_TERMINATED;
static Result ctl_run(const char *first, ...) {
        g_autoptr(Ctl) ctl = NULL;
        Result r = {};
        va_list ap;

        va_start(ap, first);
        ctl = ctl_startva(first, ap);
        va_end(ap);
        r.status = ctl_wait(ctl, &r.out, &r.err);
        return r;
}

static void assert_success(const Result *r, const char *expected_out) {
        g_assert_cmpstr(r->err, ==, "");
        g_assert_cmpint(r->status, ==, 0);
        if (expected_out)
                g_assert_cmpstr(r->out, ==, expected_out);
}

/* A failure of the service or the bus: status 1 and the line
 * "durabusctl: MESSAGE (ERROR.NAME)" on standard error, nothing on
 * standard output. */
static void assert_bus_error(const Result *r, const char *error_name) {
        g_autofree char *suffix = g_strdup_printf(" (%s)\n", error_name);

        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpint(r->status, ==, 1);
        g_assert_true(g_str_has_prefix(r->err, "durabusctl: "));
        g_assert_nonnull(strstr(r->err, suffix));
        g_assert_cmpuint(strlen(strstr(r->err, suffix)), ==, strlen(suffix));
}

static void assert_usage_error(const Result *r) {
        g_assert_cmpstr(r->out, ==, "");
        g_assert_cmpint(r->status, ==, 2);
        g_assert_true(g_str_has_prefix(r->err, "durabusctl: "));
        g_assert_true(g_str_has_suffix(r->err, "\nTry 'durabusctl --help'.\n"));
        /* One line of reason, one of advice. */
        g_assert_cmpstr(strchr(r->err, '\n'), ==, strstr(r->err, "\nTry"));
}

/* A listener does not say when its Subscribe has been answered, so a test
 * cannot know when a message will count as "sent while it listens". Rather
 * than sleeping, keep sending: every probe is a real round trip through the
 * service, and the first probe sent after the Subscribe reaches the
 * listener, which then prints it and exits (--count 1). Returns the seq of
 * each probe, by the number in its id and payload "probe-N". */
static GArray *send_probes_until_exit(Fixture *f, Ctl *listener, const char *endpoint) {
        GArray *seqs = g_array_new(FALSE, FALSE, sizeof(guint64));
        gint64 deadline = g_get_monotonic_time() + FIXTURE_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;

        while (!listener->exited) {
                g_autofree char *id = g_strdup_printf("probe-%u", seqs->len);
                guint64 seq = fixture_send(f->conn, endpoint, id, id, NULL);

                g_array_append_val(seqs, seq);
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        }

        return seqs;
}

/* Checks that line is "SEQ probe-N probe-N" for a probe that was sent. */
static void assert_line_is_probe(const char *line, GArray *seqs) {
        g_auto(GStrv) fields = g_strsplit(line, " ", 3);
        guint64 n;

        g_assert_cmpuint(g_strv_length(fields), ==, 3);
        g_assert_true(g_str_has_prefix(fields[1], "probe-"));
        g_assert_cmpstr(fields[2], ==, fields[1]);
        g_assert_true(g_ascii_string_to_unsigned(fields[1] + strlen("probe-"), 10, 0, seqs->len - 1, &n, NULL));
        g_assert_cmpuint(g_ascii_strtoull(fields[0], NULL, 10), ==, g_array_index(seqs, guint64, n));
}

/* ---- JSON output -------------------------------------------------------- */

/* One line of -o json output: a JSON object, which the caller unrefs. */
static JsonObject *parse_json_object(const char *line) {
        g_autoptr(GError) error = NULL;
        g_autoptr(JsonNode) node = json_from_string(line, &error);

        g_assert_no_error(error);
        g_assert_nonnull(node);
        g_assert_true(JSON_NODE_HOLDS_OBJECT(node));
        return json_node_dup_object(node);
}

/* Every line of out, each a JSON object; out must end with a newline. */
static GPtrArray *parse_json_lines(const char *out) {
        g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func((GDestroyNotify) json_object_unref);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        guint n = g_strv_length(lines);

        g_assert_cmpuint(n, >, 0);
        g_assert_cmpstr(lines[n - 1], ==, "");
        for (guint i = 0; i + 1 < n; i++)
                g_ptr_array_add(objects, parse_json_object(lines[i]));
        return g_steal_pointer(&objects);
}

/* The only object of out, one line. */
static JsonObject *parse_json_single(const char *out) {
        g_autoptr(GPtrArray) objects = parse_json_lines(out);

        g_assert_cmpuint(objects->len, ==, 1);
        return json_object_ref(g_ptr_array_index(objects, 0));
}

/* Fails the test unless o has exactly these members, a NULL-terminated
 * list, in any order. */
static void assert_json_members(JsonObject *o, const char *const *names) {
        g_assert_cmpuint(json_object_get_size(o), ==, g_strv_length((char **) names));
        for (const char *const *n = names; *n; n++)
                g_assert_true(json_object_has_member(o, *n));
}

static const char *json_string(JsonObject *o, const char *member) {
        JsonNode *node = json_object_get_member(o, member);

        g_assert_nonnull(node);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_STRING);
        return json_node_get_string(node);
}

static gint64 json_int(JsonObject *o, const char *member) {
        JsonNode *node = json_object_get_member(o, member);

        g_assert_nonnull(node);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_INT64);
        return json_node_get_int(node);
}

static gboolean json_bool(JsonObject *o, const char *member) {
        JsonNode *node = json_object_get_member(o, member);

        g_assert_nonnull(node);
        g_assert_cmpint(json_node_get_value_type(node), ==, G_TYPE_BOOLEAN);
        return json_node_get_boolean(node);
}

/* A message line of listen -o json. */
static void assert_json_message(JsonObject *o, const char *endpoint, const char *subscriber, guint64 seq,
                                const char *id, const char *payload, guint32 delivery_count) {
        static const char *const members[] = { "endpoint", "subscriber", "seq", "id", "payload", "timestamp",
                                               "delivery_count", "redelivered", NULL };
        gint64 now = g_get_real_time();

        assert_json_members(o, members);
        g_assert_cmpstr(json_string(o, "endpoint"), ==, endpoint);
        g_assert_cmpstr(json_string(o, "subscriber"), ==, subscriber);
        g_assert_cmpint(json_int(o, "seq"), ==, (gint64) seq);
        g_assert_cmpstr(json_string(o, "id"), ==, id);
        g_assert_cmpstr(json_string(o, "payload"), ==, payload);
        /* Taken at send, in this test: within the last minute. */
        g_assert_cmpint(json_int(o, "timestamp"), <=, now);
        g_assert_cmpint(json_int(o, "timestamp"), >, now - 60 * G_USEC_PER_SEC);
        g_assert_cmpint(json_int(o, "delivery_count"), ==, delivery_count);
        g_assert_cmpint(json_bool(o, "redelivered"), ==, delivery_count > 1);
}

/* ---- send --------------------------------------------------------------- */

static void test_send_prints_id_and_seq(Fixture *f, gconstpointer data) {
        g_auto(Result) generated = {}, given = {}, again = {};

        g_test_summary("send prints the message's id (generated when not given) and its sequence number, "
                       "and a repeated id returns the stored message.");

        generated = ctl_run("send", ENDPOINT, "hello", NULL);
        assert_success(&generated, NULL);
        g_assert_true(g_regex_match_simple("^[0-9a-f]{32} 1\n$", generated.out, 0, 0));

        given = ctl_run("send", ENDPOINT, "{\"text\": \"hi there\"}", "--id", "my-id", NULL);
        assert_success(&given, "my-id 2\n");

        again = ctl_run("send", "--id", "my-id", ENDPOINT, "something else", NULL);
        assert_success(&again, "my-id 2\n");

        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 2);
}

/* ---- listen ------------------------------------------------------------- */

static void test_listen_prints_stored_messages_in_order(Fixture *f, gconstpointer data) {
        g_auto(Result) r = {};

        g_test_summary("listen --subscriber --ack --count N prints the N stored messages as 'SEQ ID PAYLOAD' "
                       "in sequence order, the payload as it is, acknowledges them and exits with 0.");

        fixture_send(f->conn, ENDPOINT, "m1", "one", NULL);
        fixture_send(f->conn, ENDPOINT, "m2", "two words  and spaces", NULL);
        fixture_send(f->conn, ENDPOINT, "m3", "{\"n\": 3}", NULL);

        r = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--ack", "--count", "3", NULL);
        assert_success(&r, "1 m1 one\n"
                           "2 m2 two words  and spaces\n"
                           "3 m3 {\"n\": 3}\n");

        /* Acknowledged by the only durable subscription: deleted. */
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

static void test_listen_after_ack_gets_only_newer_messages(Fixture *f, gconstpointer data) {
        g_auto(Result) first = {}, second = {};

        g_test_summary("A second listen of the same subscription gets nothing that the first one acknowledged: "
                       "the first message it prints is a marker sent afterwards.");

        fixture_send(f->conn, ENDPOINT, "a", "first", NULL);
        fixture_send(f->conn, ENDPOINT, "b", "second", NULL);
        first = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--ack", "--count", "2", NULL);
        assert_success(&first, "1 a first\n2 b second\n");

        fixture_send(f->conn, ENDPOINT, "marker", "after the acks", NULL);
        second = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--ack", "--count", "1", NULL);
        assert_success(&second, "3 marker after the acks\n");
}

static void test_listen_without_ack_gets_messages_again(Fixture *f, gconstpointer data) {
        g_auto(Result) first = {}, second = {}, third = {};

        g_test_summary("Without --ack nothing is acknowledged: the next listen prints the same messages again.");

        fixture_send(f->conn, ENDPOINT, "a", "first", NULL);
        fixture_send(f->conn, ENDPOINT, "b", "second", NULL);

        first = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", NULL);
        assert_success(&first, "1 a first\n");
        second = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "2", NULL);
        assert_success(&second, "1 a first\n2 b second\n");

        /* --window 1 holds the second message back until the first is
         * acknowledged, so the acks really flow while listening. */
        third = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--ack", "--window", "1", "--count", "2", NULL);
        assert_success(&third, "1 a first\n2 b second\n");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

static void test_listen_ephemeral_gets_live_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Ctl) listener = NULL;
        g_autoptr(GArray) seqs = NULL;
        g_autofree char *out = NULL, *err = NULL;
        g_auto(GStrv) lines = NULL;

        g_test_summary("listen without --subscriber uses an ephemeral subscription: it prints a message sent "
                       "while it listens, and none of the messages stored before.");

        fixture_send(f->conn, ENDPOINT, "old", "stored before", NULL);

        listener = ctl_start("listen", ENDPOINT, "--count", "1", NULL);
        seqs = send_probes_until_exit(f, listener, ENDPOINT);
        g_assert_cmpint(ctl_wait(listener, &out, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");

        lines = g_strsplit(out, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 2);
        g_assert_cmpstr(lines[1], ==, "");
        assert_line_is_probe(lines[0], seqs);
}

static void test_listen_start_new_skips_stored_messages(Fixture *f, gconstpointer data) {
        g_autoptr(Ctl) listener = NULL;
        g_autoptr(GArray) seqs = NULL;
        g_autofree char *out = NULL, *err = NULL;

        g_test_summary("listen --start new creates a subscription that receives only messages sent after it "
                       "was created.");

        fixture_send(f->conn, ENDPOINT, "old", "stored before", NULL);

        listener = ctl_start("listen", ENDPOINT, "--subscriber", "s", "--start", "new", "--ack", "--count", "1",
                             NULL);
        seqs = send_probes_until_exit(f, listener, ENDPOINT);
        g_assert_cmpint(ctl_wait(listener, &out, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");

        g_assert_true(g_str_has_suffix(out, "\n"));
        out[strlen(out) - 1] = '\0';
        assert_line_is_probe(out, seqs);
}

static void test_listen_ends_with_0_on_sigterm_and_sigint(Fixture *f, gconstpointer data) {
        static const int signals[] = { SIGTERM, SIGINT };

        g_test_summary("SIGTERM and SIGINT end a listener with exit status 0, after it acknowledged what it "
                       "printed and detached its subscription, so the next listener may take it over at once.");

        for (size_t i = 0; i < G_N_ELEMENTS(signals); i++) {
                g_autoptr(Ctl) listener = NULL;
                g_autofree char *id = g_strdup_printf("before-signal-%d", signals[i]);
                g_autofree char *expected = NULL, *line = NULL, *out = NULL, *err = NULL;
                guint64 seq;

                seq = fixture_send(f->conn, ENDPOINT, id, "payload", NULL);
                expected = g_strdup_printf("%" G_GUINT64_FORMAT " %s payload", seq, id);

                /* Each round sees only its own message: the previous round
                 * acknowledged its own one on the way out. Had it not
                 * detached, this Subscribe could also race the service's
                 * cleanup of the closed connection and fail as busy. */
                listener = ctl_start("listen", ENDPOINT, "--subscriber", "s", "--ack", NULL);
                line = ctl_read_line(listener);
                g_assert_cmpstr(line, ==, expected);

                g_subprocess_send_signal(listener->proc, signals[i]);
                g_assert_cmpint(ctl_wait(listener, &out, &err), ==, 0);
                g_assert_cmpstr(out, ==, "");
                g_assert_cmpstr(err, ==, "");
        }

        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

/* Sends payload with id to endpoint: over the fixture's connection, or, with
 * a token file, through durabusctl, which proves the token first. */
static void send_as(Fixture *f, const char *endpoint, const char *id, const char *payload, const char *token_file) {
        g_autofree char *expected = NULL;
        g_auto(Result) r = {};

        if (!token_file) {
                fixture_send(f->conn, endpoint, id, payload, NULL);
                return;
        }

        r = ctl_run("send", endpoint, payload, "--id", id, "--token-file", token_file, NULL);
        assert_success(&r, NULL);
        expected = g_strdup_printf("%s ", id);
        g_assert_true(g_str_has_prefix(r.out, expected));
}

/* A listener of endpoint (with --token-file token_file unless it is NULL)
 * prints a message, the service is stopped with sig, and the message sent
 * next is printed too, and nothing twice. */
static void check_listener_stays_attached(Fixture *f, const char *endpoint, const char *token_file, int sig) {
        g_autoptr(Ctl) listener = NULL;
        g_autofree char *first = NULL, *second = NULL, *out = NULL, *err = NULL;

        send_as(f, endpoint, "m", "hello", token_file);
        if (token_file)
                listener = ctl_start("listen", endpoint, "--subscriber", "s", "--token-file", token_file, NULL);
        else
                listener = ctl_start("listen", endpoint, "--subscriber", "s", NULL);
        first = ctl_read_line(listener);
        g_assert_cmpstr(first, ==, "1 m hello");

        fixture_stop_service_instance(f, sig);

        /* Stored by the next instance, which the listener or this call
         * starts. */
        send_as(f, endpoint, "after", "the restart", token_file);
        second = ctl_read_line(listener);
        g_assert_cmpstr(second, ==, "2 after the restart");

        g_subprocess_send_signal(listener->proc, SIGINT);
        g_assert_cmpint(ctl_wait(listener, &out, &err), ==, 0);
        g_assert_cmpstr(out, ==, "");
        g_assert_cmpstr(err, ==, "");
}

static void test_listen_stays_attached_when_the_service_restarts(Fixture *f, gconstpointer data) {
        g_test_summary("A listener whose service is stopped stays attached: the subscription attaches itself "
                       "to the next instance, and the message it printed before, unacknowledged and so "
                       "delivered again, is not printed twice.");

        check_listener_stays_attached(f, ENDPOINT, NULL, SIGTERM);
}

/* ---- ack ---------------------------------------------------------------- */

static void test_ack_acknowledges_by_id(Fixture *f, gconstpointer data) {
        g_auto(Result) create = {}, one = {}, again = {}, rest = {};

        g_test_summary("ack acknowledges messages by id for a durable subscription and prints how many were "
                       "acknowledged now; ids acknowledged before or never stored do not count.");

        /* A listener that acknowledges nothing creates the subscription, as
         * a consumer would before going away. */
        fixture_send(f->conn, ENDPOINT, "a", "first", NULL);
        create = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", NULL);
        assert_success(&create, "1 a first\n");
        fixture_send(f->conn, ENDPOINT, "b", "second", NULL);
        fixture_send(f->conn, ENDPOINT, "c", "third", NULL);

        one = ctl_run("ack", ENDPOINT, "--subscriber", "s", "a", "c", NULL);
        assert_success(&one, "2\n");
        again = ctl_run("ack", ENDPOINT, "a", "never-stored", "--subscriber", "s", NULL);
        assert_success(&again, "0\n");

        rest = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", NULL);
        assert_success(&rest, "2 b second\n");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);
}

static void test_ack_fails_while_a_listener_holds_the_subscription(Fixture *f, gconstpointer data) {
        g_autoptr(Ctl) listener = NULL;
        g_autofree char *line = NULL;
        g_auto(Result) r = {};

        g_test_summary("ack has to attach the subscription to itself, so it fails with "
                       "org.durabus1.Error.SubscriberBusy while a listener holds it.");

        fixture_send(f->conn, ENDPOINT, "m", "hello", NULL);
        listener = ctl_start("listen", ENDPOINT, "--subscriber", "s", NULL);
        line = ctl_read_line(listener);
        g_assert_cmpstr(line, ==, "1 m hello");

        r = ctl_run("ack", ENDPOINT, "--subscriber", "s", "m", NULL);
        assert_bus_error(&r, "org.durabus1.Error.SubscriberBusy");

        g_subprocess_send_signal(listener->proc, SIGINT);
        g_assert_cmpint(ctl_wait(listener, NULL, NULL), ==, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);
}

/* ---- endpoints, clear, delete ------------------------------------------- */

static void test_endpoints_lists_names_and_paths(Fixture *f, gconstpointer data) {
        g_auto(Result) none = {}, three = {};

        g_test_summary("endpoints prints one 'NAME PATH' line per endpoint, sorted by name.");

        none = ctl_run("endpoints", NULL);
        assert_success(&none, "");

        fixture_send(f->conn, "zeta", "", "z", NULL);
        fixture_send(f->conn, "app.jobs", "", "j", NULL);
        fixture_send(f->conn, ENDPOINT, "", "c", NULL);

        three = ctl_run("endpoints", NULL);
        assert_success(&three, "app.jobs /org/durabus1/endpoint/app/jobs\n"
                               "chat /org/durabus1/endpoint/chat\n"
                               "zeta /org/durabus1/endpoint/zeta\n");
}

static void test_clear_prints_number_removed(Fixture *f, gconstpointer data) {
        g_auto(Result) three = {}, none = {};

        g_test_summary("clear deletes every stored message of the endpoint and prints how many there were.");

        for (int i = 0; i < 3; i++)
                fixture_send(f->conn, ENDPOINT, "", "message", NULL);

        three = ctl_run("clear", ENDPOINT, NULL);
        assert_success(&three, "3\n");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);

        none = ctl_run("clear", ENDPOINT, NULL);
        assert_success(&none, "0\n");
}

static void test_delete_removes_the_endpoint(Fixture *f, gconstpointer data) {
        g_auto(Result) deleted = {}, listed = {}, again = {};

        g_test_summary("delete removes the endpoint; deleting it again fails with "
                       "org.durabus1.Error.NoSuchEndpoint.");

        fixture_send(f->conn, ENDPOINT, "", "message", NULL);
        fixture_send(f->conn, "other", "", "message", NULL);

        deleted = ctl_run("delete", ENDPOINT, NULL);
        assert_success(&deleted, "");

        listed = ctl_run("endpoints", NULL);
        assert_success(&listed, "other /org/durabus1/endpoint/other\n");

        again = ctl_run("delete", ENDPOINT, NULL);
        assert_bus_error(&again, "org.durabus1.Error.NoSuchEndpoint");
}

/* ---- errors ------------------------------------------------------------- */

static void test_invalid_endpoint_name_fails_with_invalid_name(Fixture *f, gconstpointer data) {
        g_autofree char *too_long = g_strnfill(201, 'a');
        const char *const names[] = { "9x", "a..b", "a-b", "", ".a", "a.", "a.1b", too_long };

        g_test_summary("Every command that takes an endpoint fails with status 1 and "
                       "org.durabus1.Error.InvalidName for an invalid endpoint name.");

        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
                const char *const commands[][6] = {
                        { "send", names[i], "payload", NULL },
                        { "listen", names[i], "--subscriber", "s", "--count", "1" },
                        { "ack", names[i], "--subscriber", "s", "id", NULL },
                        { "clear", names[i], NULL },
                        { "delete", names[i], NULL },
                        { "open", names[i], NULL },
                        { "stats", names[i], NULL },
                        { "unsubscribe", names[i], "--subscriber", "s", "--forget", NULL },
                };

                for (size_t j = 0; j < G_N_ELEMENTS(commands); j++) {
                        const char *args[G_N_ELEMENTS(commands[j]) + 1] = {};
                        g_auto(Result) r = {};

                        memcpy(args, commands[j], sizeof commands[j]);
                        r = ctl_runv(NULL, args);
                        assert_bus_error(&r, "org.durabus1.Error.InvalidName");
                        g_assert_nonnull(strstr(r.err, names[i]));
                }
        }
}

static void test_service_errors_are_printed_with_their_name(Fixture *f, gconstpointer data) {
        g_autofree char *long_id = g_strnfill(256, 'i');
        g_auto(Result) window = {}, subscriber = {}, id = {}, utf8 = {};

        g_test_summary("A failure reported by the service exits with 1 and prints "
                       "'durabusctl: MESSAGE (ERROR.NAME)' with the service's message and error name.");

        window = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--window", "0", NULL);
        assert_bus_error(&window, "org.freedesktop.DBus.Error.InvalidArgs");

        subscriber = ctl_run("listen", ENDPOINT, "--subscriber", "not valid!", NULL);
        assert_bus_error(&subscriber, "org.freedesktop.DBus.Error.InvalidArgs");

        id = ctl_run("send", ENDPOINT, "payload", "--id", long_id, NULL);
        assert_bus_error(&id, "org.freedesktop.DBus.Error.InvalidArgs");

        /* Caught before it reaches the bus, which would refuse it. */
        utf8 = ctl_run("send", ENDPOINT, "caf\xe9", NULL);
        g_assert_cmpint(utf8.status, ==, 1);
        g_assert_cmpstr(utf8.out, ==, "");
        g_assert_nonnull(strstr(utf8.err, "UTF-8"));
}

static const FixtureOptions small_payloads = { .service_args = "--max-payload 16" };

static void test_payload_over_the_limit_is_reported(Fixture *f, gconstpointer data) {
        g_auto(Result) fits = {}, over = {};

        g_test_summary("A payload over the service's limit fails with org.freedesktop.DBus.Error.LimitsExceeded "
                       "and nothing is stored.");

        fits = ctl_run("send", ENDPOINT, "sixteen bytes ok", "--id", "fits", NULL);
        assert_success(&fits, "fits 1\n");

        over = ctl_run("send", ENDPOINT, "seventeen bytes !", NULL);
        assert_bus_error(&over, "org.freedesktop.DBus.Error.LimitsExceeded");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);
}

/* ---- usage -------------------------------------------------------------- */

static void test_usage_errors_exit_with_2(Fixture *f, gconstpointer data) {
        const char *const cases[][7] = {
                { NULL },
                { "frobnicate", NULL },
                { "--frobnicate", "endpoints", NULL },
                { "send", NULL },
                { "send", ENDPOINT, NULL },
                { "send", ENDPOINT, "payload", "extra", NULL },
                { "send", ENDPOINT, "payload", "--id", NULL },
                { "send", ENDPOINT, "payload", "--subscriber", "s", NULL },
                { "listen", NULL },
                { "listen", ENDPOINT, "--count", "x", NULL },
                { "listen", ENDPOINT, "--count", "0", NULL },
                { "listen", ENDPOINT, "--count", "-1", NULL },
                { "listen", ENDPOINT, "--window", "4294967296", NULL },
                { "listen", ENDPOINT, "--start", "tomorrow", NULL },
                { "listen", ENDPOINT, "--ack", NULL },
                { "ack", ENDPOINT, "--subscriber", "s", NULL },
                { "ack", ENDPOINT, "id", NULL },
                { "ack", ENDPOINT, "--subscriber", "", "id", NULL },
                { "endpoints", "extra", NULL },
                { "clear", NULL },
                { "delete", NULL },
                { "--timeout", "0", "endpoints", NULL },
                { "--timeout", "soon", "endpoints", NULL },
                { "endpoints", "--timeout", NULL },
                { "-o", "yaml", "endpoints", NULL },
                { "endpoints", "--output", NULL },
                { "send", ENDPOINT, "payload", "--output=xml", NULL },
                { "open", NULL },
                { "open", ENDPOINT, "extra", NULL },
                { "stats", NULL },
                { "stats", ENDPOINT, "--subscriber", "s", NULL },
                { "unsubscribe", ENDPOINT, NULL },
                { "unsubscribe", ENDPOINT, "--forget", NULL },
                { "unsubscribe", "--subscriber", "s", NULL },
                { "send", ENDPOINT, "payload", "--forget", NULL },
                { "version", "extra", NULL },
        };

        g_test_summary("Unknown commands and options, missing or extra arguments and bad numbers exit with 2 "
                       "and a one-line reason plus a pointer to --help, without touching the service.");

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                const char *args[G_N_ELEMENTS(cases[i]) + 1] = {};
                g_auto(Result) r = {};

                memcpy(args, cases[i], sizeof cases[i]);
                r = ctl_runv(NULL, args);
                assert_usage_error(&r);
        }

        g_assert_cmpint(fixture_service_pid(f), ==, 0);
}

static void test_help_and_version_exit_with_0(Fixture *f, gconstpointer data) {
        const char *const commands[] = { "send", "listen", "ack", "unsubscribe", "endpoints", "open", "stats",
                                         "clear", "delete", "version" };
        g_auto(Result) help = {}, h = {}, version = {}, ack = {};

        g_test_summary("--help, COMMAND --help and --version print to standard output and exit with 0.");

        help = ctl_run("--help", NULL);
        assert_success(&help, NULL);
        g_assert_true(g_str_has_prefix(help.out, "Usage: durabusctl "));
        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++)
                g_assert_nonnull(strstr(help.out, commands[i]));

        g_assert_nonnull(strstr(help.out, "--token-file FILE"));
        g_assert_nonnull(strstr(help.out, "$DURABUS_TOKEN_FILE"));

        h = ctl_run("-h", NULL);
        assert_success(&h, help.out);

        for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
                g_autofree char *usage = g_strdup_printf("Usage: durabusctl %s", commands[i]);
                g_auto(Result) r = ctl_run(commands[i], "--help", NULL);

                assert_success(&r, NULL);
                g_assert_true(g_str_has_prefix(r.out, usage));
                /* Options, exit codes and the JSON form, for each. */
                g_assert_nonnull(strstr(r.out, "\nOptions:\n"));
                g_assert_nonnull(strstr(r.out, "--output"));
                g_assert_nonnull(strstr(r.out, "\nExit status: 0 on success, 1 "));
                g_assert_nonnull(strstr(r.out, "JSON: {"));
        }

        /* stats says it shows what each subscription has pending. */
        {
                g_auto(Result) stats = ctl_run("stats", "--help", NULL);

                g_assert_nonnull(strstr(stats.out, "pending"));
        }

        /* The detour over Subscribe is the user's business: it can fail as
         * busy and can create the subscription. */
        ack = ctl_run("ack", "--help", NULL);
        g_assert_nonnull(strstr(ack.out, "subscribes"));
        g_assert_nonnull(strstr(ack.out, "window 1"));
        g_assert_nonnull(strstr(ack.out, "SubscriberBusy"));

        version = ctl_run("--version", NULL);
        assert_success(&version, "durabusctl 0.1.0\n");

        g_assert_cmpint(fixture_service_pid(f), ==, 0);
}

static void test_address_option_connects_to_that_bus(Fixture *f, gconstpointer data) {
        g_auto(GStrv) env = g_get_environ();
        const char *address = g_test_dbus_get_bus_address(f->bus);
        const char *const without[] = { "send", ENDPOINT, "payload", NULL };
        const char *const with[] = { "--address", address, "--timeout", "20", "send", ENDPOINT, "payload",
                                     "--id", "via-address", NULL };
        g_auto(Result) unreachable = {}, sent = {};

        g_test_summary("--address connects to the bus at that address, with no session bus in the "
                       "environment.");

        /* Nothing to find: no address, and a runtime directory without a
         * bus socket in it. */
        env = g_environ_unsetenv(env, "DBUS_SESSION_BUS_ADDRESS");
        env = g_environ_setenv(env, "XDG_RUNTIME_DIR", f->services_dir, TRUE);

        unreachable = ctl_runv(env, without);
        g_assert_cmpint(unreachable.status, ==, 1);
        g_assert_cmpstr(unreachable.out, ==, "");
        g_assert_true(g_str_has_prefix(unreachable.err, "durabusctl: "));

        sent = ctl_runv(env, with);
        assert_success(&sent, "via-address 1\n");
}

/* ---- -o json ------------------------------------------------------------ */

static void test_json_send_and_listen(Fixture *f, gconstpointer data) {
        static const char *const send_members[] = { "id", "seq", NULL };
        const char *payload = "quote \" backslash \\ newline\n tab\t caf\xc3\xa9 {\"n\": 1}";
        g_auto(Result) sent = {}, first = {}, again = {}, flag = {};
        g_autoptr(JsonObject) o = NULL, m1 = NULL, m2 = NULL;

        g_test_summary("-o json prints one JSON object per line: send {id, seq}; listen one object per message, "
                       "with the payload as it was sent, its timestamp, delivery count and redelivered flag.");

        sent = ctl_run("-o", "json", "send", ENDPOINT, payload, "--id", "j1", NULL);
        assert_success(&sent, NULL);
        o = parse_json_single(sent.out);
        assert_json_members(o, send_members);
        g_assert_cmpstr(json_string(o, "id"), ==, "j1");
        g_assert_cmpint(json_int(o, "seq"), ==, 1);

        /* Not acknowledged: the second listen gets it again, redelivered. */
        first = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", "--output=json", NULL);
        assert_success(&first, NULL);
        m1 = parse_json_single(first.out);
        assert_json_message(m1, ENDPOINT, "s", 1, "j1", payload, 1);

        again = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", "-o", "json", "--ack", NULL);
        assert_success(&again, NULL);
        m2 = parse_json_single(again.out);
        assert_json_message(m2, ENDPOINT, "s", 1, "j1", payload, 2);
        g_assert_cmpint(json_int(m2, "timestamp"), ==, json_int(m1, "timestamp"));

        /* -o text is the default, and the last -o wins. */
        flag = ctl_run("-o", "json", "send", ENDPOINT, "plain", "--id", "t1", "-o", "text", NULL);
        assert_success(&flag, "t1 2\n");
}

static void test_json_management_commands(Fixture *f, gconstpointer data) {
        static const char *const endpoint_members[] = { "name", "path", NULL };
        static const char *const stats_members[] = { "name",          "bus_name",           "stored_messages",
                                                     "stored_bytes",  "subscriptions",      "discarded_messages",
                                                     "expired_messages", NULL };
        static const char *const clear_members[] = { "endpoint", "removed", NULL };
        static const char *const delete_members[] = { "endpoint", "deleted", NULL };
        static const char *const ack_members[] = { "endpoint", "subscriber", "acked", NULL };
        static const char *const unsubscribe_members[] = { "endpoint", "subscriber", "forgotten", NULL };
        static const char *const version_members[] = { "client", "service", NULL };
        g_auto(Result) open = {}, listed = {}, stats = {}, ack = {}, unsubscribe = {}, clear = {}, deleted = {},
                       version = {};
        g_autoptr(JsonObject) o = NULL, s = NULL, a = NULL, u = NULL, c = NULL, d = NULL, v = NULL;
        g_autoptr(GPtrArray) endpoints = NULL;

        g_test_summary("Every command prints JSON objects with -o json: open, endpoints, stats, ack, "
                       "unsubscribe, clear, delete and version.");

        open = ctl_run("-o", "json", "open", "app.jobs", NULL);
        assert_success(&open, NULL);
        o = parse_json_single(open.out);
        assert_json_members(o, endpoint_members);
        g_assert_cmpstr(json_string(o, "name"), ==, "app.jobs");
        g_assert_cmpstr(json_string(o, "path"), ==, "/org/durabus1/endpoint/app/jobs");

        fixture_send(f->conn, ENDPOINT, "a", "12345", NULL);
        fixture_send(f->conn, ENDPOINT, "b", "6789", NULL);

        listed = ctl_run("endpoints", "-o", "json", NULL);
        assert_success(&listed, NULL);
        endpoints = parse_json_lines(listed.out);
        g_assert_cmpuint(endpoints->len, ==, 2);
        for (guint i = 0; i < endpoints->len; i++)
                assert_json_members(g_ptr_array_index(endpoints, i), endpoint_members);
        g_assert_cmpstr(json_string(g_ptr_array_index(endpoints, 0), "name"), ==, "app.jobs");
        g_assert_cmpstr(json_string(g_ptr_array_index(endpoints, 1), "name"), ==, ENDPOINT);
        g_assert_cmpstr(json_string(g_ptr_array_index(endpoints, 1), "path"), ==, "/org/durabus1/endpoint/chat");

        stats = ctl_run("stats", ENDPOINT, "-o", "json", NULL);
        assert_success(&stats, NULL);
        s = parse_json_single(stats.out);
        assert_json_members(s, stats_members);
        g_assert_cmpstr(json_string(s, "name"), ==, ENDPOINT);
        g_assert_cmpint(json_int(s, "stored_messages"), ==, 2);
        g_assert_cmpint(json_int(s, "stored_bytes"), ==,
                        (gint64) fixture_endpoint_u64_property(f->conn, ENDPOINT, "StoredBytes"));
        g_assert_cmpuint(json_array_get_length(json_object_get_array_member(s, "subscriptions")), ==, 0);

        ack = ctl_run("-o", "json", "ack", ENDPOINT, "--subscriber", "s", "a", "never-stored", NULL);
        assert_success(&ack, NULL);
        a = parse_json_single(ack.out);
        assert_json_members(a, ack_members);
        g_assert_cmpstr(json_string(a, "subscriber"), ==, "s");
        g_assert_cmpint(json_int(a, "acked"), ==, 1);

        unsubscribe = ctl_run("-o", "json", "unsubscribe", ENDPOINT, "--subscriber", "s", "--forget", NULL);
        assert_success(&unsubscribe, NULL);
        u = parse_json_single(unsubscribe.out);
        assert_json_members(u, unsubscribe_members);
        g_assert_cmpstr(json_string(u, "endpoint"), ==, ENDPOINT);
        g_assert_true(json_bool(u, "forgotten"));

        /* b is left: a subscription that is forgotten acknowledges
         * nothing, and without durable subscriptions nothing is collected. */
        fixture_send(f->conn, ENDPOINT, "c", "kept", NULL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 2);
        clear = ctl_run("-o", "json", "clear", ENDPOINT, NULL);
        assert_success(&clear, NULL);
        c = parse_json_single(clear.out);
        assert_json_members(c, clear_members);
        g_assert_cmpint(json_int(c, "removed"), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);

        deleted = ctl_run("-o", "json", "delete", ENDPOINT, NULL);
        assert_success(&deleted, NULL);
        d = parse_json_single(deleted.out);
        assert_json_members(d, delete_members);
        g_assert_true(json_bool(d, "deleted"));

        version = ctl_run("-o", "json", "version", NULL);
        assert_success(&version, NULL);
        v = parse_json_single(version.out);
        assert_json_members(v, version_members);
        g_assert_cmpstr(json_string(v, "client"), ==, "0.1.0");
        g_assert_cmpstr(json_string(v, "service"), ==, "0.1.0");
}

/* ---- listen across a restart -------------------------------------------- */

#define RESTART_FIRST 10
#define RESTART_TOTAL 20

static void test_listen_json_survives_sigkill(Fixture *f, gconstpointer data) {
        g_autoptr(Ctl) listener = NULL;
        g_autoptr(GArray) before = NULL, after = NULL;
        g_autoptr(GPtrArray) lines = g_ptr_array_new_with_free_func(g_free);
        g_autofree char *out = NULL, *err = NULL;
        g_auto(GStrv) rest = NULL;
        pid_t killed;

        g_test_summary("listen -o json --count N keeps receiving while the service is killed with SIGKILL "
                       "midway and activated again: all N messages are printed once each, in sequence order, "
                       "and acknowledged.");

        before = fixture_send_numbered(f->conn, ENDPOINT, 0, RESTART_FIRST);

        /* Window 1: one message in flight at a time, so the kill surely
         * comes while most of the replay is still to be delivered. */
        listener = ctl_start("listen", ENDPOINT, "--subscriber", "s", "--ack", "--window", "1", "--count",
                             G_STRINGIFY(RESTART_TOTAL), "-o", "json", NULL);
        for (guint i = 0; i < 3; i++)
                g_ptr_array_add(lines, ctl_read_line(listener));

        killed = fixture_service_pid(f);
        fixture_stop_service_instance(f, SIGKILL);

        /* Stored by the next instance, which the listener or these calls
         * start. */
        after = fixture_send_numbered(f->conn, ENDPOINT, RESTART_FIRST, RESTART_TOTAL - RESTART_FIRST);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);

        g_assert_cmpint(ctl_wait(listener, &out, &err), ==, 0);
        g_assert_cmpstr(err, ==, "");
        g_assert_true(g_str_has_suffix(out, "\n"));
        rest = g_strsplit(out, "\n", -1);
        for (char **l = rest; *l && **l; l++)
                g_ptr_array_add(lines, g_strdup(*l));

        g_assert_cmpuint(lines->len, ==, RESTART_TOTAL);
        for (guint i = 0; i < RESTART_TOTAL; i++) {
                g_autoptr(JsonObject) o = parse_json_object(g_ptr_array_index(lines, i));
                g_autofree char *id = fixture_message_id(i);
                g_autofree char *payload = fixture_message_payload(i);
                guint64 seq = i < RESTART_FIRST ? fixture_seq_at(before, i) : fixture_seq_at(after, i - RESTART_FIRST);

                g_assert_cmpint(json_int(o, "seq"), ==, (gint64) seq);
                g_assert_cmpstr(json_string(o, "id"), ==, id);
                g_assert_cmpstr(json_string(o, "payload"), ==, payload);
                g_assert_cmpstr(json_string(o, "subscriber"), ==, "s");
                /* Whether the message in flight at the kill had been printed
                 * decides whether one comes again: the flag must only be
                 * consistent. */
                g_assert_cmpint(json_bool(o, "redelivered"), ==, json_int(o, "delivery_count") > 1);
        }

        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 0);
}

/* ---- open, stats, unsubscribe, version ---------------------------------- */

/* What stats prints for app.jobs: its properties in the service's order. */
static char *stats_text(guint64 messages, guint64 bytes, const char *subscriptions) {
        return g_strdup_printf("name app.jobs\n"
                               "bus-name org.durabus1.endpoint.app.jobs\n"
                               "stored-messages %" G_GUINT64_FORMAT "\n"
                               "stored-bytes %" G_GUINT64_FORMAT "\n"
                               "%s"
                               "discarded-messages 0\n"
                               "expired-messages 0\n",
                               messages, bytes, subscriptions);
}

static void test_open_and_stats(Fixture *f, gconstpointer data) {
        g_auto(Result) open = {}, again = {}, empty = {}, two = {}, missing = {};
        g_autofree char *expected = NULL;
        guint64 bytes;

        g_test_summary("open creates an endpoint and prints its path; stats prints its stored messages and "
                       "bytes and every other property, each durable subscription with its pending count, and fails with org.freedesktop.DBus.Error.UnknownObject for an endpoint that "
                       "does not exist, creating nothing.");

        open = ctl_run("open", "app.jobs", NULL);
        assert_success(&open, "/org/durabus1/endpoint/app/jobs\n");
        again = ctl_run("open", "app.jobs", NULL);
        assert_success(&again, "/org/durabus1/endpoint/app/jobs\n");

        empty = ctl_run("stats", "app.jobs", NULL);
        expected = stats_text(0, 0, "");
        assert_success(&empty, expected);
        g_clear_pointer(&expected, g_free);

        fixture_send(f->conn, "app.jobs", "one", "payload", NULL);
        fixture_send(f->conn, "app.jobs", "two", "more payload", NULL);
        bytes = fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes");
        g_assert_cmpuint(bytes, >, 0);
        expected = stats_text(2, bytes, "");
        two = ctl_run("stats", "app.jobs", NULL);
        assert_success(&two, expected);

        /* Each durable subscription follows, with what it has not
         * acknowledged; the acknowledged message, acknowledged by the only
         * subscription, is gone. */
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "reader"), ==, 2);
        fixture_ack(f->conn, "app.jobs", "reader", (const char *[]) { "one", NULL });
        bytes = fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes");
        g_clear_pointer(&expected, g_free);
        expected = stats_text(1, bytes, "subscription reader attached pending 1\n");
        {
                g_auto(Result) subscribed = ctl_run("stats", "app.jobs", NULL);

                assert_success(&subscribed, expected);
        }

        missing = ctl_run("stats", "nothing.here", NULL);
        assert_bus_error(&missing, "org.freedesktop.DBus.Error.UnknownObject");
        {
                g_auto(Result) listed = ctl_run("endpoints", NULL);

                assert_success(&listed, "app.jobs /org/durabus1/endpoint/app/jobs\n");
        }
}

static void test_unsubscribe_forget(Fixture *f, gconstpointer data) {
        g_autoptr(Ctl) listener = NULL;
        g_autofree char *line = NULL;
        g_auto(Result) create = {}, keep = {}, busy = {}, forget = {}, again = {};

        g_test_summary("unsubscribe --forget deletes a durable subscription, so its messages no longer wait "
                       "for it; without --forget it stays. Both fail with org.durabus1.Error.SubscriberBusy "
                       "while a listener holds it.");

        fixture_send(f->conn, ENDPOINT, "a", "first", NULL);
        create = ctl_run("listen", ENDPOINT, "--subscriber", "s", "--count", "1", NULL);
        assert_success(&create, "1 a first\n");

        keep = ctl_run("unsubscribe", ENDPOINT, "--subscriber", "s", NULL);
        assert_success(&keep, "");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);

        listener = ctl_start("listen", ENDPOINT, "--subscriber", "s", NULL);
        line = ctl_read_line(listener);
        g_assert_cmpstr(line, ==, "1 a first");
        busy = ctl_run("unsubscribe", ENDPOINT, "--subscriber", "s", "--forget", NULL);
        assert_bus_error(&busy, "org.durabus1.Error.SubscriberBusy");
        g_subprocess_send_signal(listener->proc, SIGTERM);
        g_assert_cmpint(ctl_wait(listener, NULL, NULL), ==, 0);

        forget = ctl_run("unsubscribe", ENDPOINT, "--forget", "--subscriber", "s", NULL);
        assert_success(&forget, "");

        /* The message stays (no durable subscription is left to collect
         * it), and a subscription of that name made afterwards is a new one,
         * which has not acknowledged it. */
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);
        again = ctl_run("ack", ENDPOINT, "--subscriber", "s", "a", NULL);
        assert_success(&again, "1\n");
}

static void test_version_prints_client_and_service(Fixture *f, gconstpointer data) {
        g_auto(Result) r = {};

        g_test_summary("version prints the client's version and the Version property of the service, "
                       "which it starts.");

        r = ctl_run("version", NULL);
        assert_success(&r, "client 0.1.0\nservice 0.1.0\n");
        g_assert_cmpint(fixture_service_pid(f), >, 0);
}

static void test_user_option_uses_the_session_bus(Fixture *f, gconstpointer data) {
        g_auto(Result) user = {}, last = {};

        g_test_summary("--user, the default, connects to the session bus, also after an --address.");

        user = ctl_run("--user", "send", ENDPOINT, "payload", "--id", "u1", NULL);
        assert_success(&user, "u1 1\n");

        last = ctl_run("--address", "unix:path=/nonexistent/bus", "send", ENDPOINT, "payload", "--id", "u2",
                       "--user", NULL);
        assert_success(&last, "u2 2\n");
}

/* ---- bash completion ---------------------------------------------------- */

/* What _durabusctl completes the last of words to, one candidate a line,
 * sorted. The script is data/durabusctl.bash-completion of the source tree
 * (the parent of $INTERFACES_DIR); words[0] is the built durabusctl, which
 * the script runs to list endpoints. */
static char *complete(const char *const *words) {
        g_autofree char *source_root = g_path_get_dirname(g_getenv("INTERFACES_DIR"));
        g_autofree char *script = g_build_filename(source_root, "data", "durabusctl.bash-completion", NULL);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GSubprocess) bash = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL, *err = NULL;

        g_ptr_array_add(argv, (gpointer) "bash");
        g_ptr_array_add(argv, (gpointer) "-c");
        g_ptr_array_add(argv, (gpointer) "source \"$1\" && shift && COMP_WORDS=(\"$@\") && COMP_CWORD=$(($# - 1)) "
                                         "&& COMP_LINE=\"$*\" && COMP_POINT=${#COMP_LINE} && _durabusctl && "
                                         "printf '%s\\n' \"${COMPREPLY[@]}\" | LC_ALL=C sort");
        g_ptr_array_add(argv, (gpointer) "bash");
        g_ptr_array_add(argv, script);
        g_ptr_array_add(argv, (gpointer) g_getenv("DURABUSCTL"));
        for (const char *const *w = words; *w; w++)
                g_ptr_array_add(argv, (gpointer) *w);
        g_ptr_array_add(argv, NULL);

        bash = g_subprocess_newv((const char *const *) argv->pdata,
                                 G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
        g_assert_no_error(error);
        g_subprocess_communicate_utf8(bash, NULL, NULL, &out, &err, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(err, ==, "");
        g_assert_true(g_subprocess_get_if_exited(bash));
        g_assert_cmpint(g_subprocess_get_exit_status(bash), ==, 0);
        return g_steal_pointer(&out);
}

#define COMPLETE(...) complete((const char *const[]) { __VA_ARGS__, NULL })

static void test_bash_completion(Fixture *f, gconstpointer data) {
        g_autofree char *commands = NULL, *s_commands = NULL, *endpoints = NULL, *prefixed = NULL,
                        *listen_opts = NULL, *start = NULL, *output = NULL, *second = NULL, *global = NULL;

        g_test_summary("The bash completion completes commands, global and per-command options, option "
                       "values, and endpoint names from the running service through durabusctl endpoints.");

        commands = COMPLETE("");
        g_assert_cmpstr(commands, ==, "ack\nclear\ndelete\nendpoints\nlisten\nopen\nsend\nstats\nunsubscribe\n"
                                      "version\n");
        s_commands = COMPLETE("s");
        g_assert_cmpstr(s_commands, ==, "send\nstats\n");
        global = COMPLETE("--ad");
        g_assert_cmpstr(global, ==, "--address\n");

        fixture_send(f->conn, "app.jobs", "", "j", NULL);
        fixture_send(f->conn, "app.mail", "", "m", NULL);
        fixture_send(f->conn, ENDPOINT, "", "c", NULL);

        endpoints = COMPLETE("listen", "");
        g_assert_cmpstr(endpoints, ==, "app.jobs\napp.mail\nchat\n");
        prefixed = COMPLETE("-o", "json", "send", "app.");
        g_assert_cmpstr(prefixed, ==, "app.jobs\napp.mail\n");

        listen_opts = COMPLETE("listen", "chat", "--s");
        g_assert_cmpstr(listen_opts, ==, "--start\n--subscriber\n");
        start = COMPLETE("listen", "chat", "--start", "");
        g_assert_cmpstr(start, ==, "all\nnew\n");
        output = COMPLETE("stats", "chat", "--output", "j");
        g_assert_cmpstr(output, ==, "json\n");

        /* The payload of send is free text: nothing to offer. */
        second = COMPLETE("send", "chat", "");
        g_assert_cmpstr(second, ==, "\n");
}

/* ---- Access control ------------------------------------------------------
 * A service that trusts nobody (trust-same-user=false) and gives the rights
 * on app.** to the holder of one token, as its configuration says. The
 * service reads the configuration when it starts, so each test writes it
 * before its first call. */

#define TOKEN "7f3a9c1e5b2d8f4a6c0e9b3d7a1f5c2e"
#define OTHER_TOKEN "0b4d8f2a6c1e5b9d3f7a0c4e8b2d6f1a"
#define ACCESS_CONFIG                                                                   \
        "[Broker]\ntrust-same-user=false\n\n"                                           \
        "[Client c]\ntoken=" TOKEN "\npublish=app.**\nsubscribe=app.**\n"
#define ACCESS_ENDPOINT "app.chat"

/* Writes the configuration the activated service reads and a token file
 * holding contents; returns the file's path, which the caller frees. */
static char *set_up_access(const char *contents) {
        char *token_file = g_build_filename(g_get_user_config_dir(), "app", "token", NULL);

        fixture_write_config(ACCESS_CONFIG);
        fixture_write_private_file(token_file, contents);
        return token_file;
}

/* Succeeded, printing nothing of the token. */
static void assert_success_without_token(const Result *r, const char *expected_out) {
        assert_success(r, expected_out);
        g_assert_null(strstr(r->out, TOKEN));
}

static void test_access_token_file_authenticates(Fixture *f, gconstpointer data) {
        g_autofree char *token_file = set_up_access(TOKEN "\n");
        g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "DURABUS_TOKEN_FILE", token_file, TRUE);
        const char *const from_env[] = { "ack", ACCESS_ENDPOINT, "--subscriber", "s", "a", NULL };
        g_auto(Result) sent = {}, listened = {}, acked = {}, listed = {}, stats = {}, version = {};

        g_test_summary("With --token-file, or $DURABUS_TOKEN_FILE, every command proves the token in the file "
                       "(without its trailing newline) right after connecting, and so may do what the token's "
                       "client may: send, listen, ack, list, read the properties of its endpoints.");

        sent = ctl_run("send", ACCESS_ENDPOINT, "hello", "--id", "a", "--token-file", token_file, NULL);
        assert_success_without_token(&sent, "a 1\n");

        listened = ctl_run("--token-file", token_file, "listen", ACCESS_ENDPOINT, "--subscriber", "s", "--count",
                           "1", NULL);
        assert_success_without_token(&listened, "1 a hello\n");

        acked = ctl_runv(env, from_env);
        assert_success_without_token(&acked, "1\n");

        listed = ctl_run("endpoints", "--token-file", token_file, NULL);
        assert_success_without_token(&listed, ACCESS_ENDPOINT " /org/durabus1/endpoint/app/chat\n");

        /* Over durabusctl's own connection, which proves the token too. */
        stats = ctl_run("stats", ACCESS_ENDPOINT, "--token-file", token_file, NULL);
        assert_success_without_token(&stats, NULL);
        g_assert_true(g_str_has_prefix(stats.out, "name " ACCESS_ENDPOINT "\n"));
        version = ctl_run("version", "--token-file", token_file, NULL);
        assert_success_without_token(&version, "client 0.1.0\nservice 0.1.0\n");
}

static void test_access_refused_without_token(Fixture *f, gconstpointer data) {
        g_autofree char *token_file = set_up_access(TOKEN);
        g_auto(Result) sent = {}, listened = {}, created = {}, listed = {};

        g_test_summary("Without a token file, a service that trusts nobody refuses send and listen with "
                       "org.freedesktop.DBus.Error.AccessDenied and exit status 1, and lists none of its "
                       "endpoints.");

        sent = ctl_run("send", ACCESS_ENDPOINT, "hello", NULL);
        assert_bus_error(&sent, ERROR_ACCESS_DENIED);
        g_assert_nonnull(strstr(sent.err, ACCESS_ENDPOINT));

        listened = ctl_run("listen", ACCESS_ENDPOINT, "--subscriber", "s", "--count", "1", NULL);
        assert_bus_error(&listened, ERROR_ACCESS_DENIED);

        created = ctl_run("send", ACCESS_ENDPOINT, "hello", "--id", "a", "--token-file", token_file, NULL);
        assert_success(&created, "a 1\n");
        listed = ctl_run("endpoints", NULL);
        assert_success(&listed, "");
}

static void test_access_wrong_token_is_refused(Fixture *f, gconstpointer data) {
        g_autofree char *token_file = set_up_access(OTHER_TOKEN "\n");
        g_auto(Result) sent = {}, stats = {};

        g_test_summary("A token the service does not accept fails every command with 'Authentication failed: "
                       "the token is not accepted (org.freedesktop.DBus.Error.AccessDenied)' and exit status "
                       "1, and the token is printed nowhere.");

        sent = ctl_run("--token-file", token_file, "send", ACCESS_ENDPOINT, "hello", NULL);
        assert_bus_error(&sent, ERROR_ACCESS_DENIED);
        g_assert_cmpstr(sent.err, ==, "durabusctl: " AUTHENTICATION_FAILED " (" ERROR_ACCESS_DENIED
                                      ")\n");

        stats = ctl_run("--token-file", token_file, "stats", ACCESS_ENDPOINT, NULL);
        assert_bus_error(&stats, ERROR_ACCESS_DENIED);
        g_assert_null(strstr(stats.err, OTHER_TOKEN));
}

static void test_access_token_file_errors(Fixture *f, gconstpointer data) {
        g_autofree char *empty = set_up_access("\n");
        g_autofree char *missing = g_build_filename(g_get_user_config_dir(), "app", "missing", NULL);
        g_autofree char *missing_error = g_strdup_printf(
                "durabusctl: Failed to open the token file '%s': No such file or directory\n", missing);
        g_autofree char *empty_error = g_strdup_printf("durabusctl: The token file '%s' is empty\n", empty);
        g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "DURABUS_TOKEN_FILE", missing, TRUE);
        const char *const from_env[] = { "endpoints", NULL };
        g_auto(Result) named = {}, in_env = {}, blank = {}, no_name = {};

        g_test_summary("A token file that cannot be read, named by --token-file or $DURABUS_TOKEN_FILE, or that "
                       "is empty, fails with exit status 1 and a message naming the file, before the service "
                       "is touched; an empty file name is a usage error.");

        named = ctl_run("send", ACCESS_ENDPOINT, "hello", "--token-file", missing, NULL);
        g_assert_cmpint(named.status, ==, 1);
        g_assert_cmpstr(named.out, ==, "");
        g_assert_cmpstr(named.err, ==, missing_error);

        in_env = ctl_runv(env, from_env);
        g_assert_cmpint(in_env.status, ==, 1);
        g_assert_cmpstr(in_env.err, ==, missing_error);

        blank = ctl_run("stats", ACCESS_ENDPOINT, "--token-file", empty, NULL);
        g_assert_cmpint(blank.status, ==, 1);
        g_assert_cmpstr(blank.err, ==, empty_error);

        no_name = ctl_run("--token-file", "", "endpoints", NULL);
        assert_usage_error(&no_name);

        g_assert_cmpint(fixture_service_pid(f), ==, 0);
}

static void test_access_listen_survives_sigkill(Fixture *f, gconstpointer data) {
        g_autofree char *token_file = set_up_access(TOKEN "\n");

        g_test_summary("listen --token-file keeps listening when the service is killed with SIGKILL: the "
                       "library proves the token to the next instance before it attaches the subscription "
                       "again, so a message sent afterwards is printed.");

        check_listener_stays_attached(f, ACCESS_ENDPOINT, token_file, SIGKILL);
}

static void test_access_completion(Fixture *f, gconstpointer data) {
        g_autofree char *token_file = set_up_access(TOKEN "\n");
        g_autofree char *dir = g_path_get_dirname(token_file);
        g_autofree char *prefix = g_build_filename(dir, "to", NULL);
        g_autofree char *expected_file = g_strconcat(token_file, "\n", NULL);
        g_autofree char *option = NULL, *file = NULL, *with = NULL, *without = NULL;
        g_auto(Result) created = {};

        g_test_summary("The bash completion completes --token-file and its file name, and lists the endpoints "
                       "with the token file of the command line, as the service shows a caller only those it "
                       "holds a right on.");

        option = COMPLETE("--tok");
        g_assert_cmpstr(option, ==, "--token-file\n");
        file = COMPLETE("--token-file", prefix);
        g_assert_cmpstr(file, ==, expected_file);

        created = ctl_run("send", ACCESS_ENDPOINT, "hello", "--token-file", token_file, NULL);
        assert_success(&created, NULL);
        with = COMPLETE("--token-file", token_file, "listen", "");
        g_assert_cmpstr(with, ==, ACCESS_ENDPOINT "\n");
        without = COMPLETE("listen", "");
        g_assert_cmpstr(without, ==, "\n");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

        /* Nothing here may reach the bus of the session running the tests. */
        g_test_dbus_unset();

#define ADD(path, fn) g_test_add("/durabusctl/" path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
        ADD("send/prints-the-id-and-the-sequence-number", test_send_prints_id_and_seq);
        ADD("listen/prints-stored-messages-in-order-and-acks-them", test_listen_prints_stored_messages_in_order);
        ADD("listen/after-ack-gets-only-newer-messages", test_listen_after_ack_gets_only_newer_messages);
        ADD("listen/without-ack-gets-the-same-messages-again", test_listen_without_ack_gets_messages_again);
        ADD("listen/without-subscriber-gets-live-messages-only", test_listen_ephemeral_gets_live_messages);
        ADD("listen/with-start-new-skips-stored-messages", test_listen_start_new_skips_stored_messages);
        ADD("listen/ends-with-0-on-sigterm-and-sigint", test_listen_ends_with_0_on_sigterm_and_sigint);
        ADD("listen/stays-attached-when-the-service-restarts", test_listen_stays_attached_when_the_service_restarts);
        ADD("ack/acknowledges-by-id-and-counts-the-new-ones", test_ack_acknowledges_by_id);
        ADD("ack/fails-while-a-listener-holds-the-subscription",
            test_ack_fails_while_a_listener_holds_the_subscription);
        ADD("endpoints/lists-names-and-paths-sorted-by-name", test_endpoints_lists_names_and_paths);
        ADD("clear/prints-how-many-messages-it-removed", test_clear_prints_number_removed);
        ADD("delete/removes-the-endpoint", test_delete_removes_the_endpoint);
        ADD("errors/invalid-endpoint-name-fails-with-invalid-name",
            test_invalid_endpoint_name_fails_with_invalid_name);
        ADD("errors/service-errors-are-printed-with-their-name", test_service_errors_are_printed_with_their_name);
        ADD("usage/errors-exit-with-2-without-touching-the-service", test_usage_errors_exit_with_2);
        ADD("usage/help-and-version-exit-with-0", test_help_and_version_exit_with_0);
        ADD("address/option-connects-to-that-bus", test_address_option_connects_to_that_bus);
        ADD("address/user-option-uses-the-session-bus", test_user_option_uses_the_session_bus);
        ADD("json/send-and-listen-print-one-object-per-line", test_json_send_and_listen);
        ADD("json/every-management-command-prints-objects", test_json_management_commands);
        ADD("listen/json-count-survives-sigkill-of-the-service", test_listen_json_survives_sigkill);
        ADD("open-and-stats/create-and-count", test_open_and_stats);
        ADD("unsubscribe/forget-deletes-the-subscription", test_unsubscribe_forget);
        ADD("version/prints-client-and-service", test_version_prints_client_and_service);
        ADD("completion/commands-options-and-endpoints", test_bash_completion);
        ADD("access/token-file-authenticates-every-command", test_access_token_file_authenticates);
        ADD("access/without-a-token-access-is-denied", test_access_refused_without_token);
        ADD("access/wrong-token-is-refused", test_access_wrong_token_is_refused);
        ADD("access/token-file-that-cannot-be-read-fails-before-the-bus", test_access_token_file_errors);
        ADD("access/listen-with-a-token-survives-sigkill", test_access_listen_survives_sigkill);
        ADD("access/completion-of-the-token-file-and-its-endpoints", test_access_completion);
#undef ADD
        g_test_add("/durabusctl/errors/payload-over-the-limit-is-limits-exceeded", Fixture, &small_payloads,
                   fixture_setup, test_payload_over_the_limit_is_reported, fixture_teardown);

        return g_test_run();
}
