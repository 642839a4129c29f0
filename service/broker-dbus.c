/* SPDX-License-Identifier: MIT */
#include "broker-dbus.h"

#include <errno.h>
#include <string.h>

#include "access-dbus.h"
#include "bus-util.h"
#include "direct-dbus.h"
#include "endpoint-dbus.h"
#include "errors.h"
#include "names.h"
#include "activation.h"
#include "options.h"

static int check_name(const char *name, sd_bus_error *error) {
        return bus_check_value(names_check_endpoint, name, "endpoint name", DURABUS_ERROR_INVALID_NAME, error);
}

static int on_name_requested(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        /* A name held by another program stays with it; the endpoint is
         * still reachable through org.durabus1. */
        if (e)
                log_warning("Failed to own the bus name of an endpoint: %s", e->message);
        return 0;
}

static void publish(Context *c, Endpoint *e) {
        int r;

        e->bus_data = c;
        e->limits = (EndpointLimits) {
                .max_messages = c->max_stored_messages,
                .max_bytes = c->max_stored_bytes,
                .max_subscriptions = c->max_subscriptions,
                .discard_oldest = strv_contains(c->discard_oldest, e->name),
        };

        if (strv_contains(c->broadcast, e->name)) {
                r = endpoint_start_broadcast(e);
                if (r < 0)
                        log_warning("Failed to start the broadcast of endpoint '%s': %s", e->name, strerror(-r));
        }

        r = sd_bus_request_name_async(c->bus, NULL, e->bus_name, 0, on_name_requested, NULL);
        if (r < 0)
                log_warning("Failed to request the bus name '%s': %s", e->bus_name, strerror(-r));

        if (!c->services_dir)
                return;

        r = activation_write(c->services_dir, e->bus_name, c->exec_line);
        if (r < 0)
                log_warning("Failed to write the activation file of '%s' in '%s': %s", e->bus_name, c->services_dir,
                            strerror(-r));
}

int broker_dbus_publish_all(Context *c) {
        g_autoptr(GPtrArray) list = broker_list(c->broker);

        for (guint i = 0; i < list->len; i++)
                publish(c, g_ptr_array_index(list, i));
        return 0;
}

int broker_dbus_ensure_endpoint(Context *c, const char *name, Endpoint **ret, sd_bus_error *error) {
        Endpoint *e;
        int r;

        if (!broker_get(c->broker, name) && c->max_endpoints > 0 &&
            g_hash_table_size(c->broker->endpoints) >= c->max_endpoints)
                return sd_bus_error_setf(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                         "Cannot create endpoint '%s': there are %u endpoints, the limit "
                                         "(max-endpoints)",
                                         name, g_hash_table_size(c->broker->endpoints));

        r = broker_add(c->broker, name, &e);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to create endpoint '%s'", name);
        if (r > 0) {
                log_info("Created endpoint '%s'", name);
                publish(c, e);
        }

        *ret = e;
        return 0;
}

void broker_dbus_release_names(Context *c) {
        g_autoptr(GPtrArray) list = broker_list(c->broker);

        for (guint i = 0; i < list->len; i++) {
                Endpoint *e = g_ptr_array_index(list, i);
                (void) sd_bus_release_name(c->bus, e->bus_name);
        }
        (void) sd_bus_release_name(c->bus, DURABUS_BUS_NAME);
}

static int method_open_endpoint(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        const char *name;
        Endpoint *e;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = options_read(m, NULL, 0, error);
        if (r < 0)
                return r;
        r = check_name(name, error);
        if (r < 0)
                return r;
        r = access_dbus_check(c, m, name, RIGHTS_MANAGE, "open", error);
        if (r < 0)
                return r;

        r = broker_dbus_ensure_endpoint(c, name, &e, error);
        if (r < 0)
                return r;

        return sd_bus_reply_method_return(m, "o", e->path);
}

static int method_list_endpoints(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        g_autoptr(GPtrArray) list = NULL;
        Context *c = userdata;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;

        r = sd_bus_message_open_container(reply, 'a', "(so)");
        if (r < 0)
                return r;

        list = broker_list(c->broker);
        for (guint i = 0; i < list->len; i++) {
                Endpoint *e = g_ptr_array_index(list, i);

                if (!access_dbus_may_see(c, m, e->name))
                        continue;
                r = sd_bus_message_append(reply, "(so)", e->name, e->path);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;

        return sd_bus_send(NULL, reply, NULL);
}

static int method_delete_endpoint(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        const char *name;
        Endpoint *e;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = check_name(name, error);
        if (r < 0)
                return r;
        /* Before the lookup, so a caller without rights cannot tell which
         * endpoints exist. */
        r = access_dbus_check(c, m, name, RIGHTS_MANAGE, "delete", error);
        if (r < 0)
                return r;

        e = broker_get(c->broker, name);
        if (!e)
                return sd_bus_error_setf(error, DURABUS_ERROR_NO_SUCH_ENDPOINT, "No endpoint is named '%s'", name);

        /* Cut its subscribers loose, then settle every reply held for it,
         * so that nothing waiting for a commit points at it any more. */
        endpoint_dbus_detach_all(c, e);
        committer_forget(c->committer, e);

        (void) sd_bus_release_name_async(c->bus, NULL, e->bus_name, NULL, NULL);
        if (c->services_dir) {
                r = activation_remove(c->services_dir, e->bus_name);
                if (r < 0)
                        log_warning("Failed to remove the activation file of '%s': %s", e->bus_name, strerror(-r));
        }

        r = broker_remove(c->broker, e);
        if (r < 0)
                return bus_error_storage(error, r, "Failed to delete the database of endpoint '%s'", name);

        log_info("Deleted endpoint '%s'", name);
        return sd_bus_reply_method_return(m, NULL);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", DURABUS_VERSION);
}

static const sd_bus_vtable broker_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("OpenEndpoint",
                                SD_BUS_ARGS("s", name, "a{sv}", options),
                                SD_BUS_RESULT("o", endpoint),
                                method_open_endpoint,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListEndpoints",
                                SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("a(so)", endpoints),
                                method_list_endpoints,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("DeleteEndpoint",
                                SD_BUS_ARGS("s", name),
                                SD_BUS_NO_RESULT,
                                method_delete_endpoint,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Authenticate",
                                SD_BUS_ARGS("s", token),
                                SD_BUS_NO_RESULT,
                                access_dbus_method_authenticate,
                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("OpenDirect",
                                SD_BUS_ARGS("a{sv}", options),
                                SD_BUS_RESULT("h", socket),
                                direct_dbus_method_open,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int broker_dbus_register(Context *c, sd_bus *bus) {
        return sd_bus_add_object_vtable(bus, NULL, DURABUS_BROKER_PATH, DURABUS_BROKER_INTERFACE, broker_vtable, c);
}
