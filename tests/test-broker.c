/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of org.durabus1.Broker and of the properties of
 * org.durabus1.Endpoint: creating, listing and deleting endpoints, and what
 * the properties report. Every test case runs against a private dbus-daemon
 * that starts the built durabusd by activation (fixture.c).
 */
#include "fixture.h"

#include <string.h>

/* Checks that ListEndpoints returns exactly these names, in this order, each
 * with its object path. */
static void assert_endpoints_are(Fixture *f, const char *const *names, gsize n_names) {
        g_autoptr(GVariant) list = fixture_list_endpoints(f->conn);

        g_assert_cmpuint(g_variant_n_children(list), ==, n_names);
        for (gsize i = 0; i < n_names; i++) {
                g_autofree char *expected_path = fixture_endpoint_path(names[i]);
                const char *name, *path;

                g_variant_get_child(list, i, "(&s&o)", &name, &path);
                g_assert_cmpstr(name, ==, names[i]);
                g_assert_cmpstr(path, ==, expected_path);
        }
}

static char *endpoint_string_property(Fixture *f, const char *endpoint, const char *property) {
        g_autofree char *path = fixture_endpoint_path(endpoint);
        g_autoptr(GVariant) value = fixture_get_property(f->conn, path, ENDPOINT_IFACE, property);

        g_assert_cmpstr(g_variant_get_type_string(value), ==, "s");
        return g_variant_dup_string(value, NULL);
}

/* For g_ptr_array_sort(), which passes pointers to the elements. */
static gint compare_strings(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void test_open_returns_path(Fixture *f, gconstpointer data) {
        g_autofree char *path = NULL;

        g_test_summary("OpenEndpoint returns /org/durabus1/endpoint/ followed by the name with every dot "
                       "turned into a slash.");

        fixture_open_endpoint(f->conn, "app.jobs", &path);
        g_assert_cmpstr(path, ==, "/org/durabus1/endpoint/app/jobs");

        g_clear_pointer(&path, g_free);
        fixture_open_endpoint(f->conn, "chat", &path);
        g_assert_cmpstr(path, ==, "/org/durabus1/endpoint/chat");

        g_clear_pointer(&path, g_free);
        fixture_open_endpoint(f->conn, "org.gnome.Calendar.reminders", &path);
        g_assert_cmpstr(path, ==, "/org/durabus1/endpoint/org/gnome/Calendar/reminders");
}

static void test_open_is_idempotent(Fixture *f, gconstpointer data) {
        const char *const expected[] = { "app.jobs" };
        g_autofree char *first = NULL;
        g_autofree char *second = NULL;

        g_test_summary("Opening an existing endpoint again returns the same path and changes nothing: "
                       "it is listed once and keeps its stored messages.");

        fixture_open_endpoint(f->conn, "app.jobs", &first);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m1", "{\"n\":1}", NULL), ==, 1);

        fixture_open_endpoint(f->conn, "app.jobs", &second);
        g_assert_cmpstr(second, ==, first);
        assert_endpoints_are(f, expected, G_N_ELEMENTS(expected));
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m2", "{\"n\":2}", NULL), ==, 2);
}

static void test_list_is_empty_at_first(Fixture *f, gconstpointer data) {
        g_test_summary("A fresh service has no endpoints: ListEndpoints returns an empty array.");

        assert_endpoints_are(f, NULL, 0);
}

static void test_list_is_sorted(Fixture *f, gconstpointer data) {
        const char *const created[] = { "zeta", "mid.b", "alpha", "mid", "mid.a" };
        const char *const sorted[] = { "alpha", "mid", "mid.a", "mid.b", "zeta" };

        g_test_summary("ListEndpoints returns the name and object path of every endpoint, sorted by name, "
                       "whatever the order they were created in.");

        for (gsize i = 0; i < G_N_ELEMENTS(created); i++)
                fixture_open_endpoint(f->conn, created[i], NULL);
        assert_endpoints_are(f, sorted, G_N_ELEMENTS(sorted));
}

static void test_delete_removes_from_list(Fixture *f, gconstpointer data) {
        const char *const before[] = { "app.jobs", "chat" };
        const char *const after[] = { "chat" };

        g_test_summary("DeleteEndpoint removes the endpoint from ListEndpoints and leaves the others.");

        for (gsize i = 0; i < G_N_ELEMENTS(before); i++)
                fixture_open_endpoint(f->conn, before[i], NULL);
        assert_endpoints_are(f, before, G_N_ELEMENTS(before));

        fixture_delete_endpoint(f->conn, "app.jobs");
        assert_endpoints_are(f, after, G_N_ELEMENTS(after));
}

static void test_delete_removes_messages(Fixture *f, gconstpointer data) {
        g_test_summary("DeleteEndpoint deletes the endpoint's messages: opening it again gives an empty "
                       "endpoint, with nothing stored and nothing for a new subscription to replay.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        fixture_send(f->conn, "app.jobs", "m1", "first", NULL);
        fixture_send(f->conn, "app.jobs", "m2", "second", NULL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 2);

        fixture_delete_endpoint(f->conn, "app.jobs");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, 0);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "worker"), ==, 0);
}

