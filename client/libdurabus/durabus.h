/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * libdurabus: the C client of durabus, the durable message bus of the
 * session (bus name org.durabus1). It speaks the D-Bus API documented in
 * org.durabus1.Broker.xml and org.durabus1.Endpoint.xml, starts the service
 * through D-Bus activation, and keeps subscriptions receiving, and a token
 * proved, across restarts of the service.
 *
 * Conventions, for every function below:
 * - Functions return 0 (or a count, which is never negative) on success and
 *   a negative errno value on failure.
 * - Out-parameters are named ret_*. They are written on success only and are
 *   left untouched on failure. Pointers returned through them belong to the
 *   caller, who frees them as the function says.
 * - ret_error may be NULL. When it is not, it must point to an unset error
 *   (SD_BUS_ERROR_NULL), and on failure it receives the D-Bus error name and
 *   the human-readable message: the service's own for errors the service
 *   replied, a name of the org.durabus1.Error or org.freedesktop.DBus.Error
 *   family for errors found before any call was made, sd-bus's
 *   System.Error.* names for local system errors. The caller frees it with
 *   sd_bus_error_free().
 * - The errno values of durabus's D-Bus errors are fixed (see below), so a
 *   caller may test either the returned value or the error name.
 * - Synchronous calls block until the service answers (25 s at most, sd-bus's
 *   default); while they wait, other incoming messages are queued and
 *   dispatched by the event loop afterwards, in order.
 * - The library has no global state and starts no threads. One client and
 *   everything made from it are to be used from one thread at a time.
 * - Handlers are only ever called from the event loop the client is attached
 *   to (durabus_client_attach_event()) or from durabus_client_process(),
 *   never from inside a call of this API, except where said.
 *
 * Build with: pkg-config --cflags --libs durabus
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors -------------------------------------------------------------
 * D-Bus error names of the durabus API and the errno values the library
 * returns for them. Standard errors come back as sd-bus maps them, among
 * them org.freedesktop.DBus.Error.LimitsExceeded (payload over the
 * service's limit) as -ENOBUFS, org.freedesktop.DBus.Error.InvalidArgs
 * (bad subscriber name, id or option) as -EINVAL, and
 * org.freedesktop.DBus.Error.AccessDenied (a call without the right it
 * needs, a token that is not accepted) as -EACCES. */

#define DURABUS_ERROR_INVALID_NAME "org.durabus1.Error.InvalidName"             /* -EINVAL */
#define DURABUS_ERROR_NOT_SUBSCRIBED "org.durabus1.Error.NotSubscribed"         /* -ESRCH */
#define DURABUS_ERROR_SUBSCRIBER_BUSY "org.durabus1.Error.SubscriberBusy"       /* -EBUSY */
#define DURABUS_ERROR_STORAGE_FAILED "org.durabus1.Error.StorageFailed"         /* -EIO */
#define DURABUS_ERROR_NO_SUCH_ENDPOINT "org.durabus1.Error.NoSuchEndpoint"      /* -ENOENT */

/* ---- Client -------------------------------------------------------------
 * A client is one connection to the message bus, and, while it runs on
 * sd-event, a direct connection to the service (see
 * durabus_client_set_direct()). It is reference counted; every
 * subscription made from it holds a reference. */

typedef struct DurabusClient DurabusClient;

/*
 * Connects to the session bus (sd_bus_open_user(): $DBUS_SESSION_BUS_ADDRESS,
 * else $XDG_RUNTIME_DIR/bus). The service is not contacted yet; the first
 * call starts it through activation when it does not run. On success *ret is
 * a new client with one reference, which the caller drops with
 * durabus_client_unref(). Returns -errno when the bus cannot be reached.
 */
int durabus_client_new(DurabusClient **ret);

/*
 * The same for the message bus at a D-Bus address such as
 * "unix:path=/run/user/1000/bus". Returns -EINVAL for a NULL address and
 * -errno when the bus cannot be reached.
 */
int durabus_client_new_with_address(const char *address, DurabusClient **ret);

/* Takes a reference; returns c. NULL is passed through. */
DurabusClient *durabus_client_ref(DurabusClient *c);

/*
 * Drops a reference; returns NULL. The last one flushes what is still
 * queued for the bus, closes the connection and detaches it from its event
 * loop. Sends still waiting for their reply then get their handler called
 * with -ECANCELED. NULL is accepted.
 */
DurabusClient *durabus_client_unref(DurabusClient *c);

/* For _cleanup_-style scope guards: unrefs *c. */
void durabus_client_unrefp(DurabusClient **c);

/*
 * Lets an sd-event loop drive the client: the connection is processed
 * whenever it has something to do, at the given priority (typically
 * SD_EVENT_PRIORITY_NORMAL). event NULL means the thread's default loop
 * (sd_event_default()). The client keeps a reference to the loop until it
 * is detached or freed. Returns -EBUSY when it is attached already.
 * As with any sd-bus connection attached to a loop, the connection is closed
 * when the loop exits: calls made after sd_event_loop() returned fail with
 * -ENOTCONN, so unsubscribe or acknowledge from a handler before exiting.
 */
int durabus_client_attach_event(DurabusClient *c, sd_event *event, int64_t priority);

/* Detaches the client from its sd-event loop. Returns 0 also when it was not
 * attached. */
int durabus_client_detach_event(DurabusClient *c);

/*
 * For a foreign main loop (GLib, Qt, ...), instead of sd-event: the file
 * descriptor to watch, for the poll() events durabus_client_get_events()
 * names, until the absolute CLOCK_MONOTONIC time in microseconds that
 * durabus_client_get_timeout() puts in *ret_usec (UINT64_MAX: no timeout;
 * a time in the past or 0: process at once, without waiting). Whenever the
 * descriptor is ready or the time has come, call durabus_client_process()
 * until it returns 0. Ask for the events and the timeout again before each
 * wait: both change as messages are queued and calls are made. The
 * descriptor stays the same for the life of the client.
 *
 * Such a client uses the bus alone, never a direct connection (see
 * durabus_client_set_direct()): the one descriptor is the bus's.
 *
 * durabus_client_get_fd() returns the descriptor, get_events() a mask of
 * POLLIN/POLLOUT, get_timeout() 1 when there is a timeout and 0 when there
 * is none; each returns -ENOTCONN once the connection is closed.
 */
int durabus_client_get_fd(DurabusClient *c);
int durabus_client_get_events(DurabusClient *c);
int durabus_client_get_timeout(DurabusClient *c, uint64_t *ret_usec);

/*
 * Handles one piece of pending work: reads and dispatches one incoming
 * message (calling the handlers it concerns), writes queued output, or
 * times out a call. Returns > 0 when it did something (more may be pending:
 * call it again), 0 when there was nothing to do, and -ENOTCONN or
 * -ECONNRESET once the connection is gone. Not for use on a client attached
 * to an sd-event loop, nor from inside a handler.
 */
int durabus_client_process(DurabusClient *c);

/* Blocks until everything queued for the bus is written. */
int durabus_client_flush(DurabusClient *c);

/*
 * Called once when the connection to the bus is lost (the bus went away or
 * closed it). From then on calls fail with -ENOTCONN and subscriptions
 * receive nothing: make a new client. Nothing of the old one is freed
 * behind the caller's back.
 */
typedef void (*durabus_disconnect_handler_t)(DurabusClient *c, void *userdata);

/* Sets the handler (NULL: none, the default) and its userdata. */
int durabus_client_set_disconnect_handler(DurabusClient *c, durabus_disconnect_handler_t handler, void *userdata);

/*
 * Whether the client may talk to the service over a direct connection
 * (Broker.OpenDirect: a socket to the service, without the bus daemon in
 * between), which saves the bus daemon's copy of every message. The default
 * is true, unless the environment variable DURABUS_NO_DIRECT was set to
 * anything but "" and "0" when the client was made.
 *
 * A direct connection is used only while the client is attached to an
 * sd-event loop (durabus_client_attach_event(); it is attached to the same
 * loop at the same priority), for subscriptions (Subscribe, their Message
 * signals, Ack and Unsubscribe) and for durabus_send_async(); every other
 * call goes over the bus. It is opened over the bus when first needed,
 * once per instance of the service, after the token was proved
 * (durabus_client_authenticate()), and has the rights the bus connection
 * had then. When the instance exits or dies the connection closes, and the
 * subscriptions attached over it attach themselves again as the section on
 * subscriptions says, over a new direct connection. An instance that does
 * not give one (an older service, a caller without any right, its limit of
 * direct connections reached) is used over the bus, as with false. Nothing
 * of this changes what the application sees, beyond speed.
 *
 * Turning it off affects what is attached or sent from then on; what is
 * attached over an open direct connection stays there until the connection
 * closes. Returns -EINVAL for a NULL client.
 * (New in libdurabus 0.3, symbol version DURABUS_0.3.)
 */
int durabus_client_set_direct(DurabusClient *c, bool enabled);

/* ---- Access control -----------------------------------------------------
 * The service trusts the callers of its own user outside any sandbox,
 * unless its configuration says trust-same-user=false. Every other caller
 * holds only the rights the configuration gives it: those of its app id or
 * executable, and those of a token it proves. A call without the right it
 * needs fails with -EACCES and org.freedesktop.DBus.Error.AccessDenied, and
 * an endpoint the caller holds no right on is not listed and has no
 * properties (-EBADR, org.freedesktop.DBus.Error.UnknownObject). */

/*
 * Proves token, the secret of a [Client NAME] group of the service's
 * configuration (token=), to the service (Authenticate), which gives this
 * client's connection the rights of that client; waits for the answer. On
 * success the client keeps a copy of token, which it erases from memory
 * when a later token replaces it or the client is freed, and proves it
 * again by itself to every new instance of the service (after a crash, a
 * kill or an idle exit), before the first call that instance gets: calls,
 * sends and subscriptions go on as before the restart. Rights add up at a
 * running instance; a new one gets the proof of the latest token only.
 *
 * A token that is not accepted fails with -EACCES and
 * org.freedesktop.DBus.Error.AccessDenied, after about half a second (the
 * service's delay against guessing); the client is left as it was, with the
 * token it had before, if any. NULL or "" fails with -EINVAL and
 * org.freedesktop.DBus.Error.InvalidArgs.
 *
 * Should a new instance not accept the token (its configuration changed),
 * each call it refuses fails with that Authenticate's error (for a send
 * answered through its handler and for a subscription attaching itself
 * again, through their handlers), and the next call proves the token again.
 * An asynchronous send that reaches a new instance before the client has
 * dispatched the departure of the old one, which the event loop does
 * first, fails with -EACCES: send it again. A synchronous call in that
 * race proves the token again and is made once more by itself.
 */
int durabus_client_authenticate(DurabusClient *c, const char *token, sd_bus_error *ret_error);

/* ---- Endpoints ----------------------------------------------------------
 * An endpoint is a named, durable topic: 1 to 200 characters, elements
 * separated by single dots, each [A-Za-z_][A-Za-z0-9_]*, such as "chat" or
 * "org.gnome.Calendar.reminders". Every call below that names an endpoint
 * creates it when it does not exist yet, except durabus_delete_endpoint()
 * and durabus_get_stored().
 * An invalid name fails with -EINVAL and DURABUS_ERROR_INVALID_NAME, either
 * from the service or, when the name cannot even be put into an object
 * path, from the library, with a message of the same kind. */

/* Creates the endpoint unless it exists (OpenEndpoint). */
int durabus_open_endpoint(DurabusClient *c, const char *name, sd_bus_error *ret_error);

/*
 * The names of every endpoint, sorted (ListEndpoints). *ret_names is a
 * NULL-terminated array, which the caller frees with durabus_strv_free().
 */
int durabus_list_endpoints(DurabusClient *c, char ***ret_names, sd_bus_error *ret_error);

/*
 * Deletes the endpoint with its messages and subscriptions (DeleteEndpoint).
 * Fails with -ENOENT and DURABUS_ERROR_NO_SUCH_ENDPOINT when there is none
 * of that name.
 */
int durabus_delete_endpoint(DurabusClient *c, const char *name, sd_bus_error *ret_error);

/* Deletes every stored message of the endpoint (ClearAll); the number
 * deleted goes to *ret_removed unless it is NULL. */
int durabus_clear(DurabusClient *c, const char *endpoint, uint64_t *ret_removed, sd_bus_error *ret_error);

/*
 * How many messages the endpoint stores and their size in bytes (payloads
 * and ids), read together (the StoredMessages and StoredBytes properties).
 * Either pointer may be NULL. Reading properties creates nothing: for an
 * endpoint that does not exist the service answers
 * org.freedesktop.DBus.Error.UnknownObject (-EBADR).
 */
int durabus_get_stored(DurabusClient *c, const char *endpoint, uint64_t *ret_messages, uint64_t *ret_bytes,
                       sd_bus_error *ret_error);

/* Frees a NULL-terminated array of strings and the strings; returns NULL. */
char **durabus_strv_free(char **l);

/* ---- Sending ------------------------------------------------------------
 * Send replies only once the message is on stable storage: a successful
 * send survives a crash of the service. */

/*
 * Stores payload (UTF-8 text, at most the service's limit, 1 MiB by default)
 * in the endpoint and waits for it to be synced. id NULL or "" lets the
 * service make up a unique id; when the endpoint still stores a message
 * with the given id, nothing new is stored and that message's id and seq
 * are returned (a send can be repeated safely). The id goes to *ret_id, a
 * string the caller frees with free(), and the sequence number to *ret_seq;
 * either may be NULL. A payload over the limit fails with -ENOBUFS and
 * org.freedesktop.DBus.Error.LimitsExceeded, a storage failure with -EIO
 * and DURABUS_ERROR_STORAGE_FAILED (nothing is stored then).
 */
int durabus_send(DurabusClient *c, const char *endpoint, const char *id, const char *payload, char **ret_id,
                 uint64_t *ret_seq, sd_bus_error *ret_error);

/*
 * Called once for each durabus_send_async(): error is 0 on success, with id
 * and seq of the stored message, or a negative errno, with bus_error naming
 * the failure and id NULL. Strings are valid during the call only. c is the
 * client, or NULL when the call was canceled (-ECANCELED) because the
 * client was freed first: then only userdata is left to free.
 */
typedef void (*durabus_send_handler_t)(DurabusClient *c, int error, const sd_bus_error *bus_error, const char *id,
                                       uint64_t seq, void *userdata);

/*
 * Queues a send and returns at once; handler gets the answer from the event
 * loop, exactly once. Sends from one client are stored in the order they
 * were queued. Returns a negative errno, and calls no handler, when the send
 * could not even be queued (invalid endpoint name, connection closed, out of
 * memory).
 */
int durabus_send_async(DurabusClient *c, const char *endpoint, const char *id, const char *payload,
                       durabus_send_handler_t handler, void *userdata);

/* ---- Subscriptions ------------------------------------------------------
 * A subscription receives the messages of one endpoint through a handler:
 * first, in sequence order, every stored message it has not acknowledged
 * (the replay), then each new message as it is sent. A durable subscription
 * (a name of 1 to 200 characters of [A-Za-z0-9_.-]) keeps its messages
 * stored until it acknowledges them, across restarts of the application and
 * of the service; an ephemeral one (name NULL or "") gets live messages only
 * and takes no acknowledgements.
 *
 * Delivery is at least once. When the service goes away (killed, crashed,
 * restarted, replaced), every subscription attaches itself again on its own,
 * which starts the service again through activation; the service then
 * replays what was not acknowledged, and the handler keeps receiving: the
 * messages that had been delivered before come again with delivery_count
 * above 1 and redelivered set, in sequence order, followed by what was sent
 * in the meantime. Nothing is lost as long as the handler acknowledges only
 * what it has dealt with. Messages reach the handler only from the instance
 * of the service that answered the subscription's latest Subscribe. */

typedef struct DurabusSubscription DurabusSubscription;

/* One delivered message, valid during the handler call only (copy what you
 * keep). Fields may be added at the end in later versions. */
typedef struct DurabusMessage {
        const char *endpoint;           /* the endpoint's name */
        const char *subscriber;         /* the subscription's name, "" when ephemeral */
        const char *id;
        uint64_t seq;                   /* grows strictly per endpoint */
        const char *payload;
        uint64_t timestamp;             /* microseconds since the epoch, taken at send */
        uint32_t delivery_count;        /* 1 on the first delivery to this subscription */
        bool redelivered;               /* delivery_count > 1: it may have been handled already */
} DurabusMessage;

/* Options of durabus_subscribe(); pass NULL for all the defaults. */
typedef struct DurabusSubscribeOptions {
        /* When the durable subscription is created by this call: false (the
         * default) delivers every message the endpoint stores, true only
         * those sent from now on. Ignored when it exists already. */
        bool start_new;
        /* At most this many delivered but unacknowledged messages are in
         * flight at once; more follow as acknowledgements come. 0: the
         * service's default (1000); at most 65536. */
        uint32_t window;
} DurabusSubscribeOptions;

/* Called for each delivered message, in order. The handler may call any
 * function of this API, including acknowledging the message and dropping
 * the subscription. */
typedef void (*durabus_message_handler_t)(DurabusSubscription *s, const DurabusMessage *m, void *userdata);

/*
 * Attaches the subscription named subscriber of the endpoint to this client
 * (Subscribe), creating it on first use, and waits for the service's answer.
 * The replay starts right after; handler receives it from the event loop.
 * On success *ret is a new subscription with one reference, which the
 * caller drops with durabus_subscription_unref(); it holds a reference to
 * the client. Errors: -EBUSY and DURABUS_ERROR_SUBSCRIBER_BUSY when another
 * connection, or another subscription object of this client, has it
 * attached; -EINVAL with org.freedesktop.DBus.Error.InvalidArgs for a bad
 * subscriber name or option; -EINVAL and DURABUS_ERROR_INVALID_NAME for a
 * bad endpoint name.
 */
int durabus_subscribe(DurabusClient *c, const char *endpoint, const char *subscriber,
                      const DurabusSubscribeOptions *options, durabus_message_handler_t handler, void *userdata,
                      DurabusSubscription **ret, sd_bus_error *ret_error);

/*
 * Acknowledges the message with this id (Ack) and waits until that is on
 * stable storage: it is never delivered to this subscription again. Returns
 * 1 when it was acknowledged now, 0 when it had been before or the endpoint
 * does not store it. Fails with -ESRCH and DURABUS_ERROR_NOT_SUBSCRIBED when
 * the subscription is not attached: after durabus_subscription_unsubscribe()
 * (the library says so without asking the service), or when the service
 * restarted since the message was delivered and the subscription has not
 * attached itself again yet (the new instance says so, or the library when
 * the subscription was attached over a direct connection that closed since,
 * see durabus_client_set_direct()); the message then
 * comes again, redelivered, and is acknowledged from there. An ephemeral
 * subscription takes no acknowledgements (-EINVAL,
 * org.freedesktop.DBus.Error.InvalidArgs).
 */
int durabus_subscription_ack(DurabusSubscription *s, const char *id, sd_bus_error *ret_error);

/*
 * The same for the NULL-terminated array ids in one call: the number of
 * messages acknowledged now goes to *ret_acked unless it is NULL.
 */
int durabus_subscription_ack_many(DurabusSubscription *s, const char *const *ids, uint32_t *ret_acked,
                                  sd_bus_error *ret_error);

/*
 * Detaches the subscription (Unsubscribe): the handler is called no more and
 * the subscription no longer attaches itself again. A durable subscription
 * stays and keeps its messages for its next subscriber, unless forget is
 * true: then it is deleted, and messages no longer wait for it. The object
 * stays valid until unreffed; acknowledging or unsubscribing through it
 * fails from now on, and a new subscription of the same name may be made.
 * Fails with -ESRCH and DURABUS_ERROR_NOT_SUBSCRIBED when it is not attached
 * (detached already, or the service restarted and the subscription has not
 * attached itself again yet); it is then left as it was.
 */
int durabus_subscription_unsubscribe(DurabusSubscription *s, bool forget, sd_bus_error *ret_error);

/*
 * Called when the subscription could not attach itself again after the
 * service went away, with the error of the last attempt (for example
 * org.freedesktop.DBus.Error.Spawn.ChildExited when the service failed to
 * start, or DURABUS_ERROR_SUBSCRIBER_BUSY). The subscription keeps trying
 * whenever the service appears on the bus again, and the message handler
 * continues where it left off once an attempt succeeds. Also called, with
 * -EBADMSG, for a Message signal that could not be read (the message stays
 * unacknowledged and comes again on the next attach).
 */
typedef void (*durabus_subscription_error_handler_t)(DurabusSubscription *s, int error,
                                                     const sd_bus_error *bus_error, void *userdata);

/* Sets the error handler (NULL: none, the default) and its userdata. */
int durabus_subscription_set_error_handler(DurabusSubscription *s, durabus_subscription_error_handler_t handler,
                                           void *userdata);

/* The endpoint and subscriber name ("" when ephemeral), owned by s. */
const char *durabus_subscription_get_endpoint(DurabusSubscription *s);
const char *durabus_subscription_get_subscriber(DurabusSubscription *s);

/* The client the subscription belongs to; no reference is taken. */
DurabusClient *durabus_subscription_get_client(DurabusSubscription *s);

/* Takes a reference; returns s. NULL is passed through. */
DurabusSubscription *durabus_subscription_ref(DurabusSubscription *s);

/*
 * Drops a reference; returns NULL. The last one of a subscription that is
 * still attached detaches it, without waiting for the service's answer and
 * without forgetting it, and calls its handlers no more. NULL is accepted.
 */
DurabusSubscription *durabus_subscription_unref(DurabusSubscription *s);

/* For _cleanup_-style scope guards: unrefs *s. */
void durabus_subscription_unrefp(DurabusSubscription **s);

#ifdef __cplusplus
}
#endif
