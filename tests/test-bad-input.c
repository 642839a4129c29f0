/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of bad input over the bus: every method of durabus fed
 * invalid names, empty and maximal strings, huge option dictionaries, values
 * of the wrong type, unknown subscribers, bodies of the wrong signature, and
 * calls on interfaces, paths and members that do not exist. Each gets its
 * documented error (exact name, a message naming the bad value) and the
 * service stays up: the same process still serves a Send afterwards.
 *
 * test-errors.c checks each error of the API once, with its message; this
 * file sweeps the input space around those errors. Every test case runs
 * against a private dbus-daemon that starts the built durabusd by
 * activation (fixture.c).
 */
#include "fixture.h"

#include <string.h>

#define MiB (1024 * 1024)

/* Errors that sd-bus and the D-Bus specification define, not durabus. */
#define ERROR_UNKNOWN_METHOD "org.freedesktop.DBus.Error.UnknownMethod"
#define ERROR_UNKNOWN_OBJECT "org.freedesktop.DBus.Error.UnknownObject"
#define ERROR_UNKNOWN_PROPERTY "org.freedesktop.DBus.Error.UnknownProperty"
#define ERROR_PROPERTY_READ_ONLY "org.freedesktop.DBus.Error.PropertyReadOnly"

/* The limits of the API, as introspection/ documents them. */
#define ENDPOINT_NAME_MAX 200
#define SUBSCRIBER_NAME_MAX 200
#define MESSAGE_ID_MAX 255

/* ---- helpers -------------------------------------------------------- */

/* After bad input: the same process still runs and serves a Send. */
static void assert_still_serving(Fixture *f, pid_t pid) {
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
        g_assert_cmpuint(fixture_send(f->conn, "still.alive", "", "{}", NULL), >=, 1);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
}

static gboolean is_listed(Fixture *f, const char *endpoint) {
        g_autoptr(GVariant) list = fixture_list_endpoints(f->conn);
        GVariantIter iter;
        const char *name;

        g_variant_iter_init(&iter, list);
        while (g_variant_iter_next(&iter, "(&s&o)", &name, NULL))
                if (g_str_equal(name, endpoint))
                        return TRUE;
        return FALSE;
}

static gsize n_endpoints(Fixture *f) {
        g_autoptr(GVariant) list = fixture_list_endpoints(f->conn);

        return g_variant_n_children(list);
}

/* The durable subscriptions of an endpoint, as its Subscriptions property
 * lists them: a(sbt). */
static GVariant *subscriptions(Fixture *f, const char *endpoint) {
        g_autofree char *path = fixture_endpoint_path(endpoint);

        return fixture_get_property(f->conn, path, ENDPOINT_IFACE, "Subscriptions");
}

/* A string of exactly n bytes of valid UTF-8: two-byte characters, and one
 * ASCII letter when n is odd, so that a limit in bytes is not met by
 * counting characters. */
static char *utf8_of_size(gsize n) {
        GString *s = g_string_sized_new(n + 1);

        for (gsize i = 0; i + 2 <= n; i += 2)
                g_string_append(s, "\xc3\xa9");
        if (n % 2)
                g_string_append_c(s, 'x');
        g_assert_cmpuint(s->len, ==, n);
        return g_string_free(s, FALSE);
}

/* An endpoint name of exactly 200 characters in 100 elements: "ab.c.c...". */
static char *longest_dotted_name(void) {
        GString *s = g_string_new("ab");

        while (s->len < ENDPOINT_NAME_MAX)
                g_string_append(s, ".c");
        g_assert_cmpuint(s->len, ==, ENDPOINT_NAME_MAX);
        return g_string_free(s, FALSE);
}

/* Valid arguments of each method of org.durabus1.Endpoint, so that in a
 * call with them only the path (or the caller) can be wrong. */
typedef struct EndpointCall {
        const char *method;
        const char *args;       /* GVariant text format */
} EndpointCall;

static const EndpointCall endpoint_calls[] = {
        { "Send", "('m1', 'payload', @a{sv} {})" },
        { "Subscribe", "('worker', @a{sv} {})" },
        { "Unsubscribe", "('worker', @a{sv} {})" },
        { "Ack", "('worker', ['m1'])" },
        { "ClearAll", "()" },
};

/* ---- invalid endpoint names on every method ------------------------- */

static void test_invalid_path_every_method(Fixture *f, gconstpointer data) {
        g_autofree char *a200 = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        g_autofree char *a100 = g_strnfill(100, 'a');
        g_autofree char *long_single = g_strconcat("/org/durabus1/endpoint/", a200, "b", NULL);
        g_autofree char *long_two = g_strconcat("/org/durabus1/endpoint/", a100, "/", a100, NULL);
        const struct {
                const char *path;
                const char *needle;
        } paths[] = {
                { "/org/durabus1/endpoint/9x", "9x" },
                { "/org/durabus1/endpoint/app/9jobs", "9jobs" },
                { "/org/durabus1/endpoint/app/_/0", "element 3 starts with a digit" },
                { long_single, "201 characters" },
                { long_two, "201 characters" },
        };
        pid_t pid;

        g_test_summary("Every method of org.durabus1.Endpoint called on the path of an invalid endpoint name "
                       "(an element starting with a digit, 201 characters in one or two elements) fails with "
                       "org.durabus1.Error.InvalidName naming the problem, and creates no endpoint.");

        pid = fixture_start_service(f);
        for (gsize p = 0; p < G_N_ELEMENTS(paths); p++)
                for (gsize m = 0; m < G_N_ELEMENTS(endpoint_calls); m++) {
                        g_autoptr(GError) error = NULL;

                        g_test_message("%s on %s", endpoint_calls[m].method, paths[p].path);
                        error = fixture_call_error(f->conn, paths[p].path, ENDPOINT_IFACE, endpoint_calls[m].method,
                                                   g_variant_new_parsed(endpoint_calls[m].args));
                        fixture_assert_dbus_error(error, ERROR_INVALID_NAME, paths[p].needle);
                }

        g_assert_cmpuint(n_endpoints(f), ==, 0);
        assert_still_serving(f, pid);
}

