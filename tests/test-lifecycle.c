/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the service's life: D-Bus activation through
 * org.durabus1 and through each endpoint's own bus name, the bus names it
 * owns, the activation files it keeps for endpoints, its exit when idle and
 * on SIGTERM/SIGINT. Every test case runs against a private dbus-daemon that
 * starts the built durabusd by activation (fixture.c).
 */
#include "fixture.h"

#include <signal.h>
#include <string.h>

#define ENDPOINT_BUS_NAME_PREFIX "org.durabus1.endpoint."

static const FixtureOptions idle_after_1s = { .service_args = "--idle-timeout 1" };
static const FixtureOptions no_endpoint_activation = { .service_args = "--no-endpoint-activation" };

/* The unique name owning name, or NULL when it has no owner. Asks the bus
 * only: this never activates anything. */
static char *name_owner(Fixture *f, const char *name) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        char *owner;

        reply = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", name),
                                            G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL,
                                            &error);
        if (!reply) {
                g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
                return NULL;
        }
        g_variant_get(reply, "(s)", &owner);
        return owner;
}

static char *endpoint_bus_name(const char *endpoint) {
        return g_strconcat(ENDPOINT_BUS_NAME_PREFIX, endpoint, NULL);
}

/* $XDG_DATA_HOME/dbus-1/services/org.durabus1.endpoint.NAME.service */
static char *activation_file(Fixture *f, const char *endpoint) {
        g_autofree char *basename = g_strconcat(ENDPOINT_BUS_NAME_PREFIX, endpoint, ".service", NULL);

        return g_build_filename(f->endpoint_services_dir, basename, NULL);
}

/* Fails the test, naming the bus name, unless the service (the owner of
 * org.durabus1) owns the bus name of endpoint. */
static void assert_service_owns_endpoint_name(Fixture *f, const char *endpoint) {
        g_autofree char *bus_name = endpoint_bus_name(endpoint);
        g_autofree char *service = name_owner(f, DURABUS_NAME);
        g_autofree char *owner = name_owner(f, bus_name);

        g_test_message("Owner of %s: %s; owner of %s: %s", DURABUS_NAME, service, bus_name, owner);
        g_assert_nonnull(service);
        g_assert_cmpstr(owner, ==, service);
}

static void assert_endpoint_name_unowned(Fixture *f, const char *endpoint) {
        g_autofree char *bus_name = endpoint_bus_name(endpoint);
        g_autofree char *owner = name_owner(f, bus_name);

        g_test_message("Owner of %s: %s", bus_name, owner);
        g_assert_cmpstr(owner, ==, NULL);
}

/* The activation file of endpoint exists and activates its bus name. */
#define assert_activation_file_present(f, endpoint) \
        assert_activation_file_present_at(__FILE__, __LINE__, G_STRFUNC, f, endpoint)
static void assert_activation_file_present_at(const char *file, int line, const char *func, Fixture *f,
                                              const char *endpoint) {
        g_autofree char *path = activation_file(f, endpoint);
        g_autofree char *bus_name = endpoint_bus_name(endpoint);
        g_autoptr(GKeyFile) key_file = g_key_file_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *name = NULL;
        g_autofree char *exec = NULL;

        if (!g_key_file_load_from_file(key_file, path, G_KEY_FILE_NONE, &error)) {
                g_autofree char *message = g_strdup_printf("activation file of '%s': %s", endpoint, error->message);
                g_assertion_message(G_LOG_DOMAIN, file, line, func, message);
                return;
        }
        name = g_key_file_get_string(key_file, "D-BUS Service", "Name", NULL);
        exec = g_key_file_get_string(key_file, "D-BUS Service", "Exec", NULL);
        g_test_message("%s: Name=%s Exec=%s", path, name, exec);
        if (g_strcmp0(name, bus_name) != 0)
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "Name= of the activation file", name,
                                           "==", bus_name);
        if (!exec || !*exec)
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "Exec= of the activation file", exec,
                                           "!=", "");
}

#define assert_activation_file_absent(f, endpoint) \
        assert_activation_file_absent_at(__FILE__, __LINE__, G_STRFUNC, f, endpoint)
static void assert_activation_file_absent_at(const char *file, int line, const char *func, Fixture *f,
                                             const char *endpoint) {
        g_autofree char *path = activation_file(f, endpoint);

        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
                g_autofree char *message = g_strdup_printf("%s exists but should not", path);
                g_assertion_message(G_LOG_DOMAIN, file, line, func, message);
        }
}

