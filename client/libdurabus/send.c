/* SPDX-License-Identifier: MIT */

/*
 * Sending messages: Send, waited for or answered through a handler; the
 * latter over the client's direct connection when it has one (direct.c).
 */

#include "durabus-private.h"

/* A Send over bus, the client's or its direct connection. */
static int new_send_call(sd_bus *bus, const char *endpoint, const char *id, const char *payload,
                         sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!payload)
                return fail_invalid_args(ret_error, "No payload given");

        r = endpoint_path_from_name(endpoint, &path, ret_error);
        if (r < 0)
                return r;

        r = bus_new_method_call(bus, path, ENDPOINT_INTERFACE, "Send", &call, ret_error);
        if (r < 0)
                return r;

        /* sd-bus refuses text that is not valid UTF-8 here, before anything
         * is sent: say which argument it was. */
        r = sd_bus_message_append(call, "s", id ? id : "");
        if (r < 0)
                return r == -EINVAL ? fail_invalid_args(ret_error, "The message id is not valid UTF-8")
                                    : fail_errno(ret_error, r);
        r = sd_bus_message_append(call, "s", payload);
        if (r < 0)
                return r == -EINVAL ? fail_invalid_args(ret_error, "The payload is not valid UTF-8")
                                    : fail_errno(ret_error, r);
        r = sd_bus_message_append(call, "a{sv}", 0);
        if (r < 0)
                return fail_errno(ret_error, r);

        *ret = TAKE_PTR(call);
        return 0;
}

_public_ int durabus_send(DurabusClient *c, const char *endpoint, const char *id, const char *payload, char **ret_id,
                          uint64_t *ret_seq, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
        _cleanup_(freep) char *id_copy = NULL;
        const char *stored_id;
        uint64_t seq;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");

        r = new_send_call(c->bus, endpoint, id, payload, &call, ret_error);
        if (r < 0)
                return r;

        r = client_call(c, call, &reply, ret_error);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "st", &stored_id, &seq);
        if (r < 0)
                return fail_errno(ret_error, r);

        if (ret_id) {
                id_copy = strdup(stored_id);
                if (!id_copy)
                        return fail_errno(ret_error, -ENOMEM);
                *ret_id = TAKE_PTR(id_copy);
        }
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

/* What the handler of one durabus_send_async() needs. */
typedef struct SendCall {
        durabus_send_handler_t handler;
        void *userdata;
        bool over_bus;                  /* counted in c->bus_sends */
} SendCall;

static void on_send_reply(DurabusClient *c, sd_bus_message *reply, int error, const sd_bus_error *bus_error,
                          void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error read_error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) SendCall *call = userdata;
        const char *id;
        uint64_t seq;
        int r;

        if (c && call->over_bus)
                c->bus_sends--;

        if (error < 0) {
                call->handler(c, error, bus_error, NULL, 0, call->userdata);
                return;
        }

        r = sd_bus_message_read(reply, "st", &id, &seq);
        if (r < 0) {
                (void) sd_bus_error_set_errno(&read_error, r);
                call->handler(c, r, &read_error, NULL, 0, call->userdata);
                return;
        }

        call->handler(c, 0, NULL, id, seq, call->userdata);
}

/* The direct connection when it is open and no send over the bus is
 * unanswered, as the order of sends is kept within one connection only;
 * else the bus, asking for a direct connection for the sends to come. */
static sd_bus *send_bus(DurabusClient *c) {
        if (client_direct_open_async(c) == DIRECT_OPEN && c->bus_sends == 0)
                return c->direct;
        return c->bus;
}

_public_ int durabus_send_async(DurabusClient *c, const char *endpoint, const char *id, const char *payload,
                                durabus_send_handler_t handler, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(freep) SendCall *call = NULL;
        int r;

        if (!c || !handler)
                return -EINVAL;

        r = new_send_call(send_bus(c), endpoint, id, payload, &m, NULL);
        if (r < 0)
                return r;

        call = calloc(1, sizeof(SendCall));
        if (!call)
                return -ENOMEM;
        *call = (SendCall) { .handler = handler, .userdata = userdata, .over_bus = sd_bus_message_get_bus(m) == c->bus };

        /* Answered exactly once from now on, with -ECANCELED and no client
         * when the client is freed first. */
        r = client_call_async(c, m, on_send_reply, call, NULL);
        if (r < 0)
                return r;

        if (call->over_bus)
                c->bus_sends++;
        TAKE_PTR(call);
        return 0;
}