/* ---- maximal strings ------------------------------------------------ */

static void name_appeared(GDBusConnection *c, const char *name, const char *owner, gpointer data) {
        *(gboolean *) data = TRUE;
}

static void exercise_endpoint(Fixture *f, const char *name) {
        g_autofree char *subscriber = g_strnfill(SUBSCRIBER_NAME_MAX, 's');
        g_autofree char *bus_name = g_strconcat("org.durabus1.endpoint.", name, NULL);
        g_autofree char *path = fixture_endpoint_path(name);
        g_autoptr(GVariant) by_bus_name = NULL;
        g_autoptr(GVariant) subs = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(Collector) collector = collector_new(f->conn);
        const char *ids[] = { "m1", NULL };
        const Delivered *first;
        gboolean owned = FALSE;
        guint watch;

        g_test_message("endpoint '%s'", name);

        /* Created by its first call, through its path. */
        g_assert_cmpuint(fixture_send(f->conn, name, "m1", "one", NULL), ==, 1);
        g_assert_true(is_listed(f, name));

        /* Its own bus name, which the service requests after creating it. */
        watch = g_bus_watch_name_on_connection(f->conn, bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE, name_appeared, NULL,
                                               &owned, NULL);
        fixture_wait_for(&owned);
        g_bus_unwatch_name(watch);
        by_bus_name = g_dbus_connection_call_sync(f->conn, bus_name, path, ENDPOINT_IFACE, "Send",
                                                  g_variant_new("(ssa{sv})", "m2", "two", NULL),
                                                  G_VARIANT_TYPE("(st)"), G_DBUS_CALL_FLAGS_NONE,
                                                  FIXTURE_TIMEOUT_MS, NULL, &error);
        g_assert_no_error(error);

        g_assert_cmpuint(fixture_subscribe(f->conn, name, subscriber), ==, 2);
        collector_wait(collector, 2);
        first = collector_get(collector, 0);
        g_assert_cmpstr(first->path, ==, path);
        g_assert_cmpstr(first->subscriber, ==, subscriber);
        g_assert_cmpstr(first->id, ==, "m1");
        g_assert_cmpstr(first->payload, ==, "one");
        g_assert_cmpuint(fixture_ack(f->conn, name, subscriber, ids), ==, 1);

        subs = subscriptions(f, name);
        g_assert_cmpuint(g_variant_n_children(subs), ==, 1);
        g_assert_cmpuint(fixture_clear_all(f->conn, name), ==, 1);
        fixture_unsubscribe(f->conn, name, subscriber, TRUE);

        fixture_delete_endpoint(f->conn, name);
        g_assert_false(is_listed(f, name));
}

static void test_longest_names_serve_every_method(Fixture *f, gconstpointer data) {
        g_autofree char *single = g_strnfill(ENDPOINT_NAME_MAX, 'a');
        g_autofree char *dotted = longest_dotted_name();
        pid_t pid;

        g_test_summary("Endpoints with names of exactly 200 characters, one element or 100 elements, are "
                       "created by a Send on their path, own their bus name and serve every method: Send "
                       "(also through the bus name), Subscribe and Ack by a subscriber of 200 characters, "
                       "Unsubscribe with forget, ClearAll and DeleteEndpoint.");

        pid = fixture_start_service(f);
        exercise_endpoint(f, single);
        exercise_endpoint(f, dotted);
        assert_still_serving(f, pid);
}

static void test_largest_send(Fixture *f, gconstpointer data) {
        g_autofree char *endpoint = longest_dotted_name();
        g_autofree char *subscriber = g_strnfill(SUBSCRIBER_NAME_MAX, 'w');
        g_autofree char *id = utf8_of_size(MESSAGE_ID_MAX);
        g_autofree char *payload = utf8_of_size(MiB);
        g_autofree char *stored_id = NULL;
        g_autoptr(Collector) collector = collector_new(f->conn);
        const char *ids[] = { id, NULL };
        const Delivered *d;
        guint64 seq;
        pid_t pid;

        g_test_summary("The largest Send the API allows, an id of 255 bytes and a payload of exactly 1 MiB "
                       "(the default limit), both of two-byte characters, on an endpoint of 200 characters, "
                       "is stored and delivered whole to a subscriber of 200 characters, whose Ack of that id "
                       "deletes it.");

        pid = fixture_start_service(f);
        seq = fixture_send(f->conn, endpoint, id, payload, &stored_id);
        g_assert_cmpuint(seq, ==, 1);
        g_assert_cmpstr(stored_id, ==, id);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, endpoint, "StoredBytes"), ==, MESSAGE_ID_MAX + MiB);

        g_assert_cmpuint(fixture_subscribe(f->conn, endpoint, subscriber), ==, 1);
        collector_wait(collector, 1);
        d = collector_get(collector, 0);
        g_assert_cmpstr(d->subscriber, ==, subscriber);
        g_assert_cmpstr(d->id, ==, id);
        g_assert_cmpuint(d->seq, ==, seq);
        g_assert_cmpuint(strlen(d->payload), ==, MiB);
        g_assert_true(g_str_equal(d->payload, payload));

        g_assert_cmpuint(fixture_ack(f->conn, endpoint, subscriber, ids), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, endpoint), ==, 0);
        assert_still_serving(f, pid);
}

static const FixtureOptions max_payload_10 = { .service_args = "--max-payload 10" };
static const FixtureOptions max_payload_0 = { .service_args = "--max-payload 0" };

static void test_payload_limit_in_bytes(Fixture *f, gconstpointer data) {
        g_autofree char *ten = utf8_of_size(10);
        g_autofree char *eleven = utf8_of_size(11);
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("With --max-payload 10, a payload of five two-byte characters (exactly 10 bytes) is "
                       "accepted, and one of 11 bytes is refused with LimitsExceeded naming its size.");

        pid = fixture_start_service(f);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "ten", ten, NULL), ==, 1);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send", g_variant_new("(ssa{sv})", "", eleven, NULL));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "11");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

