/* SPDX-License-Identifier: MIT */
/*
 * The introspection XML in introspection/ is the single source of truth of
 * the API. These tests compare it with what the running service reports
 * through org.freedesktop.DBus.Introspectable: same methods with the same
 * arguments (names, types, directions, order), same signals, same properties
 * with their types, access and annotations, nothing more and nothing less.
 */
#include "fixture.h"

#include <string.h>

/* Interface descriptions are borrowed from the node they were parsed from
 * (GLib has no autoptr for GDBusInterfaceInfo), so the loaders return the
 * node and interface_of() looks the interface up in it. */
static GDBusInterfaceInfo *interface_of(GDBusNodeInfo *node, const char *iface) {
        return node ? g_dbus_node_info_lookup_interface(node, iface) : NULL;
}

/* Parses INTERFACES_DIR/<iface>.xml; fails the test unless it describes iface. */
static GDBusNodeInfo *load_xml(const char *iface) {
        const char *dir = g_getenv("INTERFACES_DIR");
        g_autofree char *file = NULL;
        g_autofree char *basename = NULL;
        g_autofree char *xml = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_nonnull(dir);
        basename = g_strconcat(iface, ".xml", NULL);
        file = g_build_filename(dir, basename, NULL);
        g_file_get_contents(file, &xml, NULL, &error);
        g_assert_no_error(error);

        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        if (!interface_of(node, iface))
                g_error("%s does not describe the interface %s", file, iface);
        return g_steal_pointer(&node);
}

/* Introspects path on bus_name over c and returns what the service reports. */
static GDBusNodeInfo *introspect(GDBusConnection *c, const char *bus_name, const char *path) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(GError) error = NULL;
        const char *xml;

        reply = g_dbus_connection_call_sync(c, bus_name, path, "org.freedesktop.DBus.Introspectable",
                                            "Introspect", NULL, G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE,
                                            FIXTURE_TIMEOUT_MS, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(&s)", &xml);
        g_test_message("Introspection of %s at %s:\n%s", bus_name, path, xml);

        node = g_dbus_node_info_new_for_xml(xml, &error);
        g_assert_no_error(error);
        return g_steal_pointer(&node);
}

static guint count_args(GDBusArgInfo **args) {
        guint n = 0;

        while (args && args[n])
                n++;
        return n;
}

/* Appends one line per difference between two argument lists to diff. */
static void compare_args(GString *diff, const char *what, GDBusArgInfo **xml, GDBusArgInfo **service) {
        guint n_xml = count_args(xml), n_service = count_args(service);

        for (guint i = 0; i < MAX(n_xml, n_service); i++) {
                const GDBusArgInfo *x = i < n_xml ? xml[i] : NULL;
                const GDBusArgInfo *s = i < n_service ? service[i] : NULL;

                if (!s)
                        g_string_append_printf(diff, "%s: argument %u '%s' (%s) is missing in the service\n", what,
                                               i, x->name, x->signature);
                else if (!x)
                        g_string_append_printf(diff, "%s: argument %u '%s' (%s) is not in the XML\n", what, i,
                                               s->name, s->signature);
                else if (g_strcmp0(x->name, s->name) != 0 || g_strcmp0(x->signature, s->signature) != 0)
                        g_string_append_printf(diff,
                                               "%s: argument %u is '%s' (%s) in the XML, '%s' (%s) in the service\n",
                                               what, i, x->name, x->signature, s->name ? s->name : "(unnamed)",
                                               s->signature);
        }
}

static void compare_annotations(GString *diff, const char *what, GDBusAnnotationInfo **xml,
                                GDBusAnnotationInfo **service) {
        for (guint i = 0; xml && xml[i]; i++) {
                const char *value = g_dbus_annotation_info_lookup(service, xml[i]->key);

                if (!value)
                        g_string_append_printf(diff, "%s: annotation %s=\"%s\" is missing in the service\n", what,
                                               xml[i]->key, xml[i]->value);
                else if (!g_str_equal(value, xml[i]->value))
                        g_string_append_printf(diff, "%s: annotation %s is \"%s\" in the XML, \"%s\" in the service\n",
                                               what, xml[i]->key, xml[i]->value, value);
        }
        for (guint i = 0; service && service[i]; i++)
                if (!g_dbus_annotation_info_lookup(xml, service[i]->key))
                        g_string_append_printf(diff, "%s: annotation %s=\"%s\" is not in the XML\n", what,
                                               service[i]->key, service[i]->value);
}

static const char *access_name(GDBusPropertyInfoFlags flags) {
        switch (flags & (G_DBUS_PROPERTY_INFO_FLAGS_READABLE | G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE)) {
        case G_DBUS_PROPERTY_INFO_FLAGS_READABLE:
                return "read";
        case G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE:
                return "write";
        case G_DBUS_PROPERTY_INFO_FLAGS_READABLE | G_DBUS_PROPERTY_INFO_FLAGS_WRITABLE:
                return "readwrite";
        default:
                return "none";
        }
}

/* Every difference between the XML's and the service's description of one
 * interface, one line each, naming the member; "" when they agree. */