static guint n_endpoints(Fixture *f) {
        g_autoptr(GVariant) list = fixture_list_endpoints(f->conn);

        return g_variant_n_children(list);
}

static gboolean on_flag_timeout(gpointer data) {
        *(gboolean *) data = TRUE;
        return G_SOURCE_REMOVE;
}

static void test_first_call_activates(Fixture *f, gconstpointer data) {
        g_autofree char *before = NULL;
        g_autofree char *after = NULL;

        g_test_summary("Nothing owns org.durabus1 until the first call to it; that call starts the service "
                       "by D-Bus activation and is answered.");

        before = name_owner(f, DURABUS_NAME);
        g_assert_cmpstr(before, ==, NULL);
        g_assert_cmpint(fixture_service_pid(f), ==, 0);

        g_assert_cmpuint(n_endpoints(f), ==, 0);

        after = name_owner(f, DURABUS_NAME);
        g_assert_nonnull(after);
        g_assert_cmpint(fixture_service_pid(f), >, 0);
}

static void test_owns_name_after_open(Fixture *f, gconstpointer data) {
        g_test_summary("From the moment OpenEndpoint returns, the service owns org.durabus1.endpoint.NAME, "
                       "and for a name of several elements too.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        assert_service_owns_endpoint_name(f, "app.jobs");

        fixture_open_endpoint(f->conn, "org.gnome.Calendar.reminders", NULL);
        assert_service_owns_endpoint_name(f, "org.gnome.Calendar.reminders");
        assert_service_owns_endpoint_name(f, "app.jobs");
}

static void test_owns_name_after_first_call(Fixture *f, gconstpointer data) {
        g_test_summary("An endpoint created by a call on its path (not by OpenEndpoint) owns its bus name and "
                       "has its activation file too.");

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m1", "hello", NULL), ==, 1);
        assert_service_owns_endpoint_name(f, "app.jobs");
        assert_activation_file_present(f, "app.jobs");
}

static void test_releases_name_after_delete(Fixture *f, gconstpointer data) {
        g_test_summary("DeleteEndpoint releases org.durabus1.endpoint.NAME by the time it returns, and only "
                       "that name.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        fixture_open_endpoint(f->conn, "chat", NULL);
        assert_service_owns_endpoint_name(f, "app.jobs");

        fixture_delete_endpoint(f->conn, "app.jobs");
        assert_endpoint_name_unowned(f, "app.jobs");
        assert_service_owns_endpoint_name(f, "chat");
}

static void test_activation_file_lifecycle(Fixture *f, gconstpointer data) {
        g_test_summary("OpenEndpoint writes $XDG_DATA_HOME/dbus-1/services/org.durabus1.endpoint.NAME.service "
                       "naming the endpoint's bus name; DeleteEndpoint removes it.");

        assert_activation_file_absent(f, "app.jobs");
        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        assert_activation_file_present(f, "app.jobs");

        fixture_delete_endpoint(f->conn, "app.jobs");
        assert_activation_file_absent(f, "app.jobs");
}

static void test_endpoint_name_activates(Fixture *f, gconstpointer data) {
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        g_autofree char *first = NULL;
        g_autofree char *second = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *id;
        guint64 seq;

        g_test_summary("After kill -9, a call addressed to org.durabus1.endpoint.NAME itself (not to "
                       "org.durabus1) starts the service again through the endpoint's activation file, and "
                       "the endpoint still holds its messages.");

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "before-kill", "one", NULL), ==, 1);
        assert_activation_file_present(f, "app.jobs");
        first = name_owner(f, DURABUS_NAME);

        fixture_kill_service(f, SIGKILL);
        g_assert_cmpstr(name_owner(f, DURABUS_NAME), ==, NULL);
        assert_endpoint_name_unowned(f, "app.jobs");

        reply = g_dbus_connection_call_sync(f->conn, "org.durabus1.endpoint.app.jobs", path, ENDPOINT_IFACE, "Send",
                                            g_variant_new("(ssa{sv})", "after-kill", "two", NULL),
                                            G_VARIANT_TYPE("(st)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL,
                                            &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(&st)", &id, &seq);
        g_assert_cmpstr(id, ==, "after-kill");
        g_assert_cmpuint(seq, ==, 2);

        second = name_owner(f, DURABUS_NAME);
        g_assert_nonnull(second);
        g_assert_cmpstr(second, !=, first);
        assert_service_owns_endpoint_name(f, "app.jobs");
        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 2);

        fixture_delete_endpoint(f->conn, "app.jobs");
        assert_activation_file_absent(f, "app.jobs");
        assert_endpoint_name_unowned(f, "app.jobs");
}

static void test_startup_owns_existing_names(Fixture *f, gconstpointer data) {
        const char *const endpoints[] = { "alpha", "app.jobs", "org.gnome.Calendar.reminders" };

        g_test_summary("A service started after kill -9, through org.durabus1, owns the bus name of every "
                       "endpoint that already exists by the time it answers its first call.");

        for (gsize i = 0; i < G_N_ELEMENTS(endpoints); i++)
                fixture_open_endpoint(f->conn, endpoints[i], NULL);

        fixture_kill_service(f, SIGKILL);
        for (gsize i = 0; i < G_N_ELEMENTS(endpoints); i++)
                assert_endpoint_name_unowned(f, endpoints[i]);

        g_assert_cmpuint(n_endpoints(f), ==, G_N_ELEMENTS(endpoints));
        for (gsize i = 0; i < G_N_ELEMENTS(endpoints); i++)
                assert_service_owns_endpoint_name(f, endpoints[i]);
}

static void test_idle_exit(Fixture *f, gconstpointer data) {
        g_autofree char *first = NULL;
        g_autofree char *second = NULL;

        g_test_summary("With --idle-timeout 1 and nothing attached, the service exits by itself; the next call "
                       "starts it again and finds the data intact.");

        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m1", "kept", NULL), ==, 1);
        first = name_owner(f, DURABUS_NAME);
        g_assert_nonnull(first);

        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
        assert_endpoint_name_unowned(f, "app.jobs");

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 1);
        second = name_owner(f, DURABUS_NAME);
        g_assert_nonnull(second);
        g_assert_cmpstr(second, !=, first);
        assert_service_owns_endpoint_name(f, "app.jobs");
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m2", "next", NULL), ==, 2);

        /* The second instance goes idle too, so the teardown finds nothing to
         * stop (and does not race the idle exit). */
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
}

