/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the modules of libdurabus share and applications never see: the
 * client object, the few helpers of systemd's internal macro set that
 * libsystemd does not export, and one prototype per cross-module function.
 * Everything here has hidden visibility; only functions marked _public_ are
 * exported, and libdurabus.sym lets through nothing but durabus_*.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "durabus.h"

#define _public_ __attribute__((visibility("default")))
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unused_ __attribute__((unused))

/* Returns the pointer and leaves NULL behind, so the cleanup that guarded it
 * no longer frees it: ownership moves to whoever takes the value. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _p_ = (p);   \
                (p) = NULL;                \
                _p_;                       \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool isempty(const char *s) {
        return !s || !*s;
}

#define DURABUS_BUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"
#define BROKER_INTERFACE "org.durabus1.Broker"
#define ENDPOINT_INTERFACE "org.durabus1.Endpoint"

/* The changes of the owner of org.durabus1, as only the bus announces them;
 * each handler checks the sender and the name again. */
#define NAME_OWNER_CHANGED_MATCH                                                              \
        "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"             \
        "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='" DURABUS_BUS_NAME "'"

typedef struct AuthProof AuthProof;
typedef struct ClientCall ClientCall;

/* What durabus_send_async() and a subscription attaching itself again may
 * use right now (direct.c). */
typedef enum DirectState {
        DIRECT_NONE,            /* the bus: direct is off, refused, or failed */
        DIRECT_OPEN,            /* c->direct */
        DIRECT_OPENING,         /* an OpenDirect is on its way; subscriptions wait for it */
} DirectState;

struct DurabusClient {
        unsigned n_ref;
        sd_bus *bus;
        sd_bus_slot *disconnected_slot;
        durabus_disconnect_handler_t disconnect_handler;
        void *disconnect_userdata;
        /* Every live subscription object made from this client, so that one
         * subscription is not attached twice through the same connection
         * (the service would take the second Subscribe as a restart of the
         * first one's replay). Not owning: each subscription unlinks itself. */
        DurabusSubscription *subscriptions;

        /* Access control (call.c), while the application gave a token: the
         * token, erased from memory when it goes; the watch of the owner of
         * org.durabus1; the latest Authenticate sent for the running
         * instance of the service, NULL when the next call is to send one;
         * and the calls whose reply waits for the answer of the
         * Authenticate ahead of them, oldest first. */
        char *token;
        sd_bus_slot *owner_slot;
        AuthProof *proof;
        ClientCall *held;

        /* The sd-event loop and priority of durabus_client_attach_event(),
         * which the direct connection shares; NULL while not attached. */
        sd_event *event;
        int64_t event_priority;

        /* The direct connection (direct.c): whether it is to be used; the
         * open one, with its Disconnected match and the unique name of the
         * instance that handed it out, which dies with it; the OpenDirect on
         * its way; and whether the running instance refused it, which
         * sends everything over the bus until that instance leaves. */
        bool direct_enabled;
        sd_bus *direct;
        sd_bus_slot *direct_disconnected_slot;
        char *direct_instance;
        ClientCall *direct_call;
        bool direct_refused;
        /* Asynchronous sends over the bus still unanswered: the next goes
         * over the bus too, as sends of one client are stored in the order
         * they were queued, which two connections do not keep. */
        unsigned bus_sends;
};

/* ---- client.c ---- */

/* A method call to org.durabus1 on path over bus (the client's, or its
 * direct connection), built for the caller to append the arguments to. */
int bus_new_method_call(sd_bus *bus, const char *path, const char *interface, const char *member,
                        sd_bus_message **ret, sd_bus_error *ret_error);

/* The same over the client's bus connection. */
int client_new_method_call(DurabusClient *c, const char *path, const char *interface, const char *member,
                           sd_bus_message **ret, sd_bus_error *ret_error);

/* ---- direct.c ---- */

/* Opens the direct connection unless it is open, waiting for the answer,
 * after the token was proved to the running instance. Returns DIRECT_OPEN
 * when c->direct is to be used, DIRECT_NONE for the bus (direct is off, the
 * client is not on sd-event, the instance refused it, or the call failed:
 * the call made next over the bus then reports why). */
DirectState client_direct_open(DurabusClient *c);