static void test_payload_limit_zero(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        pid_t pid;

        g_test_summary("With --max-payload 0 only the empty payload is accepted; a payload of 1 byte is "
                       "refused with LimitsExceeded naming its size.");

        pid = fixture_start_service(f);
        error = fixture_endpoint_call_error(f->conn, "app.jobs", "Send", g_variant_new("(ssa{sv})", "", "x", NULL));
        fixture_assert_dbus_error(error, ERROR_LIMITS_EXCEEDED, "1 bytes");
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "empty", "", NULL), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        g_assert_cmpint(fixture_service_pid(f), ==, pid);
}

static void test_longest_ttl(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) reply = NULL;
        pid_t pid;

        g_test_summary("A Send with the largest ttl-ms, 2^64 - 1, is accepted (its expiry saturates far in "
                       "the future rather than wrapping into the past) and is delivered.");

        pid = fixture_start_service(f);
        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Send",
                                         g_variant_new_parsed("('forever', 'payload', {'ttl-ms': <%t>})",
                                                              G_MAXUINT64),
                                         "(st)");
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 1);
        collector_wait(collector, 1);
        g_assert_cmpstr(collector_get(collector, 0)->id, ==, "forever");
        assert_still_serving(f, pid);
}

/* ---- empty strings -------------------------------------------------- */

static void test_empty_payload(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        const char *ids[] = { "nothing", NULL };
        const Delivered *d;

        g_test_summary("An empty payload is a message like any other: stored (StoredBytes counts its id "
                       "only), delivered as the empty string, and deleted by its Ack.");

        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 0);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "nothing", "", NULL), ==, 1);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, strlen("nothing"));

        collector_wait(collector, 1);
        d = collector_get(collector, 0);
        g_assert_cmpstr(d->id, ==, "nothing");
        g_assert_cmpstr(d->payload, ==, "");
        g_assert_cmpuint(fixture_ack(f->conn, "app.jobs", "worker", ids), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
}

static void test_ack_ids_that_cannot_be_stored(Fixture *f, gconstpointer data) {
        g_autofree char *too_long = g_strnfill(MESSAGE_ID_MAX + 1, 'm');
        g_autofree char *longest = g_strnfill(MESSAGE_ID_MAX, 'm');
        const char *none[] = { NULL };
        const char *bad[] = { "", too_long, longest, "never-sent", "", NULL };
        const char *mixed[] = { "", too_long, "m1", "never-sent", "m1", NULL };
        pid_t pid;

        g_test_summary("Ack skips ids the endpoint does not store, those that could never be stored included "
                       "(empty, 256 bytes): an empty list and a list of such ids acknowledge 0, and in a "
                       "mixed list only the stored id counts, once.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        fixture_subscribe(f->conn, "app.jobs", "worker");

        g_assert_cmpuint(fixture_ack(f->conn, "app.jobs", "worker", none), ==, 0);
        g_assert_cmpuint(fixture_ack(f->conn, "app.jobs", "worker", bad), ==, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        g_assert_cmpuint(fixture_ack(f->conn, "app.jobs", "worker", mixed), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        assert_still_serving(f, pid);
}

/* ---- huge and nested option dictionaries ---------------------------- */

#define N_JUNK_OPTIONS 10000

/* A value of one of many types, by number: every basic type but the file
 * descriptor, and containers, nested variants among them. */
static GVariant *junk_value(guint i) {
        switch (i % 16) {
        case 0: return g_variant_new_string("value");
        case 1: return g_variant_new_uint32(i);
        case 2: return g_variant_new_boolean(i % 3);
        case 3: return g_variant_new_uint64(G_MAXUINT64 - i);
        case 4: return g_variant_new_int16(-1);
        case 5: return g_variant_new_uint16(G_MAXUINT16);
        case 6: return g_variant_new_int32(G_MININT32);
        case 7: return g_variant_new_int64(G_MININT64);
        case 8: return g_variant_new_byte(0);
        case 9: return g_variant_new_double(-0.5);
        case 10: return g_variant_new_object_path("/org/durabus1");
        case 11: return g_variant_new_signature("a{sv}");
        case 12: return g_variant_new_parsed("['window', 'start', 'forget']");
        case 13: return g_variant_new_parsed("{'window': <uint32 0>, 'start': <<'bad'>>}");
        case 14: return g_variant_new_parsed("('start', uint32 0, [<true>])");
        default: return g_variant_new_variant(g_variant_new_variant(g_variant_new_string("deep")));
        }
}

/* An a{sv} of N_JUNK_OPTIONS keys the service does not know, of every kind
 * of value, some named almost like known ones, then the known entries given
 * in GVariant text format (an a{sv}, or NULL). */
static GVariant *junk_options(const char *known) {
        static const char *const near_misses[] = { "Window", "START", "forget ", " start", "window\t", "" };
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        for (guint i = 0; i < N_JUNK_OPTIONS; i++) {
                g_autofree char *key = i < G_N_ELEMENTS(near_misses) ? g_strdup(near_misses[i]) :
                                                                       g_strdup_printf("unknown-%05u", i);

                g_variant_builder_add(&b, "{sv}", key, junk_value(i));
        }
        if (known) {
                g_autoptr(GVariant) entries = g_variant_parse(G_VARIANT_TYPE_VARDICT, known, NULL, NULL, NULL);
                GVariantIter iter;
                const char *key;
                GVariant *value;

                g_assert_nonnull(entries);
                g_variant_iter_init(&iter, entries);
                while (g_variant_iter_loop(&iter, "{&sv}", &key, &value))
                        g_variant_builder_add(&b, "{sv}", key, value);
        }
        return g_variant_builder_end(&b);
}

static void test_huge_options_open_endpoint(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) reply = NULL;
        pid_t pid;

        g_test_summary("OpenEndpoint with 10,000 option keys it does not know, of every type, nested variants "
                       "among them, ignores them and creates the endpoint.");

        pid = fixture_start_service(f);
        reply = fixture_call_ok(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                g_variant_new("(s@a{sv})", "app.jobs", junk_options(NULL)), "(o)");
        g_assert_true(is_listed(f, "app.jobs"));
        assert_still_serving(f, pid);
}

static void test_huge_options_send(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) reply = NULL;
        pid_t pid;

        g_test_summary("Send with 10,000 option keys it does not know ignores them and stores the message.");

        pid = fixture_start_service(f);
        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Send",
                                         g_variant_new("(ss@a{sv})", "m1", "payload", junk_options(NULL)), "(st)");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

static void test_huge_options_subscribe(Fixture *f, gconstpointer data) {
        g_autoptr(Collector) collector = collector_new(f->conn);
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GArray) seqs = NULL;
        guint64 pending;
        pid_t pid;

        g_test_summary("Subscribe with 10,000 option keys it does not know ignores them and still reads the "
                       "known key after them: with window 1 only one of three stored messages is delivered "
                       "before the first Ack.");

        pid = fixture_start_service(f);
        seqs = fixture_send_numbered(f->conn, "app.jobs", 0, 3);
        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Subscribe",
                                         g_variant_new("(s@a{sv})", "worker",
                                                       junk_options("{'window': <uint32 1>}")),
                                         "(t)");
        g_variant_get(reply, "(t)", &pending);
        g_assert_cmpuint(pending, ==, 3);

        collector_wait(collector, 1);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, 1);
        fixture_assert_delivered(collector_get(collector, 0), "app.jobs", "worker", 0, fixture_seq_at(seqs, 0), 1);
        assert_still_serving(f, pid);
}