static void test_subscription_keeps_alive(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) subscriber = fixture_connect(f);
        g_autoptr(Collector) collector = collector_new(subscriber);
        g_autofree char *first = NULL;
        g_autofree char *still = NULL;
        gboolean vanished = FALSE, window_over = FALSE;
        guint watch;

        g_test_summary("With --idle-timeout 1, the service does not exit while a subscription is attached: it "
                       "is the same process 3 s later and still delivers to the subscriber. Once the "
                       "subscriber's connection closes, it exits by itself.");

        g_assert_cmpuint(fixture_subscribe(subscriber, "app.jobs", "worker"), ==, 0);
        first = name_owner(f, DURABUS_NAME);
        g_assert_nonnull(first);

        /* There is no event for "did not exit", so watch the name during a
         * fixed observation window of three idle timeouts. */
        watch = fixture_watch_name_vanishing(f, DURABUS_NAME, &vanished);
        g_timeout_add_seconds(3, on_flag_timeout, &window_over);
        fixture_wait_for(&window_over);
        g_bus_unwatch_name(watch);

        g_assert_false(vanished);
        still = name_owner(f, DURABUS_NAME);
        g_assert_cmpstr(still, ==, first);

        /* The subscription is still attached to the same process: a Send
         * reaches the subscriber live. */
        fixture_send(f->conn, "app.jobs", "live", "still here", NULL);
        collector_wait(collector, 1);
        g_assert_cmpstr(collector_get(collector, 0)->id, ==, "live");
        g_assert_cmpstr(collector_get(collector, 0)->subscriber, ==, "worker");

        g_dbus_connection_close_sync(subscriber, NULL, NULL);
        fixture_wait_for_name_to_vanish(f, DURABUS_NAME);
}

static void test_sigterm(Fixture *f, gconstpointer data) {
        g_test_summary("SIGTERM ends the service: its names vanish, and the next call starts it again with "
                       "every message and the sequence intact.");

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        fixture_send(f->conn, "app.jobs", "m2", "two", NULL);
        fixture_send(f->conn, "app.jobs", "m3", "three", NULL);

        fixture_kill_service(f, SIGTERM);
        g_assert_cmpstr(name_owner(f, DURABUS_NAME), ==, NULL);
        assert_endpoint_name_unowned(f, "app.jobs");

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 3);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m4", "four", NULL), ==, 4);
}