static char *compare_interfaces(const GDBusInterfaceInfo *xml, const GDBusInterfaceInfo *service) {
        GString *diff = g_string_new(NULL);

        for (guint i = 0; xml->methods && xml->methods[i]; i++) {
                const GDBusMethodInfo *x = xml->methods[i];
                const GDBusMethodInfo *s = g_dbus_interface_info_lookup_method((GDBusInterfaceInfo *) service,
                                                                               x->name);
                g_autofree char *in = g_strdup_printf("method %s, in", x->name);
                g_autofree char *out = g_strdup_printf("method %s, out", x->name);

                if (!s) {
                        g_string_append_printf(diff, "method %s is missing in the service\n", x->name);
                        continue;
                }
                compare_args(diff, in, x->in_args, s->in_args);
                compare_args(diff, out, x->out_args, s->out_args);
        }
        for (guint i = 0; service->methods && service->methods[i]; i++)
                if (!g_dbus_interface_info_lookup_method((GDBusInterfaceInfo *) xml, service->methods[i]->name))
                        g_string_append_printf(diff, "method %s is not in the XML\n", service->methods[i]->name);

        for (guint i = 0; xml->signals && xml->signals[i]; i++) {
                const GDBusSignalInfo *x = xml->signals[i];
                const GDBusSignalInfo *s = g_dbus_interface_info_lookup_signal((GDBusInterfaceInfo *) service,
                                                                               x->name);
                g_autofree char *what = g_strdup_printf("signal %s", x->name);

                if (!s) {
                        g_string_append_printf(diff, "signal %s is missing in the service\n", x->name);
                        continue;
                }
                compare_args(diff, what, x->args, s->args);
        }
        for (guint i = 0; service->signals && service->signals[i]; i++)
                if (!g_dbus_interface_info_lookup_signal((GDBusInterfaceInfo *) xml, service->signals[i]->name))
                        g_string_append_printf(diff, "signal %s is not in the XML\n", service->signals[i]->name);

        for (guint i = 0; xml->properties && xml->properties[i]; i++) {
                const GDBusPropertyInfo *x = xml->properties[i];
                const GDBusPropertyInfo *s = g_dbus_interface_info_lookup_property((GDBusInterfaceInfo *) service,
                                                                                   x->name);
                g_autofree char *what = g_strdup_printf("property %s", x->name);

                if (!s) {
                        g_string_append_printf(diff, "property %s is missing in the service\n", x->name);
                        continue;
                }
                if (!g_str_equal(x->signature, s->signature))
                        g_string_append_printf(diff, "property %s: type is %s in the XML, %s in the service\n",
                                               x->name, x->signature, s->signature);
                if (x->flags != s->flags)
                        g_string_append_printf(diff, "property %s: access is %s in the XML, %s in the service\n",
                                               x->name, access_name(x->flags), access_name(s->flags));
                compare_annotations(diff, what, x->annotations, s->annotations);
        }
        for (guint i = 0; service->properties && service->properties[i]; i++)
                if (!g_dbus_interface_info_lookup_property((GDBusInterfaceInfo *) xml, service->properties[i]->name))
                        g_string_append_printf(diff, "property %s is not in the XML\n", service->properties[i]->name);

        return g_string_free(diff, FALSE);
}

static void assert_service_matches_xml(GDBusConnection *c, const char *bus_name, const char *path,
                                       const char *iface) {
        g_autoptr(GDBusNodeInfo) xml = load_xml(iface);
        g_autoptr(GDBusNodeInfo) service = introspect(c, bus_name, path);
        g_autofree char *diff = NULL;

        if (!interface_of(service, iface))
                g_error("The service does not report the interface %s at %s on %s", iface, path, bus_name);
        diff = compare_interfaces(interface_of(xml, iface), interface_of(service, iface));
        g_assert_cmpstr(diff, ==, "");
}

static void test_broker(Fixture *f, gconstpointer data) {
        g_test_summary("What the service reports for org.durabus1.Broker at /org/durabus1 is exactly what "
                       "introspection/org.durabus1.Broker.xml describes.");

        assert_service_matches_xml(f->conn, DURABUS_NAME, BROKER_PATH, BROKER_IFACE);
}