static void test_huge_options_unsubscribe(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) subs = NULL;
        pid_t pid;

        g_test_summary("Unsubscribe with 10,000 option keys it does not know ignores them and still reads "
                       "the known key after them: with forget true the subscription is deleted.");

        pid = fixture_start_service(f);
        fixture_subscribe(f->conn, "app.jobs", "worker");
        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Unsubscribe",
                                         g_variant_new("(s@a{sv})", "worker", junk_options("{'forget': <true>}")),
                                         "()");
        subs = subscriptions(f, "app.jobs");
        g_assert_cmpuint(g_variant_n_children(subs), ==, 0);
        assert_still_serving(f, pid);
}

/* Wraps value in depth variants. */
static GVariant *nest(GVariant *value, guint depth) {
        for (guint i = 0; i < depth; i++)
                value = g_variant_new_variant(value);
        return value;
}

static void test_nested_variants(Fixture *f, gconstpointer data) {
        /* The bus allows 64 levels of containers in a message; the
         * dictionary and its entry take two, the variant of the entry one. */
        const guint deepest = 64 - 3;
        GVariantBuilder b;
        g_autoptr(GVariant) reply = NULL;
        guint64 pending;
        pid_t pid;

        g_test_summary("An unknown option whose value is nested 61 variants deep (as deep as the bus "
                       "carries), or holds containers of variants, is skipped whole and the known key after "
                       "it is read.");

        pid = fixture_start_service(f);
        g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
        g_variant_builder_add(&b, "{sv}", "deep", nest(g_variant_new_string("bottom"), deepest));
        g_variant_builder_add(&b, "{sv}", "deep-array",
                              g_variant_new_parsed("[<<<uint32 1>>>, <<['x']>>, <@a{sv} {'window': <<uint32 0>>}>]"));
        g_variant_builder_add(&b, "{sv}", "start", g_variant_new_string("new"));
        fixture_send(f->conn, "app.jobs", "old", "payload", NULL);

        reply = fixture_endpoint_call_ok(f->conn, "app.jobs", "Subscribe",
                                         g_variant_new("(sa{sv})", "worker", &b), "(t)");
        /* start 'new': the message sent before the subscription is not for
         * it, where the default 'all' would replay it. */
        g_variant_get(reply, "(t)", &pending);
        g_assert_cmpuint(pending, ==, 0);
        assert_still_serving(f, pid);
}

/* ---- wrong types and values of known options ------------------------ */

/* Test data of the option cases: starts with the FixtureOptions that
 * fixture_setup() reads. */
typedef struct KnownOption {
        FixtureOptions options;
        const char *method;     /* "Send", "Subscribe" or "Unsubscribe" */
        const char *key;
        const char *type;       /* its declared type */
        const char *const *bad_values; /* of the right type but out of range, NULL-terminated */
} KnownOption;

static const char *const bad_starts[] = { "<''>", "<'ALL'>", "<'all '>", "<'new\\n'>", "<'all,new'>", NULL };
static const char *const bad_windows[] = { "<uint32 4294967295>", "<uint32 65540>", NULL };
static const char *const no_bad_values[] = { NULL };

static const KnownOption known_options[] = {
        { .method = "Send", .key = "ttl-ms", .type = "t", .bad_values = no_bad_values },
        { .method = "Subscribe", .key = "start", .type = "s", .bad_values = bad_starts },
        { .method = "Subscribe", .key = "window", .type = "u", .bad_values = bad_windows },
        { .method = "Unsubscribe", .key = "forget", .type = "b", .bad_values = no_bad_values },
};

/* One value of each type a D-Bus message can carry in a variant, but the
 * file descriptor; a nested variant is a type of its own. */
static const char *const typed_values[] = {
        "<'all'>",
        "<uint32 1>",
        "<true>",
        "<uint64 1>",
        "<int32 1>",
        "<int16 1>",
        "<uint16 1>",
        "<int64 1>",
        "<byte 1>",
        "<1.0>",
        "<objectpath '/all'>",
        "<signature 'u'>",
        "<['all']>",
        "<@au [1]>",
        "<@a{sv} {'start': <'all'>}>",
        "<('all', uint32 1)>",
        "<<'all'>>",
        "<<uint32 1>>",
        "<<true>>",
        "<<uint64 1>>",
};