static void test_delete_unknown_fails(Fixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;

        g_test_summary("DeleteEndpoint of a name no endpoint has fails with org.durabus1.Error.NoSuchEndpoint.");

        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "DeleteEndpoint",
                                   g_variant_new("(s)", "never.made"));
        fixture_assert_dbus_error(error, ERROR_NO_SUCH_ENDPOINT, NULL);
        assert_endpoints_are(f, NULL, 0);
}

static void test_call_creates_endpoint(Fixture *f, gconstpointer data) {
        const char *const expected[] = { "fresh.start" };
        g_autoptr(GVariant) reply = NULL;
        g_autofree char *name = NULL;
        guint64 removed;

        g_test_summary("A method call on the path of an endpoint that does not exist yet creates it: it is "
                       "listed and answers for its name afterwards.");

        assert_endpoints_are(f, NULL, 0);

        reply = fixture_call_ok(f->conn, "/org/durabus1/endpoint/fresh/start", ENDPOINT_IFACE, "ClearAll", NULL,
                                "(t)");
        g_variant_get(reply, "(t)", &removed);
        g_assert_cmpuint(removed, ==, 0);

        assert_endpoints_are(f, expected, G_N_ELEMENTS(expected));
        name = endpoint_string_property(f, "fresh.start", "Name");
        g_assert_cmpstr(name, ==, "fresh.start");
}

static void test_send_creates_endpoint(Fixture *f, gconstpointer data) {
        const char *const expected[] = { "app.jobs" };

        g_test_summary("A Send on the path of an endpoint that does not exist yet creates the endpoint and "
                       "stores the message in it, with sequence number 1.");

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m1", "hello", NULL), ==, 1);
        assert_endpoints_are(f, expected, G_N_ELEMENTS(expected));
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
}

static void test_property_version(Fixture *f, gconstpointer data) {
        g_autoptr(GVariant) value = NULL;

        g_test_summary("The Broker property Version is the version of the service, 0.1.0.");

        value = fixture_get_property(f->conn, BROKER_PATH, BROKER_IFACE, "Version");
        g_assert_cmpstr(g_variant_get_type_string(value), ==, "s");
        g_assert_cmpstr(g_variant_get_string(value, NULL), ==, "0.1.0");
}

static void test_property_name_and_bus_name(Fixture *f, gconstpointer data) {
        g_autofree char *name = NULL;
        g_autofree char *bus_name = NULL;

        g_test_summary("Name is the endpoint's name and BusName is org.durabus1.endpoint. followed by it.");

        fixture_open_endpoint(f->conn, "org.gnome.Calendar.reminders", NULL);
        name = endpoint_string_property(f, "org.gnome.Calendar.reminders", "Name");
        bus_name = endpoint_string_property(f, "org.gnome.Calendar.reminders", "BusName");
        g_assert_cmpstr(name, ==, "org.gnome.Calendar.reminders");
        g_assert_cmpstr(bus_name, ==, "org.durabus1.endpoint.org.gnome.Calendar.reminders");
}

static void test_property_stored_messages(Fixture *f, gconstpointer data) {
        g_test_summary("StoredMessages counts the stored messages: 0 for a new endpoint, one more per Send, "
                       "unchanged by a Send that repeats a stored id.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 0);

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        fixture_send(f->conn, "app.jobs", "m2", "two", NULL);
        fixture_send(f->conn, "app.jobs", "", "three", NULL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m1", "one again", NULL), ==, 1);
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
}

static void test_property_stored_bytes(Fixture *f, gconstpointer data) {
        g_autofree char *generated = NULL;
        guint64 expected;

        g_test_summary("StoredBytes is the sum of the stored ids and payloads in bytes (not characters), "
                       "including generated ids.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, 0);

        /* "a1" + "hello": 2 + 5 bytes. */
        fixture_send(f->conn, "app.jobs", "a1", "hello", NULL);
        expected = 2 + 5;
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, expected);

        /* "b22" + "h\u00e9llo": 3 + 6 bytes, the é takes two. */
        fixture_send(f->conn, "app.jobs", "b22", "h\xc3\xa9llo", NULL);
        expected += 3 + 6;
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, expected);

        /* A generated id counts with its length (32 hex characters). */
        fixture_send(f->conn, "app.jobs", "", "{}", &generated);
        g_assert_cmpuint(strlen(generated), ==, 32);
        expected += strlen(generated) + 2;
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, expected);

        /* Repeating a stored id stores nothing. */
        fixture_send(f->conn, "app.jobs", "a1", "hello, longer this time", NULL);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, "app.jobs", "StoredBytes"), ==, expected);
}

