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

/* One send waiting for its reply. It lives as long as the slot of the call,
 * which the bus owns: freed after the reply, or with the bus. */
typedef struct SendCall {
        DurabusClient *client;
        durabus_send_handler_t handler;
        void *userdata;
        bool settled;             /* the handler is owed nothing more */
} SendCall;

static int on_send_reply(sd_bus_message *reply, void *userdata, _unused_ sd_bus_error *ret_error) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        SendCall *call = userdata;
        const char *id;
        uint64_t seq;
        int r;

        /* Set first: the handler may free the client, and the slot with this
         * call goes away when we return. */
        call->settled = true;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);

                call->handler(call->client, errno_from_bus_error(e), e, NULL, 0, call->userdata);
                return 0;
        }

        r = sd_bus_message_read(reply, "st", &id, &seq);
        if (r < 0) {
                (void) sd_bus_error_set_errno(&error, r);
                call->handler(call->client, r, &error, NULL, 0, call->userdata);
                return 0;
        }

        call->handler(call->client, 0, NULL, id, seq, call->userdata);
        return 0;
}

/* The slot is freed either after the reply was handled or, with the bus,
 * when the client is freed first; only then is the handler still owed its
 * call, so that the application can let go of userdata. */
static void send_call_destroy(void *userdata) {
        SendCall *call = userdata;

        if (!call->settled) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;

                (void) sd_bus_error_set_errno(&error, -ECANCELED);
                call->handler(NULL, -ECANCELED, &error, NULL, 0, call->userdata);
        }
        free(call);
}

_public_ int durabus_send_async(DurabusClient *c, const char *endpoint, const char *id, const char *payload,
                                durabus_send_handler_t handler, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_(freep) SendCall *call = NULL;
        SendCall *owned;
        int r;

        if (!handler)
                return -EINVAL;

        r = new_send_call(c, endpoint, id, payload, &m, NULL);
        if (r < 0)
                return r;

        call = calloc(1, sizeof(SendCall));
        if (!call)
                return -ENOMEM;
        *call = (SendCall) { .client = c, .handler = handler, .userdata = userdata };

        r = sd_bus_call_async(c->bus, &slot, m, on_send_reply, call, 0);
        if (r < 0)
                return r;

        r = sd_bus_slot_set_destroy_callback(slot, send_call_destroy);
        if (r < 0)
                return r;
        owned = TAKE_PTR(call);

        /* Floating: the bus keeps the slot until the reply came. */
        r = sd_bus_slot_set_floating(slot, 1);
        if (r < 0) {
                /* Dropped with the slot, without the handler: we report
                 * the failure here instead. */
                owned->settled = true;
                return r;
        }

        return 0;
}