static void call_with_option(Fixture *f, const KnownOption *o, const char *value, GError **error) {
        g_autofree char *text = g_strdup_printf("{'%s': %s}", o->key, value);
        g_autoptr(GVariant) options = g_variant_parse(G_VARIANT_TYPE_VARDICT, text, NULL, NULL, NULL);
        g_autoptr(GVariant) reply = NULL;

        g_assert_nonnull(options);
        reply = fixture_call(f->conn, "/org/durabus1/endpoint/app/jobs", ENDPOINT_IFACE, o->method,
                             g_str_equal(o->method, "Send") ?
                                     g_variant_new("(ss@a{sv})", "m1", "payload", options) :
                                     g_variant_new("(s@a{sv})", "worker", options),
                             NULL, error);
}

static void test_known_option_wrong_types(Fixture *f, gconstpointer data) {
        const KnownOption *o = data;
        g_autoptr(GVariant) subs = NULL;
        gboolean attached = FALSE;
        guint refused = 0;
        pid_t pid;

        g_test_summary("A known option given a value of any other type (every basic type, arrays, "
                       "dictionaries, structs, and a variant holding the right type) fails with "
                       "org.freedesktop.DBus.Error.InvalidArgs naming the option; so does a value of the "
                       "right type out of its range, naming the value. The call changes nothing: Send "
                       "stores nothing, Subscribe creates no subscription, Unsubscribe leaves it attached.");

        pid = fixture_start_service(f);
        /* Unsubscribe needs an attached subscription, so that the option is
         * the only thing wrong with the call. */
        if (g_str_equal(o->method, "Unsubscribe"))
                fixture_subscribe(f->conn, "app.jobs", "worker");
        else
                fixture_open_endpoint(f->conn, "app.jobs", NULL);

        for (gsize i = 0; i < G_N_ELEMENTS(typed_values); i++) {
                g_autoptr(GVariant) value = g_variant_parse(G_VARIANT_TYPE_VARIANT, typed_values[i], NULL, NULL, NULL);
                g_autoptr(GVariant) inner = g_variant_get_variant(value);
                g_autoptr(GError) error = NULL;

                if (g_str_equal(g_variant_get_type_string(inner), o->type))
                        continue;
                g_test_message("%s: %s", o->key, typed_values[i]);
                call_with_option(f, o, typed_values[i], &error);
                fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, o->key);
                refused++;
        }
        g_assert_cmpuint(refused, ==, G_N_ELEMENTS(typed_values) - 1);

        for (const char *const *v = o->bad_values; *v; v++) {
                g_autoptr(GVariant) value = g_variant_parse(G_VARIANT_TYPE_VARIANT, *v, NULL, NULL, NULL);
                g_autoptr(GVariant) inner = g_variant_get_variant(value);
                g_autofree char *shown = g_variant_is_of_type(inner, G_VARIANT_TYPE_STRING) ?
                                                 g_variant_dup_string(inner, NULL) :
                                                 g_variant_print(inner, FALSE);
                g_autoptr(GError) error = NULL;

                g_test_message("%s: %s", o->key, *v);
                call_with_option(f, o, *v, &error);
                fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, shown);
        }

        subs = subscriptions(f, "app.jobs");
        if (g_str_equal(o->method, "Unsubscribe")) {
                g_assert_cmpuint(g_variant_n_children(subs), ==, 1);
                g_variant_get_child(subs, 0, "(&sbt)", NULL, &attached, NULL);
                g_assert_true(attached);
                fixture_unsubscribe(f->conn, "app.jobs", "worker", TRUE);
        } else {
                g_assert_cmpuint(g_variant_n_children(subs), ==, 0);
        }
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        assert_still_serving(f, pid);
}

/* ---- unknown subscribers -------------------------------------------- */

/* NULL: 201 characters, built at run time. */
static const char *const invalid_subscribers[] = { "bad name!", "with/slash", "caf\xc3\xa9", "tab\there", NULL };

static void test_ack_invalid_subscriber(Fixture *f, gconstpointer data) {
        g_autofree char *too_long = g_strnfill(SUBSCRIBER_NAME_MAX + 1, 's');
        const char *ids[] = { "m1", NULL };
        pid_t pid;

        g_test_summary("Ack by a subscriber name that could never exist (outside 1 to 200 characters of "
                       "[A-Za-z0-9_.-]) fails with org.freedesktop.DBus.Error.InvalidArgs naming it, as "
                       "Subscribe does, and acknowledges nothing.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(invalid_subscribers); i++) {
                const char *subscriber = invalid_subscribers[i] ? invalid_subscribers[i] : too_long;
                g_autoptr(GError) error = NULL;

                error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack",
                                                    g_variant_new("(s^as)", subscriber, ids));
                fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, subscriber);
        }
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

static void test_unsubscribe_invalid_subscriber(Fixture *f, gconstpointer data) {
        g_autofree char *too_long = g_strnfill(SUBSCRIBER_NAME_MAX + 1, 's');
        pid_t pid;

        g_test_summary("Unsubscribe of a subscriber name that could never exist is not attached to the caller: "
                       "it fails with org.durabus1.Error.NotSubscribed naming it, with and without forget, "
                       "and the durable subscription the caller has stays attached.");

        pid = fixture_start_service(f);
        fixture_subscribe(f->conn, "app.jobs", "worker");
        for (gsize i = 0; i < G_N_ELEMENTS(invalid_subscribers); i++) {
                const char *subscriber = invalid_subscribers[i] ? invalid_subscribers[i] : too_long;
                g_autoptr(GError) error = NULL;
                g_autoptr(GError) forget_error = NULL;

                error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                                    g_variant_new("(sa{sv})", subscriber, NULL));
                fixture_assert_dbus_error(error, ERROR_NOT_SUBSCRIBED, subscriber);
                forget_error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                                           g_variant_new_parsed("(%s, {'forget': <true>})",
                                                                                subscriber));
                fixture_assert_dbus_error(forget_error, ERROR_NOT_SUBSCRIBED, subscriber);
        }
        fixture_unsubscribe(f->conn, "app.jobs", "worker", FALSE);
        assert_still_serving(f, pid);
}