static void test_endpoint(Fixture *f, gconstpointer data) {
        g_autofree char *path = fixture_endpoint_path("app.jobs");

        g_test_summary("What the service reports for org.durabus1.Endpoint at an endpoint's path is exactly "
                       "what introspection/org.durabus1.Endpoint.xml describes.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        assert_service_matches_xml(f->conn, DURABUS_NAME, path, ENDPOINT_IFACE);
}

static void test_endpoint_own_bus_name(Fixture *f, gconstpointer data) {
        g_autofree char *path = fixture_endpoint_path("app.jobs");

        g_test_summary("An endpoint introspected through its own bus name org.durabus1.endpoint.NAME also "
                       "matches introspection/org.durabus1.Endpoint.xml.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        assert_service_matches_xml(f->conn, "org.durabus1.endpoint.app.jobs", path, ENDPOINT_IFACE);
}

static void test_direct(Fixture *f, gconstpointer data) {
        g_autoptr(GDBusConnection) direct = NULL;
        g_autofree char *path = fixture_endpoint_path("app.jobs");

        g_test_summary("Over a direct connection (OpenDirect) the service serves the same objects: the Broker "
                       "and an endpoint introspect exactly as their XML describes.");

        fixture_open_endpoint(f->conn, "app.jobs", NULL);
        direct = fixture_open_direct(f->conn);
        assert_service_matches_xml(direct, DURABUS_NAME, BROKER_PATH, BROKER_IFACE);
        assert_service_matches_xml(direct, DURABUS_NAME, path, ENDPOINT_IFACE);
}

/* The Broker interface with one difference of each kind. */
static const char altered_broker_xml[] =
        "<node><interface name='org.durabus1.Broker'>"
        "  <method name='OpenEndpoint'>"
        "    <arg type='s' name='endpoint_name' direction='in'/>"
        "    <arg type='a{sv}' name='options' direction='in'/>"
        "    <arg type='s' name='endpoint' direction='out'/>"
        "  </method>"
        "  <method name='ListEndpoints'/>"
        "  <method name='DeleteEndpoint'>"
        "    <arg type='s' name='name' direction='in'/>"
        "    <arg type='b' name='force' direction='in'/>"
        "  </method>"
        "  <method name='Authenticate'>"
        "    <arg type='s' name='token' direction='in'/>"
        "  </method>"
        "  <method name='OpenDirect'>"
        "    <arg type='a{sv}' name='options' direction='in'/>"
        "    <arg type='h' name='socket' direction='out'/>"
        "  </method>"
        "  <property name='Version' type='s' access='readwrite'>"
        "    <annotation name='org.freedesktop.DBus.Property.EmitsChangedSignal' value='true'/>"
        "  </property>"
        "</interface></node>";

static void test_comparison_names_differences(void) {
        g_autoptr(GDBusNodeInfo) endpoint_node = load_xml(ENDPOINT_IFACE);
        g_autoptr(GDBusNodeInfo) broker_node = load_xml(BROKER_IFACE);
        GDBusInterfaceInfo *endpoint = interface_of(endpoint_node, ENDPOINT_IFACE);
        GDBusInterfaceInfo *broker = interface_of(broker_node, BROKER_IFACE);
        g_autoptr(GDBusNodeInfo) altered_node = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *same = NULL;
        g_autofree char *diff = NULL;

        g_test_summary("The comparison itself finds differences and names them: an interface compared with "
                       "itself has none, two different interfaces report each missing member by name, and "
                       "changed arguments, property access and annotations are reported with both sides.");

        same = compare_interfaces(endpoint, endpoint);
        g_assert_cmpstr(same, ==, "");

        diff = compare_interfaces(endpoint, broker);
        g_test_message("Differences found:\n%s", diff);
        g_assert_nonnull(strstr(diff, "method Send is missing in the service"));
        g_assert_nonnull(strstr(diff, "method OpenEndpoint is not in the XML"));
        g_assert_nonnull(strstr(diff, "signal Message is missing in the service"));
        g_assert_nonnull(strstr(diff, "property StoredBytes is missing in the service"));
        g_assert_nonnull(strstr(diff, "property Version is not in the XML"));

        /* Arguments, property types and annotations are compared too. */
        altered_node = g_dbus_node_info_new_for_xml(altered_broker_xml, &error);
        g_assert_no_error(error);
        g_clear_pointer(&diff, g_free);
        diff = compare_interfaces(broker, interface_of(altered_node, BROKER_IFACE));
        g_test_message("Differences found:\n%s", diff);
        g_assert_cmpstr(diff, ==,
                        "method OpenEndpoint, in: argument 0 is 'name' (s) in the XML, "
                        "'endpoint_name' (s) in the service\n"
                        "method OpenEndpoint, out: argument 0 is 'endpoint' (o) in the XML, "
                        "'endpoint' (s) in the service\n"
                        "method ListEndpoints, out: argument 0 'endpoints' (a(so)) is missing in the service\n"
                        "method DeleteEndpoint, in: argument 1 'force' (b) is not in the XML\n"
                        "property Version: access is read in the XML, readwrite in the service\n"
                        "property Version: annotation org.freedesktop.DBus.Property.EmitsChangedSignal "
                        "is \"const\" in the XML, \"true\" in the service\n");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();

        g_test_add("/introspection/broker/matches-the-xml", Fixture, NULL, fixture_setup, test_broker,
                   fixture_teardown);
        g_test_add("/introspection/endpoint/matches-the-xml", Fixture, NULL, fixture_setup, test_endpoint,
                   fixture_teardown);
        g_test_add("/introspection/endpoint/matches-the-xml-on-its-own-bus-name", Fixture, NULL, fixture_setup,
                   test_endpoint_own_bus_name, fixture_teardown);
        g_test_add("/introspection/direct/broker-and-endpoint-match-the-xml", Fixture, NULL, fixture_setup,
                   test_direct, fixture_teardown);
        g_test_add_func("/introspection/comparison/names-every-difference", test_comparison_names_differences);

        return g_test_run();
}