/* The same without waiting: DIRECT_OPENING while the OpenDirect it sent (or
 * one sent before) is on its way; its answer calls
 * subscriptions_direct_settled(). */
DirectState client_direct_open_async(DurabusClient *c);

/* Closes the direct connection, for durabus_client_unref(): pending sends
 * over it are told -ECANCELED. */
void client_direct_free(DurabusClient *c);

/* Attaches the direct connection to c->event, or detaches it when that is
 * NULL. */
int client_direct_attach_event(DurabusClient *c);

/* The running instance has left: it may give a direct connection now. */
void client_direct_service_left(DurabusClient *c);

/* ---- subscription.c ---- */

/* The OpenDirect that subscriptions waited for was answered: error 0 (open
 * now, or refused, and the bus is to be used), or its failure. */
void subscriptions_direct_settled(DurabusClient *c, int error, const sd_bus_error *bus_error);

/* The direct connection bus closed: what was attached over it attaches
 * itself again. */
void subscriptions_direct_closed(DurabusClient *c, sd_bus *bus);

/* ---- call.c ---- */

/* Sends call and waits for its reply, after proving the client's token to
 * the running instance when it has not had it yet. On success the reply
 * goes to *ret_reply unless it is NULL. On failure the error goes to
 * ret_error and the errno of durabus's error map is returned. */
int client_call(DurabusClient *c, sd_bus_message *call, sd_bus_message **ret_reply, sd_bus_error *ret_error);

/* Called once with the answer to client_call_async(): error 0 and the
 * method return, or a negative errno, bus_error naming the failure and the
 * error reply; reply and c are NULL, and error -ECANCELED, when the client
 * was freed before the answer came. */
typedef void (*client_reply_handler_t)(DurabusClient *c, sd_bus_message *reply, int error,
                                       const sd_bus_error *bus_error, void *userdata);

/* Sends call without waiting; handler gets the answer from the event loop,
 * exactly once unless the call is canceled first. An Authenticate goes ahead
 * of it when one is due, and a refusal that its failure caused is reported
 * as that failure. *ret (unless ret is NULL) is a handle for
 * client_call_cancel(), valid until the handler is called. Returns a
 * negative errno, and never calls the handler, when nothing was sent. */
int client_call_async(DurabusClient *c, sd_bus_message *call, client_reply_handler_t handler, void *userdata,
                      ClientCall **ret);

/* The handler of the call is never called. NULL is accepted. */
void client_call_cancel(ClientCall *call);

/* The instance old_owner has left the bus name: what it accepted is void,
 * and the next call proves the token again. Each NameOwnerChanged handler
 * calls this before it acts, so that whichever runs first finds it done. */
void client_service_left(DurabusClient *c, const char *old_owner);

/* Frees what access control holds, erasing the token, and ends the calls
 * it holds back with -ECANCELED; for durabus_client_unref(), before the
 * bus goes, as their replies hold references to it. */
void client_forget_token(DurabusClient *c);

/* ---- errors.c ---- */

/* The negative errno of a D-Bus error: from durabus's own map for its error
 * names, else as sd-bus maps it. */
int errno_from_bus_error(const sd_bus_error *error);

/* Fills ret_error (unless NULL or set already) with the System.Error name of
 * the negative errno r and its description; returns r. For local failures,
 * where no D-Bus error came back. */
int fail_errno(sd_bus_error *ret_error, int r);

/* Fills ret_error with name and the formatted message; returns r. */
_printf_(4, 5) int fail_named(sd_bus_error *ret_error, int r, const char *name, const char *format, ...);

/* A bad argument of the caller: -EINVAL with
 * org.freedesktop.DBus.Error.InvalidArgs and the formatted message. */
#define fail_invalid_args(ret_error, ...) \
        fail_named((ret_error), -EINVAL, SD_BUS_ERROR_INVALID_ARGS, __VA_ARGS__)

/* ---- names.c ---- */

/* The object path of an endpoint: "app.jobs" becomes
 * /org/durabus1/endpoint/app/jobs. The caller frees *ret_path. A name that
 * cannot become the path of exactly this endpoint fails with -EINVAL and
 * DURABUS_ERROR_INVALID_NAME. */
int endpoint_path_from_name(const char *name, char **ret_path, sd_bus_error *ret_error);