static void test_detached_subscriber(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autoptr(GError) ack_error = NULL;
        g_autoptr(GError) unsubscribe_error = NULL;
        g_autoptr(GVariant) subs = NULL;
        const char *ids[] = { "m1", NULL };
        guint64 pending = 0;
        pid_t pid;

        g_test_summary("A durable subscription that exists but is attached to no connection (its connection "
                       "closed) cannot be acknowledged or unsubscribed through: NotSubscribed naming it, and "
                       "its message stays pending.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        g_assert_cmpuint(fixture_subscribe(other, "app.jobs", "worker"), ==, 1);
        fixture_close_connection(f, other);

        ack_error = fixture_endpoint_call_error(f->conn, "app.jobs", "Ack", g_variant_new("(s^as)", "worker", ids));
        fixture_assert_dbus_error(ack_error, ERROR_NOT_SUBSCRIBED, "worker");
        unsubscribe_error = fixture_endpoint_call_error(f->conn, "app.jobs", "Unsubscribe",
                                                        g_variant_new_parsed("('worker', {'forget': <true>})"));
        fixture_assert_dbus_error(unsubscribe_error, ERROR_NOT_SUBSCRIBED, "worker");

        subs = subscriptions(f, "app.jobs");
        g_assert_cmpuint(g_variant_n_children(subs), ==, 1);
        g_variant_get_child(subs, 0, "(&sbt)", NULL, NULL, &pending);
        g_assert_cmpuint(pending, ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        assert_still_serving(f, pid);
}

/* ---- bodies of the wrong signature ---------------------------------- */

typedef struct WrongBody {
        const char *method;
        const char *args;       /* GVariant text format, a tuple */
} WrongBody;

static const WrongBody wrong_broker_bodies[] = {
        { "OpenEndpoint", "()" },
        { "OpenEndpoint", "('app',)" },
        { "OpenEndpoint", "('app', @a{ss} {})" },
        { "OpenEndpoint", "(@a{sv} {}, 'app')" },
        { "OpenEndpoint", "(1, @a{sv} {})" },
        { "OpenEndpoint", "(objectpath '/app', @a{sv} {})" },
        { "OpenEndpoint", "('app', @a{sv} {}, 'extra')" },
        { "ListEndpoints", "('app',)" },
        { "DeleteEndpoint", "()" },
        { "DeleteEndpoint", "(1,)" },
        { "DeleteEndpoint", "(['app'],)" },
        { "DeleteEndpoint", "('app', 'extra')" },
};

static const WrongBody wrong_endpoint_bodies[] = {
        { "Send", "()" },
        { "Send", "('m1', 'payload')" },
        { "Send", "('m1', 'payload', @a{ss} {})" },
        { "Send", "('m1', @ay [1, 2], @a{sv} {})" },
        { "Send", "(1, 'payload', @a{sv} {})" },
        { "Send", "('m1', 'payload', @a{sv} {}, 'extra')" },
        { "Subscribe", "('worker',)" },
        { "Subscribe", "('worker', @a{ss} {})" },
        { "Subscribe", "(uint32 1, @a{sv} {})" },
        { "Subscribe", "('worker', @a{sv} {}, uint32 1)" },
        { "Unsubscribe", "('worker',)" },
        { "Unsubscribe", "('worker', true)" },
        { "Ack", "('worker',)" },
        { "Ack", "('worker', 'm1')" },
        { "Ack", "(['m1'],)" },
        { "Ack", "('worker', @ay [])" },
        { "Ack", "('worker', ['m1'], 'extra')" },
        { "ClearAll", "(true,)" },
};

/* The signature each method declares, as sd-bus names it in the error. */
static const char *declared_signature(const char *method) {
        if (g_str_equal(method, "OpenEndpoint") || g_str_equal(method, "Subscribe") ||
            g_str_equal(method, "Unsubscribe"))
                return "sa{sv}";
        if (g_str_equal(method, "Send"))
                return "ssa{sv}";
        if (g_str_equal(method, "DeleteEndpoint"))
                return "s";
        if (g_str_equal(method, "Ack"))
                return "sas";
        return "";
}

static void assert_wrong_bodies_refused(Fixture *f, const char *path, const char *iface, const WrongBody *bodies,
                                        gsize n) {
        for (gsize i = 0; i < n; i++) {
                g_autofree char *needle = g_strdup_printf("expecting '%s'", declared_signature(bodies[i].method));
                g_autoptr(GError) error = NULL;

                g_test_message("%s%s", bodies[i].method, bodies[i].args);
                error = fixture_call_error(f->conn, path, iface, bodies[i].method,
                                           g_variant_new_parsed(bodies[i].args));
                fixture_assert_dbus_error(error, ERROR_INVALID_ARGS, needle);
        }
}

static void test_wrong_signature_broker(Fixture *f, gconstpointer data) {
        pid_t pid;

        g_test_summary("Every method of org.durabus1.Broker called with a body of the wrong signature "
                       "(missing, extra, reordered or mistyped arguments) fails with "
                       "org.freedesktop.DBus.Error.InvalidArgs naming the signature it expects, and acts "
                       "on nothing.");

        pid = fixture_start_service(f);
        fixture_open_endpoint(f->conn, "app", NULL);
        assert_wrong_bodies_refused(f, BROKER_PATH, BROKER_IFACE, wrong_broker_bodies,
                                    G_N_ELEMENTS(wrong_broker_bodies));
        g_assert_cmpuint(n_endpoints(f), ==, 1);
        g_assert_true(is_listed(f, "app"));
        assert_still_serving(f, pid);
}

static void test_wrong_signature_endpoint(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) subs = NULL;
        pid_t pid;

        g_test_summary("Every method of org.durabus1.Endpoint called with a body of the wrong signature "
                       "fails with org.freedesktop.DBus.Error.InvalidArgs naming the signature it expects, "
                       "and acts on nothing: no message stored, acknowledged or cleared, no subscription "
                       "made or dropped.");

        pid = fixture_start_service(f);
        fixture_send(f->conn, "app.jobs", "m1", "payload", NULL);
        fixture_subscribe(f->conn, "app.jobs", "worker");
        assert_wrong_bodies_refused(f, "/org/durabus1/endpoint/app/jobs", ENDPOINT_IFACE, wrong_endpoint_bodies,
                                    G_N_ELEMENTS(wrong_endpoint_bodies));

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        subs = subscriptions(f, "app.jobs");
        g_assert_cmpuint(g_variant_n_children(subs), ==, 1);
        fixture_unsubscribe(f->conn, "app.jobs", "worker", FALSE);
        assert_still_serving(f, pid);
}

/* ---- unknown interfaces, paths, members ----------------------------- */

typedef struct UnknownCall {
        const char *path;
        const char *iface;
        const char *method;
        const char *args;       /* GVariant text format */
        const char *error;      /* the expected error name */
        const char *needle;
} UnknownCall;

static const UnknownCall unknown_calls[] = {
        /* A member the interface does not have. */
        { BROKER_PATH, BROKER_IFACE, "Frobnicate", "()", ERROR_UNKNOWN_METHOD, "Frobnicate" },
        { BROKER_PATH, BROKER_IFACE, "openendpoint", "('app', @a{sv} {})", ERROR_UNKNOWN_METHOD, "openendpoint" },
        { "/org/durabus1/endpoint/app", ENDPOINT_IFACE, "SendAll", "()", ERROR_UNKNOWN_METHOD, "SendAll" },
        /* An interface the object does not have: sd-bus answers
         * UnknownMethod, naming the interface. */
        { BROKER_PATH, "org.durabus1.Nope", "OpenEndpoint", "('app', @a{sv} {})", ERROR_UNKNOWN_METHOD,
          "org.durabus1.Nope" },
        { BROKER_PATH, ENDPOINT_IFACE, "Send", "('m1', 'payload', @a{sv} {})", ERROR_UNKNOWN_METHOD, ENDPOINT_IFACE },
        { "/org/durabus1/endpoint/app", BROKER_IFACE, "OpenEndpoint", "('app', @a{sv} {})", ERROR_UNKNOWN_METHOD,
          BROKER_IFACE },
        { "/org/durabus1/endpoint/app", "org.durabus1.Endpoint2", "Send", "('m1', 'payload', @a{sv} {})",
          ERROR_UNKNOWN_METHOD, "org.durabus1.Endpoint2" },
        /* A path no object lives at. */
        { "/", BROKER_IFACE, "ListEndpoints", "()", ERROR_UNKNOWN_OBJECT, "/" },
        { "/org/durabus1/nope", BROKER_IFACE, "ListEndpoints", "()", ERROR_UNKNOWN_OBJECT, "/org/durabus1/nope" },
        /* The parent of every endpoint exists as a node, and is no endpoint. */
        { "/org/durabus1/endpoint", ENDPOINT_IFACE, "Send", "('m1', 'payload', @a{sv} {})", ERROR_UNKNOWN_METHOD,
          "Send" },
        { "/org/durabus1/endpoint/never/made", BROKER_IFACE, "ListEndpoints", "()", ERROR_UNKNOWN_OBJECT,
          "/org/durabus1/endpoint/never/made" },
        /* Properties that do not exist, or cannot be written. */
        { BROKER_PATH, PROPERTIES_IFACE, "Get", "('org.durabus1.Broker', 'Nope')", ERROR_UNKNOWN_PROPERTY, "Nope" },
        /* sd-bus answers an unknown interface of Properties as an unknown
         * property, naming both. */
        { BROKER_PATH, PROPERTIES_IFACE, "Get", "('org.durabus1.Nope', 'Version')", ERROR_UNKNOWN_PROPERTY,
          "org.durabus1.Nope" },
        { BROKER_PATH, PROPERTIES_IFACE, "Set", "('org.durabus1.Broker', 'Version', <'9'>)",
          ERROR_PROPERTY_READ_ONLY, "Version" },
        { "/org/durabus1/endpoint/app", PROPERTIES_IFACE, "Set", "('org.durabus1.Endpoint', 'Name', <'other'>)",
          ERROR_PROPERTY_READ_ONLY, "Name" },
        { "/org/durabus1/endpoint/app", PROPERTIES_IFACE, "Get", "('org.durabus1.Endpoint', 'Payload')",
          ERROR_UNKNOWN_PROPERTY, "Payload" },
        { "/org/durabus1/endpoint/never/made", PROPERTIES_IFACE, "Get", "('org.durabus1.Endpoint', 'Name')",
          ERROR_UNKNOWN_OBJECT, "/org/durabus1/endpoint/never/made" },
};

static void test_unknown_calls(Fixture *f, gconstpointer data) {
        pid_t pid;

        g_test_summary("Calls of members, interfaces and properties that do not exist, on paths where no "
                       "object lives, and writes of read-only properties get the standard D-Bus error naming "
                       "what is unknown; none of them creates an endpoint (only an Endpoint method on an "
                       "endpoint path does).");

        pid = fixture_start_service(f);
        fixture_open_endpoint(f->conn, "app", NULL);
        for (gsize i = 0; i < G_N_ELEMENTS(unknown_calls); i++) {
                const UnknownCall *u = &unknown_calls[i];
                g_autoptr(GError) error = NULL;

                g_test_message("%s %s.%s%s", u->path, u->iface, u->method, u->args);
                error = fixture_call_error(f->conn, u->path, u->iface, u->method, g_variant_new_parsed(u->args));
                fixture_assert_dbus_error(error, u->error, u->needle);
        }

        g_assert_cmpuint(n_endpoints(f), ==, 1);
        assert_still_serving(f, pid);
}

/* ---- bad input that must create nothing ----------------------------- */

static void test_refused_calls_create_nothing(Fixture *f, gconstpointer data) {
        g_autoptr(GError) unknown_error = NULL;
        g_autoptr(GError) signature_error = NULL;
        pid_t pid;

        g_test_summary("A call on the path of an endpoint that does not exist, refused before it does "
                       "anything (a member org.durabus1.Endpoint does not have, a body of the wrong "
                       "signature), creates no endpoint.");

        pid = fixture_start_service(f);
        unknown_error = fixture_call_error(f->conn, "/org/durabus1/endpoint/typo", ENDPOINT_IFACE, "SendAll",
                                           g_variant_new_parsed("()"));
        /* No method of that name can create the endpoint, so there is no
         * object to have the method: UnknownObject, naming the path. */
        fixture_assert_dbus_error(unknown_error, ERROR_UNKNOWN_OBJECT, "/org/durabus1/endpoint/typo");
        g_assert_false(is_listed(f, "typo"));

        signature_error = fixture_call_error(f->conn, "/org/durabus1/endpoint/mistyped", ENDPOINT_IFACE, "Send",
                                             g_variant_new_parsed("('m1', 'payload')"));
        fixture_assert_dbus_error(signature_error, ERROR_INVALID_ARGS, "expecting 'ssa{sv}'");
        g_assert_false(is_listed(f, "mistyped"));

        assert_still_serving(f, pid);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/bad-input/invalid-name/every-endpoint-method-on-an-invalid-path-is-refused", Fixture, NULL,
                   fixture_setup, test_invalid_path_every_method, fixture_teardown);

        g_test_add("/bad-input/maximal/names-of-200-characters-serve-every-method", Fixture, NULL, fixture_setup,
                   test_longest_names_serve_every_method, fixture_teardown);
        g_test_add("/bad-input/maximal/largest-send-is-stored-delivered-and-acked-whole", Fixture, NULL,
                   fixture_setup, test_largest_send, fixture_teardown);
        g_test_add("/bad-input/maximal/payload-limit-counts-bytes-not-characters", Fixture, &max_payload_10,
                   fixture_setup, test_payload_limit_in_bytes, fixture_teardown);
        g_test_add("/bad-input/maximal/payload-limit-0-takes-only-empty-payloads", Fixture, &max_payload_0,
                   fixture_setup, test_payload_limit_zero, fixture_teardown);

        g_test_add("/bad-input/maximal/largest-ttl-ms-is-accepted-and-delivered", Fixture, NULL, fixture_setup,
                   test_longest_ttl, fixture_teardown);

        g_test_add("/bad-input/empty/payload-is-stored-and-delivered-empty", Fixture, NULL, fixture_setup,
                   test_empty_payload, fixture_teardown);
        g_test_add("/bad-input/empty/ack-skips-empty-overlong-and-unknown-ids", Fixture, NULL, fixture_setup,
                   test_ack_ids_that_cannot_be_stored, fixture_teardown);

        g_test_add("/bad-input/huge-options/open-endpoint-ignores-10000-unknown-keys", Fixture, NULL, fixture_setup,
                   test_huge_options_open_endpoint, fixture_teardown);
        g_test_add("/bad-input/huge-options/send-ignores-10000-unknown-keys", Fixture, NULL, fixture_setup,
                   test_huge_options_send, fixture_teardown);
        g_test_add("/bad-input/huge-options/subscribe-reads-window-after-10000-unknown-keys", Fixture, NULL,
                   fixture_setup, test_huge_options_subscribe, fixture_teardown);
        g_test_add("/bad-input/huge-options/unsubscribe-reads-forget-after-10000-unknown-keys", Fixture, NULL,
                   fixture_setup, test_huge_options_unsubscribe, fixture_teardown);
        g_test_add("/bad-input/huge-options/deeply-nested-variants-are-skipped", Fixture, NULL, fixture_setup,
                   test_nested_variants, fixture_teardown);

        for (gsize i = 0; i < G_N_ELEMENTS(known_options); i++) {
                g_autofree char *path = g_strdup_printf("/bad-input/wrong-type/%s-option-%s-refuses-every-other-type",
                                                        known_options[i].method, known_options[i].key);

                g_test_add(path, Fixture, &known_options[i], fixture_setup, test_known_option_wrong_types,
                           fixture_teardown);
        }

        g_test_add("/bad-input/unknown-subscriber/ack-by-an-invalid-name-is-invalid-args", Fixture, NULL,
                   fixture_setup, test_ack_invalid_subscriber, fixture_teardown);
        g_test_add("/bad-input/unknown-subscriber/unsubscribe-of-an-invalid-name-is-not-subscribed", Fixture, NULL,
                   fixture_setup, test_unsubscribe_invalid_subscriber, fixture_teardown);
        g_test_add("/bad-input/unknown-subscriber/detached-subscription-is-not-subscribed", Fixture, NULL,
                   fixture_setup, test_detached_subscriber, fixture_teardown);

        g_test_add("/bad-input/wrong-signature/every-broker-method-is-invalid-args", Fixture, NULL, fixture_setup,
                   test_wrong_signature_broker, fixture_teardown);
        g_test_add("/bad-input/wrong-signature/every-endpoint-method-is-invalid-args", Fixture, NULL,
                   fixture_setup, test_wrong_signature_endpoint, fixture_teardown);

        g_test_add("/bad-input/unknown/members-interfaces-paths-and-properties", Fixture, NULL, fixture_setup,
                   test_unknown_calls, fixture_teardown);
        g_test_add("/bad-input/unknown/refused-calls-on-a-new-endpoint-path-create-nothing", Fixture, NULL,
                   fixture_setup, test_refused_calls_create_nothing, fixture_teardown);

        return g_test_run();
}