static void test_sigint(Fixture *f, gconstpointer data) {
        g_test_summary("SIGINT ends the service like SIGTERM: its names vanish and the data is intact.");

        fixture_send(f->conn, "app.jobs", "m1", "one", NULL);
        fixture_send(f->conn, "app.jobs", "m2", "two", NULL);

        fixture_kill_service(f, SIGINT);
        g_assert_cmpstr(name_owner(f, DURABUS_NAME), ==, NULL);
        assert_endpoint_name_unowned(f, "app.jobs");

        g_assert_cmpuint(fixture_stored_messages(f->conn, "app.jobs"), ==, 2);
        g_assert_cmpuint(fixture_send(f->conn, "app.jobs", "m3", "three", NULL), ==, 3);
}

static void test_no_endpoint_activation(Fixture *f, gconstpointer data) {
        g_autofree char *path = fixture_endpoint_path("app.jobs");
        g_autoptr(GDir) dir = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *entry;

        g_test_summary("With --no-endpoint-activation the service still owns the endpoint's bus name but "
                       "writes no activation file, so that name no longer starts the service.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        assert_service_owns_endpoint_name(f, "app.jobs");
        assert_activation_file_absent(f, "app.jobs");

        dir = g_dir_open(f->endpoint_services_dir, 0, &error);
        g_assert_no_error(error);
        while ((entry = g_dir_read_name(dir)))
                g_assert_cmpstr(entry, ==, NULL);

        fixture_kill_service(f, SIGTERM);
        reply = g_dbus_connection_call_sync(f->conn, "org.durabus1.endpoint.app.jobs", path, ENDPOINT_IFACE,
                                            "ClearAll", NULL, G_VARIANT_TYPE("(t)"), G_DBUS_CALL_FLAGS_NONE,
                                            FIXTURE_TIMEOUT_MS, NULL, &error);
        g_assert_error(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN);
        g_assert_cmpstr(name_owner(f, DURABUS_NAME), ==, NULL);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/lifecycle/activation/first-call-starts-the-service", Fixture, NULL, fixture_setup,
                   test_first_call_activates, fixture_teardown);
        g_test_add("/lifecycle/endpoint-name/is-owned-after-open", Fixture, NULL, fixture_setup,
                   test_owns_name_after_open, fixture_teardown);
        g_test_add("/lifecycle/endpoint-name/is-owned-after-a-first-call-on-its-path", Fixture, NULL, fixture_setup,
                   test_owns_name_after_first_call, fixture_teardown);
        g_test_add("/lifecycle/endpoint-name/is-released-after-delete", Fixture, NULL, fixture_setup,
                   test_releases_name_after_delete, fixture_teardown);
        g_test_add("/lifecycle/activation-file/is-written-on-open-and-removed-on-delete", Fixture, NULL, fixture_setup,
                   test_activation_file_lifecycle, fixture_teardown);
        g_test_add("/lifecycle/activation-file/starts-the-service-through-the-endpoint-name-after-kill", Fixture, NULL,
                   fixture_setup, test_endpoint_name_activates, fixture_teardown);
        g_test_add("/lifecycle/activation-file/is-not-written-with-no-endpoint-activation", Fixture,
                   &no_endpoint_activation, fixture_setup, test_no_endpoint_activation, fixture_teardown);
        g_test_add("/lifecycle/startup/owns-the-names-of-existing-endpoints", Fixture, NULL, fixture_setup,
                   test_startup_owns_existing_names, fixture_teardown);
        g_test_add("/lifecycle/idle/exits-by-itself-and-comes-back-with-data-intact", Fixture, &idle_after_1s,
                   fixture_setup, test_idle_exit, fixture_teardown);
        g_test_add("/lifecycle/idle/does-not-exit-while-a-subscription-is-attached", Fixture, &idle_after_1s,
                   fixture_setup, test_subscription_keeps_alive, fixture_teardown);
        g_test_add("/lifecycle/signals/sigterm-ends-the-service-with-data-intact", Fixture, NULL, fixture_setup,
                   test_sigterm, fixture_teardown);
        g_test_add("/lifecycle/signals/sigint-ends-the-service-with-data-intact", Fixture, NULL, fixture_setup,
                   test_sigint, fixture_teardown);

        return g_test_run();
}
