/* SPDX-License-Identifier: MIT */

/*
 * Managing endpoints: the Broker's OpenEndpoint, ListEndpoints and
 * DeleteEndpoint, and an endpoint's ClearAll and stored-size properties.
 */

#include "durabus-private.h"

_public_ char **durabus_strv_free(char **l) {
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
        return NULL;
}

static void strv_freep(char ***l) {
        durabus_strv_free(*l);
}

/* A call of the Broker's member whose first argument is the endpoint's
 * name, with that argument appended. */
static int new_broker_call(DurabusClient *c, const char *member, const char *name, sd_bus_message **ret,
                           sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");
        if (!name)
                return fail_invalid_args(ret_error, "No endpoint name given");

        r = client_new_method_call(c, BROKER_PATH, BROKER_INTERFACE, member, &call, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "s", name);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

_public_ int durabus_open_endpoint(DurabusClient *c, const char *name, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = new_broker_call(c, "OpenEndpoint", name, &call, ret_error);
        if (r < 0)
                return r;

        /* The options are reserved: none to give. */
        r = sd_bus_message_append(call, "a{sv}", 0);
        if (r < 0)
                return fail_errno(ret_error, r);

        return client_call(c, call, NULL, ret_error);
}

_public_ int durabus_delete_endpoint(DurabusClient *c, const char *name, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        int r;

        r = new_broker_call(c, "DeleteEndpoint", name, &call, ret_error);
        if (r < 0)
                return r;

        return client_call(c, call, NULL, ret_error);
}

static int read_endpoint_names(sd_bus_message *reply, char ***ret_names) {
        _cleanup_(strv_freep) char **names = NULL;
        const char *name, *path;
        size_t n = 0;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        if (r < 0)
                return r;

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;

        while ((r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                char **grown = reallocarray(names, n + 2, sizeof(char *));

                if (!grown)
                        return -ENOMEM;
                names = grown;
                names[n] = strdup(name);
                if (!names[n])
                        return -ENOMEM;
                names[++n] = NULL;
        }
        if (r < 0)
                return r;

        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;

        *ret_names = TAKE_PTR(names);
        return 0;
}

_public_ int durabus_list_endpoints(DurabusClient *c, char ***ret_names, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        int r;

        if (!c || !ret_names)
                return fail_invalid_args(ret_error, "No client or no place for the names given");

        r = client_new_method_call(c, BROKER_PATH, BROKER_INTERFACE, "ListEndpoints", &call, ret_error);
        if (r < 0)
                return r;

        r = client_call(c, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = read_endpoint_names(reply, ret_names);
        if (r < 0)
                return fail_errno(ret_error, r);
        return 0;
}

_public_ int durabus_clear(DurabusClient *c, const char *endpoint, uint64_t *ret_removed, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(freep) char *path = NULL;
        uint64_t removed;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");

        r = endpoint_path_from_name(endpoint, &path, ret_error);
        if (r < 0)
                return r;

        r = client_new_method_call(c, path, ENDPOINT_INTERFACE, "ClearAll", &call, ret_error);
        if (r < 0)
                return r;

        r = client_call(c, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "t", &removed);
        if (r < 0)
                return fail_errno(ret_error, r);

        if (ret_removed)
                *ret_removed = removed;
        return 0;
}

/* Reads StoredMessages and StoredBytes from the a{sv} of GetAll, skipping
 * the other properties. Fails with -EBADMSG when either is missing. */
static int read_stored(sd_bus_message *reply, uint64_t *ret_messages, uint64_t *ret_bytes) {
        bool have_messages = false, have_bytes = false;
        uint64_t messages = 0, bytes = 0;
        const char *property;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;

        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &property);
                if (r < 0)
                        return r;

                if (streq(property, "StoredMessages")) {
                        r = sd_bus_message_read(reply, "v", "t", &messages);
                        have_messages = true;
                } else if (streq(property, "StoredBytes")) {
                        r = sd_bus_message_read(reply, "v", "t", &bytes);
                        have_bytes = true;
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;

        r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return r;
        if (!have_messages || !have_bytes)
                return -EBADMSG;

        *ret_messages = messages;
        *ret_bytes = bytes;
        return 0;
}

_public_ int durabus_get_stored(DurabusClient *c, const char *endpoint, uint64_t *ret_messages, uint64_t *ret_bytes,
                                sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(freep) char *path = NULL;
        uint64_t messages, bytes;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");

        r = endpoint_path_from_name(endpoint, &path, ret_error);
        if (r < 0)
                return r;

        /* One GetAll rather than two Gets: both numbers come from the same
         * moment of the endpoint. */
        r = client_new_method_call(c, path, "org.freedesktop.DBus.Properties", "GetAll", &call, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_append(call, "s", ENDPOINT_INTERFACE);
        if (r < 0)
                return fail_errno(ret_error, r);

        r = client_call(c, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = read_stored(reply, &messages, &bytes);
        if (r < 0)
                return fail_errno(ret_error, r);

        if (ret_messages)
                *ret_messages = messages;
        if (ret_bytes)
                *ret_bytes = bytes;
        return 0;
}
