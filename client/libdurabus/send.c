/* SPDX-License-Identifier: MIT */

/*
 * Sending messages: Send, waited for or answered through a handler.
 */

#include "durabus-private.h"

static int new_send_call(DurabusClient *c, const char *endpoint, const char *id, const char *payload,
                         sd_bus_message **ret, sd_bus_error *ret_error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        _cleanup_(freep) char *path = NULL;
        int r;

        if (!c)
                return fail_invalid_args(ret_error, "No client given");
        if (!payload)
                return fail_invalid_args(ret_error, "No payload given");

        r = endpoint_path_from_name(endpoint, &path, ret_error);
        if (r < 0)
                return r;

        r = client_new_method_call(c, path, ENDPOINT_INTERFACE, "Send", &call, ret_error);
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

        r = new_send_call(c, endpoint, id, payload, &call, ret_error);
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
} SendCall;

static void on_send_reply(DurabusClient *c, sd_bus_message *reply, int error, const sd_bus_error *bus_error,
                          void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error read_error = SD_BUS_ERROR_NULL;
        _cleanup_(freep) SendCall *call = userdata;
        const char *id;
        uint64_t seq;
        int r;

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

_public_ int durabus_send_async(DurabusClient *c, const char *endpoint, const char *id, const char *payload,
                                durabus_send_handler_t handler, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(freep) SendCall *call = NULL;
        int r;

        if (!handler)
                return -EINVAL;

        r = new_send_call(c, endpoint, id, payload, &m, NULL);
        if (r < 0)
                return r;

        call = calloc(1, sizeof(SendCall));
        if (!call)
                return -ENOMEM;
        *call = (SendCall) { .handler = handler, .userdata = userdata };

        /* Answered exactly once from now on, with -ECANCELED and no client
         * when the client is freed first. */
        r = client_call_async(c, m, on_send_reply, call, NULL);
        if (r < 0)
                return r;

        TAKE_PTR(call);
        return 0;
}