static void test_property_subscriptions(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        g_autofree char *path = NULL;
        g_autoptr(GVariant) value = NULL;
        g_autofree char *text = NULL;

        g_test_summary("Subscriptions lists the durable subscriptions sorted by name, whether each is "
                       "attached, and how many stored messages each has not acknowledged.");

        fixture_open_endpoint(f->conn, "app.jobs", &path);
        value = fixture_get_property(f->conn, path, ENDPOINT_IFACE, "Subscriptions");
        g_assert_cmpstr(g_variant_get_type_string(value), ==, "a(sbt)");
        g_assert_cmpuint(g_variant_n_children(value), ==, 0);
        g_clear_pointer(&value, g_variant_unref);

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        fixture_send(f->conn, "app.jobs", "m2", "two", NULL);
        g_assert_cmpuint(fixture_subscribe(other, "app.jobs", "zeta"), ==, 2);
        g_assert_cmpuint(fixture_subscribe(f->conn, "app.jobs", "alpha"), ==, 2);
        fixture_ack(f->conn, "app.jobs", "alpha", (const char *[]) { "m1", NULL });
        fixture_close_connection(f, other);

        value = fixture_get_property(f->conn, path, ENDPOINT_IFACE, "Subscriptions");
        text = g_variant_print(value, FALSE);
        g_assert_cmpstr(text, ==, "[('alpha', true, 1), ('zeta', false, 2)]");
}

static void test_property_get_all(Fixture *f, gconstpointer data) {
        const char *const names[] = { "BusName", "DiscardedMessages", "ExpiredMessages", "Name", "StoredBytes",
                                      "StoredMessages", "Subscriptions" };
        g_autofree char *path = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GVariant) dict = NULL;
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
        GVariantIter iter;
        const char *key;

        g_test_summary("Properties.GetAll on an endpoint returns exactly Name, BusName, StoredMessages, "
                       "StoredBytes, Subscriptions, DiscardedMessages and ExpiredMessages.");

        fixture_open_endpoint(f->conn, "app.jobs", &path);
        reply = fixture_call_ok(f->conn, path, PROPERTIES_IFACE, "GetAll", g_variant_new("(s)", ENDPOINT_IFACE),
                                "(a{sv})");
        dict = g_variant_get_child_value(reply, 0);

        g_variant_iter_init(&iter, dict);
        while (g_variant_iter_next(&iter, "{&sv}", &key, NULL))
                g_ptr_array_add(keys, g_strdup(key));
        g_ptr_array_sort(keys, compare_strings);

        g_assert_cmpuint(keys->len, ==, G_N_ELEMENTS(names));
        for (guint i = 0; i < keys->len; i++)
                g_assert_cmpstr(g_ptr_array_index(keys, i), ==, names[i]);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/broker/open/returns-the-endpoint-path", Fixture, NULL, fixture_setup, test_open_returns_path,
                   fixture_teardown);
        g_test_add("/broker/open/is-idempotent", Fixture, NULL, fixture_setup, test_open_is_idempotent,
                   fixture_teardown);
        g_test_add("/broker/list/is-empty-at-first", Fixture, NULL, fixture_setup, test_list_is_empty_at_first,
                   fixture_teardown);
        g_test_add("/broker/list/is-sorted-by-name", Fixture, NULL, fixture_setup, test_list_is_sorted,
                   fixture_teardown);
        g_test_add("/broker/delete/removes-the-endpoint-from-the-list", Fixture, NULL, fixture_setup,
                   test_delete_removes_from_list, fixture_teardown);
        g_test_add("/broker/delete/removes-its-messages", Fixture, NULL, fixture_setup, test_delete_removes_messages,
                   fixture_teardown);
        g_test_add("/broker/delete/of-an-unknown-endpoint-fails-with-no-such-endpoint", Fixture, NULL, fixture_setup,
                   test_delete_unknown_fails, fixture_teardown);
        g_test_add("/broker/endpoint-path/first-call-creates-the-endpoint", Fixture, NULL, fixture_setup,
                   test_call_creates_endpoint, fixture_teardown);
        g_test_add("/broker/endpoint-path/first-send-creates-the-endpoint", Fixture, NULL, fixture_setup,
                   test_send_creates_endpoint, fixture_teardown);
        g_test_add("/broker/properties/version-is-the-service-version", Fixture, NULL, fixture_setup,
                   test_property_version, fixture_teardown);
        g_test_add("/broker/properties/name-and-bus-name-follow-the-endpoint-name", Fixture, NULL, fixture_setup,
                   test_property_name_and_bus_name, fixture_teardown);
        g_test_add("/broker/properties/stored-messages-counts-messages", Fixture, NULL, fixture_setup,
                   test_property_stored_messages, fixture_teardown);
        g_test_add("/broker/properties/stored-bytes-counts-id-and-payload-bytes", Fixture, NULL, fixture_setup,
                   test_property_stored_bytes, fixture_teardown);
        g_test_add("/broker/properties/subscriptions-lists-each-with-its-pending-count", Fixture, NULL,
                   fixture_setup, test_property_subscriptions, fixture_teardown);
        g_test_add("/broker/properties/get-all-returns-every-endpoint-property", Fixture, NULL, fixture_setup,
                   test_property_get_all, fixture_teardown);

        return g_test_run();
}
