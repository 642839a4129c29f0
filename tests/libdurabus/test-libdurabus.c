/* SPDX-License-Identifier: MIT */

/*
 * Integration tests of libdurabus, the C client library: every call of its
 * API against the real service on a private dbus-daemon (fixture.c), the
 * handler receiving the replay and then live messages in order, errors
 * surfaced with their D-Bus names and errno values, subscriptions that
 * attach themselves again, with replay, after the service was killed and
 * started again by activation, and a token proved again to each new
 * instance of a service that trusts nobody.
 *
 * The library is driven the two ways an application drives it: attached to
 * an sd-event loop that the test runs, or through its descriptor and timeout
 * from a GLib main loop (a GSource of our own, as a GLib or Qt application
 * would write). Nothing sleeps: a test runs its loop until what it awaits
 * happened, and fails after FIXTURE_TIMEOUT_MS. To prove that nothing more
 * arrived, it makes a call of the library on the same connection, after
 * whose reply every signal the service sent before has been queued, and
 * dispatches what is queued.
 */

#include "durabus.h"
#include "fixture.h"

#include <poll.h>
#include <signal.h>
#include <glib/gstdio.h>
#include <unistd.h>

#define ENDPOINT "app.jobs"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DurabusClient, durabus_client_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DurabusSubscription, durabus_subscription_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_event, sd_event_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

/* A NULL-terminated array from the library, freed with durabus_strv_free(). */
typedef char **DurabusStrv;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(DurabusStrv, durabus_strv_free, NULL)

typedef enum Integration {
        INTEGRATION_SD_EVENT,
        INTEGRATION_GLIB,
} Integration;

/* The data of a test case; fixture_setup() reads the FixtureOptions that
 * come first. */
typedef struct TestCase {
        FixtureOptions options;
        Integration integration;
} TestCase;

static const TestCase with_sd_event = { .integration = INTEGRATION_SD_EVENT };
static const TestCase with_glib = { .integration = INTEGRATION_GLIB };
static const TestCase small_payloads = {
        .options = { .service_args = "--max-payload 64" },
        .integration = INTEGRATION_SD_EVENT,
};

/* ---- A GLib source for the client ----------------------------------------
 * What a GLib application writes to run libdurabus in its main loop: poll
 * the client's descriptor for the events it asks for, wake up at its
 * timeout, and process until it has nothing left to do. */

typedef struct ClientSource {
        GSource source;
        DurabusClient *client;
        gpointer fd_tag;
} ClientSource;

static gboolean client_source_due(ClientSource *cs, gint *ret_timeout_ms) {
        uint64_t until;
        gint64 now;

        if (ret_timeout_ms)
                *ret_timeout_ms = -1;
        /* No timeout (0) or a closed connection (< 0): wait for the
         * descriptor alone. */
        if (durabus_client_get_timeout(cs->client, &until) <= 0)
                return FALSE;

        now = g_get_monotonic_time();
        if (until <= (uint64_t) now)
                return TRUE;
        if (ret_timeout_ms)
                *ret_timeout_ms = (gint) MIN((until - (uint64_t) now + 999) / 1000, (uint64_t) G_MAXINT);
        return FALSE;
}

static gboolean client_source_prepare(GSource *source, gint *timeout) {
        ClientSource *cs = (ClientSource *) source;
        int events = durabus_client_get_events(cs->client);
        GIOCondition condition = 0;

        if (events > 0) {
                if (events & POLLIN)
                        condition |= G_IO_IN;
                if (events & POLLOUT)
                        condition |= G_IO_OUT;
        }
        g_source_modify_unix_fd(source, cs->fd_tag, condition);

        return client_source_due(cs, timeout);
}

static gboolean client_source_check(GSource *source) {
        ClientSource *cs = (ClientSource *) source;

        return g_source_query_unix_fd(source, cs->fd_tag) != 0 || client_source_due(cs, NULL);
}

static gboolean client_source_dispatch(GSource *source, GSourceFunc callback, gpointer data) {
        ClientSource *cs = (ClientSource *) source;
        int r;

        while ((r = durabus_client_process(cs->client)) > 0)
                ;

        /* The connection is gone: the client reported it, nothing more to
         * poll. */
        return r < 0 ? G_SOURCE_REMOVE : G_SOURCE_CONTINUE;
}

static GSourceFuncs client_source_funcs = {
        .prepare = client_source_prepare,
        .check = client_source_check,
        .dispatch = client_source_dispatch,
};

static GSource *client_source_new(DurabusClient *client) {
        ClientSource *cs = (ClientSource *) g_source_new(&client_source_funcs, sizeof(ClientSource));
        int fd = durabus_client_get_fd(client);

        g_assert_cmpint(fd, >=, 0);
        cs->client = client;
        cs->fd_tag = g_source_add_unix_fd(&cs->source, fd, G_IO_IN);
        g_source_set_name(&cs->source, "libdurabus client");
        return &cs->source;
}

/* ---- Driving the library ------------------------------------------------ */

/* A client of the library and the loop that runs it. */
typedef struct Driver {
        Integration integration;
        DurabusClient *client;
        sd_event *event;        /* INTEGRATION_SD_EVENT */
        GSource *source;        /* INTEGRATION_GLIB */
} Driver;

/* A client of the bus at address, run the way the test case says. */
static void driver_start_at(Driver *d, const char *address, gconstpointer data) {
        const TestCase *tc = data;
        int r;

        d->integration = tc ? tc->integration : INTEGRATION_SD_EVENT;
        r = durabus_client_new_with_address(address, &d->client);
        g_assert_cmpint(r, ==, 0);

        if (d->integration == INTEGRATION_SD_EVENT) {
                g_assert_cmpint(sd_event_new(&d->event), ==, 0);
                g_assert_cmpint(durabus_client_attach_event(d->client, d->event, SD_EVENT_PRIORITY_NORMAL), ==, 0);
        } else {
                d->source = client_source_new(d->client);
                g_source_attach(d->source, NULL);
        }
}

/* A client of the fixture's private bus. */
static void driver_start(Driver *d, Fixture *f, gconstpointer data) {
        driver_start_at(d, g_test_dbus_get_bus_address(f->bus), data);
}

static void driver_stop(Driver *d) {
        if (d->source) {
                g_source_destroy(d->source);
                g_clear_pointer(&d->source, g_source_unref);
        }
        d->client = durabus_client_unref(d->client);
        d->event = sd_event_unref(d->event);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Driver, driver_stop)

static gboolean timed_out(gpointer data) {
        g_error("Timed out after %d ms waiting for %s", FIXTURE_TIMEOUT_MS, (const char *) data);
        return G_SOURCE_REMOVE;
}

/* Runs the driver's loop until done(data) holds; fails the test after
 * FIXTURE_TIMEOUT_MS. */
static void driver_wait(Driver *d, gboolean (*done)(gconstpointer), gconstpointer data, const char *what) {
        if (d->integration == INTEGRATION_GLIB) {
                guint timeout = g_timeout_add(FIXTURE_TIMEOUT_MS, timed_out, (gpointer) what);

                while (!done(data))
                        g_main_context_iteration(NULL, TRUE);
                g_source_remove(timeout);
                return;
        }

        uint64_t deadline = (uint64_t) g_get_monotonic_time() + (uint64_t) FIXTURE_TIMEOUT_MS * 1000;

        while (!done(data)) {
                uint64_t now = (uint64_t) g_get_monotonic_time();

                if (now >= deadline)
                        g_error("Timed out after %d ms waiting for %s", FIXTURE_TIMEOUT_MS, what);
                g_assert_cmpint(sd_event_run(d->event, deadline - now), >=, 0);
        }
}

/* Dispatches everything the client has queued, without waiting. */
static void driver_dispatch_pending(Driver *d) {
        if (d->integration == INTEGRATION_GLIB) {
                while (g_main_context_iteration(NULL, FALSE))
                        ;
                return;
        }

        while (sd_event_run(d->event, 0) > 0)
                ;
}

/* A barrier instead of a sleep: a call to the service on the client's own
 * connection, then dispatching what is queued. The bus keeps the order of
 * one sender's messages, so afterwards every signal the service sent before
 * it answered has reached its handler. */
static void driver_sync(Driver *d) {
        g_auto(DurabusStrv) names = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;

        g_assert_cmpint(durabus_list_endpoints(d->client, &names, &error), ==, 0);
        driver_dispatch_pending(d);
}

static gboolean flag_is_set(gconstpointer data) {
        return *(const gboolean *) data;
}

/* ---- Received messages -------------------------------------------------- */

/* A copy of one DurabusMessage the handler got. */
typedef struct Received {
        char *endpoint;
        char *subscriber;
        char *id;
        guint64 seq;
        char *payload;
        guint64 timestamp;
        guint32 delivery_count;
        gboolean redelivered;
} Received;

static void received_free(gpointer p) {
        Received *m = p;

        g_free(m->endpoint);
        g_free(m->subscriber);
        g_free(m->id);
        g_free(m->payload);
        g_free(m);
}

/* What one subscription's handler saw. */
typedef struct Receiver {
        GPtrArray *messages;            /* Received * */
        gboolean ack;                   /* acknowledge each from the handler */
        guint expected;                 /* for receiver_has_all() */
        guint errors;                   /* calls of the error handler */
        int last_error;
        char *last_error_name;
        char *last_error_message;
} Receiver;

static Receiver receiver_make(void) {
        return (Receiver) { .messages = g_ptr_array_new_with_free_func(received_free) };
}

static void receiver_clear(Receiver *r) {
        g_clear_pointer(&r->messages, g_ptr_array_unref);
        g_clear_pointer(&r->last_error_name, g_free);
        g_clear_pointer(&r->last_error_message, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Receiver, receiver_clear)

static void on_message(DurabusSubscription *s, const DurabusMessage *m, void *userdata) {
        Receiver *receiver = userdata;
        Received *copy = g_new0(Received, 1);

        *copy = (Received) {
                .endpoint = g_strdup(m->endpoint),
                .subscriber = g_strdup(m->subscriber),
                .id = g_strdup(m->id),
                .seq = m->seq,
                .payload = g_strdup(m->payload),
                .timestamp = m->timestamp,
                .delivery_count = m->delivery_count,
                .redelivered = m->redelivered,
        };
        g_ptr_array_add(receiver->messages, copy);

        if (receiver->ack) {
                g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;

                g_assert_cmpint(durabus_subscription_ack(s, m->id, &error), ==, 1);
        }
}

static void on_subscription_error(DurabusSubscription *s, int error, const sd_bus_error *bus_error, void *userdata) {
        Receiver *receiver = userdata;

        g_test_message("Subscription error: %s: %s", bus_error ? bus_error->name : "(none)",
                       bus_error ? bus_error->message : g_strerror(-error));
        receiver->errors++;
        receiver->last_error = error;
        g_free(receiver->last_error_name);
        receiver->last_error_name = g_strdup(bus_error ? bus_error->name : NULL);
        g_free(receiver->last_error_message);
        receiver->last_error_message = g_strdup(bus_error ? bus_error->message : NULL);
}

static gboolean receiver_has_all(gconstpointer data) {
        const Receiver *r = data;
        return r->messages->len >= r->expected;
}

/* Runs the loop until the receiver holds at least n messages. */
static void receiver_wait(Driver *d, Receiver *r, guint n) {
        r->expected = n;
        driver_wait(d, receiver_has_all, r, "messages to reach the handler");
}

static const Received *receiver_get(Receiver *r, guint i) {
        g_assert_cmpuint(i, <, r->messages->len);
        return g_ptr_array_index(r->messages, i);
}

/* Checks received message i against numbered message number, stored with
 * seq; a redelivered one has a delivery count above 1, any other exactly 1. */
static void assert_received(Receiver *r, guint i, const char *subscriber, guint number, guint64 seq,
                            gboolean redelivered) {
        const Received *m = receiver_get(r, i);
        g_autofree char *id = fixture_message_id(number);
        g_autofree char *payload = fixture_message_payload(number);

        g_assert_cmpstr(m->endpoint, ==, ENDPOINT);
        g_assert_cmpstr(m->subscriber, ==, subscriber);
        g_assert_cmpstr(m->id, ==, id);
        g_assert_cmpuint(m->seq, ==, seq);
        g_assert_cmpstr(m->payload, ==, payload);
        g_assert_cmpint(m->redelivered, ==, redelivered);
        if (redelivered)
                g_assert_cmpuint(m->delivery_count, >=, 2);
        else
                g_assert_cmpuint(m->delivery_count, ==, 1);
}

/* ---- Helpers over the library ------------------------------------------ */

/* Sends numbered message number through the library; returns its seq. */
static guint64 send_numbered(Driver *d, guint number) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *id = fixture_message_id(number);
        g_autofree char *payload = fixture_message_payload(number);
        g_autofree char *stored_id = NULL;
        uint64_t seq = 0;

        g_assert_cmpint(durabus_send(d->client, ENDPOINT, id, payload, &stored_id, &seq, &error), ==, 0);
        g_assert_false(sd_bus_error_is_set(&error));
        g_assert_cmpstr(stored_id, ==, id);
        g_assert_cmpuint(seq, >, 0);
        return seq;
}

/* Sends numbered messages [first, first + n); their seqs go to seqs[first...]. */
static void send_range(Driver *d, guint first, guint n, guint64 *seqs) {
        for (guint i = first; i < first + n; i++)
                seqs[i] = send_numbered(d, i);
}

static DurabusSubscription *subscribe(Driver *d, const char *subscriber, const DurabusSubscribeOptions *options,
                                      Receiver *receiver) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        DurabusSubscription *s = NULL;
        int r;

        r = durabus_subscribe(d->client, ENDPOINT, subscriber, options, on_message, receiver, &s, &error);
        if (r < 0)
                g_error("durabus_subscribe() failed: %s: %s", error.name, error.message);
        g_assert_nonnull(s);
        g_assert_cmpint(durabus_subscription_set_error_handler(s, on_subscription_error, receiver), ==, 0);
        return s;
}

static guint64 stored_messages(Driver *d) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        uint64_t messages = G_MAXUINT64;

        g_assert_cmpint(durabus_get_stored(d->client, ENDPOINT, &messages, NULL, &error), ==, 0);
        return messages;
}

/* Fails unless a call of the library returned expected_r and filled error
 * with name and a message that names the bad value, needle (any message
 * when needle is NULL). The failure names the caller's line. */
#define assert_failed(r, error, expected_r, name, needle) \
        assert_failed_at(__FILE__, __LINE__, G_STRFUNC, (r), (error), (expected_r), (name), (needle))

static void assert_failed_at(const char *file, int line, const char *func, int r, const sd_bus_error *error,
                             int expected_r, const char *name, const char *needle) {
        g_test_message("Error %d: %s: %s", r, error->name, error->message);
        if (r != expected_r)
                g_assertion_message_cmpnum(G_LOG_DOMAIN, file, line, func, "returned errno", r, "==", expected_r,
                                           'i');
        else if (g_strcmp0(error->name, name) != 0)
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "D-Bus error name", error->name, "==",
                                           name);
        else if (!error->message || !*error->message)
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "error message", error->message, "!=",
                                           "");
        else if (needle && !strstr(error->message, needle))
                g_assertion_message_cmpstr(G_LOG_DOMAIN, file, line, func, "error message names the bad value",
                                           error->message, "contains", needle);
}

/* What the handler of one durabus_send_async() got. */
typedef struct Sent {
        gboolean called;
        DurabusClient *client;
        int error;
        char *error_name;
        char *error_message;
        char *id;
        guint64 seq;
} Sent;

static void on_sent(DurabusClient *c, int error, const sd_bus_error *bus_error, const char *id, uint64_t seq,
                    void *userdata) {
        Sent *sent = userdata;

        g_assert_false(sent->called);
        sent->called = TRUE;
        sent->client = c;
        sent->error = error;
        sent->error_name = g_strdup(bus_error ? bus_error->name : NULL);
        sent->error_message = g_strdup(bus_error ? bus_error->message : NULL);
        sent->id = g_strdup(id);
        sent->seq = seq;
}

static void sent_clear(Sent *sent, guint n) {
        for (guint i = 0; i < n; i++) {
                g_free(sent[i].error_name);
                g_free(sent[i].error_message);
                g_free(sent[i].id);
        }
}

typedef struct SentWait {
        const Sent *sent;
        guint n;
} SentWait;

/* ---- The service -------------------------------------------------------- */

/* The unique name of the service's connection; the service must run. */
static char *service_unique_name(Fixture *f) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        char *owner;

        reply = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetNameOwner", g_variant_new("(s)", DURABUS_NAME),
                                            G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL,
                                            &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(s)", &owner);
        return owner;
}

/*
 * Sends sig to the service and waits until its process is gone and the bus
 * has dropped its connection. Unlike fixture_kill_service(), this waits for
 * the instance's unique name, which nobody can own again, rather than for
 * org.durabus1 to have no owner: a library running in the GLib main loop
 * that the wait iterates may start a new instance at once.
 */
static void stop_service(Fixture *f, int sig) {
        g_autofree char *unique = service_unique_name(f);
        pid_t pid = fixture_service_pid(f);

        g_assert_cmpint(pid, >, 0);
        g_assert_cmpint(kill(pid, sig), ==, 0);
        fixture_wait_for_name_to_vanish(f, unique);
        fixture_wait_for_process_gone(pid);
}

/* ---- The client ---------------------------------------------------------- */

static void test_client_session_bus(Fixture *f, gconstpointer data) {
        g_autoptr(DurabusClient) client = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_auto(DurabusStrv) names = NULL;

        g_test_summary("durabus_client_new() connects to the session bus of $DBUS_SESSION_BUS_ADDRESS (here the "
                       "private bus), and its first call starts the service by activation.");

        g_assert_cmpint(fixture_service_pid(f), ==, 0);
        g_assert_cmpint(durabus_client_new(&client), ==, 0);
        g_assert_cmpint(durabus_open_endpoint(client, ENDPOINT, &error), ==, 0);
        g_assert_cmpint(fixture_service_pid(f), >, 0);

        g_assert_cmpint(durabus_list_endpoints(client, &names, &error), ==, 0);
        g_assert_cmpuint(g_strv_length(names), ==, 1);
        g_assert_cmpstr(names[0], ==, ENDPOINT);
}

static void test_client_bad_arguments(void) {
        DurabusClient *client = (DurabusClient *) &client;

        g_test_summary("Constructors refuse a missing address or result pointer with -EINVAL and leave the "
                       "out-parameter untouched.");

        g_assert_cmpint(durabus_client_new_with_address(NULL, &client), ==, -EINVAL);
        g_assert_true(client == (DurabusClient *) &client);
        g_assert_cmpint(durabus_client_new(NULL), ==, -EINVAL);
        g_assert_null(durabus_client_unref(NULL));
        g_assert_null(durabus_subscription_unref(NULL));
}

static void test_client_foreign_loop_interface(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        Sent sent = { 0 };
        uint64_t until = 0;

        g_test_summary("For a foreign main loop the client offers a descriptor, poll events and an absolute "
                       "CLOCK_MONOTONIC timeout: none while idle, the reply deadline while a call waits, and "
                       "processing answers the call.");

        driver_start(&d, f, &with_glib);
        g_assert_cmpint(durabus_client_get_fd(d.client), >=, 0);
        g_assert_cmpint(durabus_client_get_events(d.client) & ~(POLLIN | POLLOUT), ==, 0);

        /* Let the connection settle (Hello and its reply). */
        driver_sync(&d);
        g_assert_cmpint(durabus_client_get_timeout(d.client, &until), ==, 0);
        g_assert_cmpuint(until, ==, UINT64_MAX);
        g_assert_cmpint(durabus_client_get_events(d.client), ==, POLLIN);

        /* A call on its way has a deadline, in the future; the loop's
         * dispatching brings the answer and the deadline goes. */
        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", on_sent, &sent), ==, 0);
        g_assert_cmpint(durabus_client_get_timeout(d.client, &until), ==, 1);
        g_assert_cmpuint(until, >, (guint64) g_get_monotonic_time());
        g_assert_cmpuint(until, <, UINT64_MAX);
        driver_wait(&d, flag_is_set, &sent.called, "the handler of the send");
        g_assert_cmpint(sent.error, ==, 0);
        g_assert_cmpint(durabus_client_get_timeout(d.client, &until), ==, 0);
        sent_clear(&sent, 1);
}

static void on_disconnected(DurabusClient *c, void *userdata) {
        *(gboolean *) userdata = TRUE;
}

static void test_client_disconnect(gconstpointer data) {
        g_autoptr(GTestDBus) bus = g_test_dbus_new(G_TEST_DBUS_NONE);
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        gboolean disconnected = FALSE;
        uint64_t until = 0;

        g_test_summary("When the bus goes away, the disconnect handler is called once, from the loop, and "
                       "calls fail with -ENOTCONN instead of crashing.");

        /* A bus of this test's own, not the fixture's: stopping it is the
         * point. */
        g_test_dbus_up(bus);
        driver_start_at(&d, g_test_dbus_get_bus_address(bus), data);
        g_assert_cmpint(durabus_client_set_disconnect_handler(d.client, on_disconnected, &disconnected), ==, 0);
        /* Up and running (authenticated, Hello answered) before the bus
         * goes. */
        g_assert_cmpint(durabus_client_flush(d.client), ==, 0);

        g_test_dbus_down(bus);
        driver_wait(&d, flag_is_set, &disconnected, "the disconnect handler");

        assert_failed(durabus_open_endpoint(d.client, ENDPOINT, &error), &error, -ENOTCONN,
                      "System.Error.ENOTCONN", NULL);
        g_assert_cmpint(durabus_client_get_fd(d.client), ==, -ENOTCONN);
        g_assert_cmpint(durabus_client_get_events(d.client), ==, -ENOTCONN);
        g_assert_cmpint(durabus_client_get_timeout(d.client, &until), ==, -ENOTCONN);
        g_assert_cmpint(durabus_client_process(d.client), <, 0);
}

static void test_client_references_and_loops(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        DurabusSubscription *s;
        guint64 seqs[2];

        g_test_summary("References keep the client and a subscription alive until the last unref (also through "
                       "the unrefp cleanup helpers); a client is attached to one sd-event loop at a time, and "
                       "moved to another one, here the thread's default loop, its subscription keeps "
                       "receiving.");

        driver_start(&d, f, data);
        g_assert_true(durabus_client_ref(d.client) == d.client);
        {
                __attribute__((cleanup(durabus_client_unrefp), unused)) DurabusClient *extra = d.client;
        }
        g_assert_cmpint(durabus_client_attach_event(d.client, d.event, SD_EVENT_PRIORITY_NORMAL), ==, -EBUSY);

        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        g_assert_true(durabus_subscription_ref(s) == s);
        g_assert_null(durabus_subscription_unref(s));
        receiver_wait(&d, &receiver, 1);

        g_assert_cmpint(durabus_client_detach_event(d.client), ==, 0);
        d.event = sd_event_unref(d.event);
        g_assert_cmpint(durabus_client_attach_event(d.client, NULL, SD_EVENT_PRIORITY_NORMAL), ==, 0);
        g_assert_cmpint(sd_event_default(&d.event), >=, 0);

        send_range(&d, 1, 1, seqs);
        receiver_wait(&d, &receiver, 2);
        assert_received(&receiver, 1, "reader", 1, seqs[1], FALSE);
        {
                __attribute__((cleanup(durabus_subscription_unrefp), unused)) DurabusSubscription *last = s;
        }
}

/* ---- Endpoints ----------------------------------------------------------- */

static void test_endpoints_open_list_delete(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_auto(DurabusStrv) names = NULL, after = NULL;
        char **untouched = (char **) &names;

        g_test_summary("durabus_open_endpoint() creates endpoints idempotently, durabus_list_endpoints() lists "
                       "them sorted, durabus_delete_endpoint() removes one, and deleting it again fails with "
                       "NoSuchEndpoint and -ENOENT.");

        driver_start(&d, f, data);
        g_assert_cmpint(durabus_open_endpoint(d.client, "zeta", &error), ==, 0);
        g_assert_cmpint(durabus_open_endpoint(d.client, "alpha.beta", &error), ==, 0);
        g_assert_cmpint(durabus_open_endpoint(d.client, "zeta", &error), ==, 0);

        g_assert_cmpint(durabus_list_endpoints(d.client, &names, &error), ==, 0);
        g_assert_cmpuint(g_strv_length(names), ==, 2);
        g_assert_cmpstr(names[0], ==, "alpha.beta");
        g_assert_cmpstr(names[1], ==, "zeta");

        g_assert_cmpint(durabus_delete_endpoint(d.client, "zeta", &error), ==, 0);
        g_assert_cmpint(durabus_list_endpoints(d.client, &after, &error), ==, 0);
        g_assert_cmpuint(g_strv_length(after), ==, 1);
        g_assert_cmpstr(after[0], ==, "alpha.beta");

        assert_failed(durabus_delete_endpoint(d.client, "zeta", &error), &error, -ENOENT,
                      DURABUS_ERROR_NO_SUCH_ENDPOINT, "zeta");
        sd_bus_error_free(&error);

        /* Out-parameters stay untouched on failure. */
        assert_failed(durabus_list_endpoints(NULL, &untouched, &error), &error, -EINVAL, SD_BUS_ERROR_INVALID_ARGS,
                      NULL);
        g_assert_true(untouched == (char **) &names);
}

static void test_endpoints_clear_and_stored(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        uint64_t messages = 0, bytes = 0, removed = 0;
        guint64 seqs[3];

        g_test_summary("durabus_get_stored() reads StoredMessages and StoredBytes together, as the properties "
                       "show them; durabus_clear() deletes every stored message and says how many.");

        driver_start(&d, f, data);
        send_range(&d, 0, 3, seqs);

        g_assert_cmpint(durabus_get_stored(d.client, ENDPOINT, &messages, &bytes, &error), ==, 0);
        g_assert_cmpuint(messages, ==, 3);
        g_assert_cmpuint(bytes, ==, fixture_endpoint_u64_property(f->conn, ENDPOINT, "StoredBytes"));
        g_assert_cmpuint(bytes, >, 0);

        g_assert_cmpint(durabus_clear(d.client, ENDPOINT, &removed, &error), ==, 0);
        g_assert_cmpuint(removed, ==, 3);
        g_assert_cmpint(durabus_get_stored(d.client, ENDPOINT, &messages, &bytes, &error), ==, 0);
        g_assert_cmpuint(messages, ==, 0);
        g_assert_cmpuint(bytes, ==, 0);
        g_assert_cmpint(durabus_clear(d.client, ENDPOINT, NULL, &error), ==, 0);
}

/* ---- Sending ------------------------------------------------------------- */

static void test_send_sync(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *generated = NULL, *again = NULL;
        uint64_t seq1 = 0, seq2 = 0, seq3 = 0;

        g_test_summary("durabus_send() stores a message and returns its id and seq: a generated id when none is "
                       "given, the stored id and seq again when the id is still stored (nothing new stored), "
                       "and seqs that grow.");

        driver_start(&d, f, data);
        g_assert_cmpint(durabus_send(d.client, ENDPOINT, NULL, "{\"a\": 1}", &generated, &seq1, &error), ==, 0);
        g_assert_nonnull(generated);
        g_assert_cmpstr(generated, !=, "");

        g_assert_cmpint(durabus_send(d.client, ENDPOINT, "job-2", "{\"a\": 2}", NULL, &seq2, &error), ==, 0);
        g_assert_cmpuint(seq2, >, seq1);

        g_assert_cmpint(durabus_send(d.client, ENDPOINT, "job-2", "{\"a\": 3}", &again, &seq3, &error), ==, 0);
        g_assert_cmpstr(again, ==, "job-2");
        g_assert_cmpuint(seq3, ==, seq2);
        g_assert_cmpuint(stored_messages(&d), ==, 2);

        g_assert_cmpint(durabus_send(d.client, ENDPOINT, "", "{}", NULL, NULL, &error), ==, 0);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 3);
}

static gboolean all_sent(gconstpointer data) {
        const SentWait *w = data;

        for (guint i = 0; i < w->n; i++)
                if (!w->sent[i].called)
                        return FALSE;
        return TRUE;
}

static void test_send_async(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        Sent sent[10] = { 0 };
        SentWait wait = { sent, G_N_ELEMENTS(sent) };

        g_test_summary("durabus_send_async() returns at once and calls its handler once per send from the loop, "
                       "with the id and seq; sends are stored in the order they were queued, and a subscriber "
                       "receives them in that order.");

        driver_start(&d, f, data);
        s = subscribe(&d, "reader", NULL, &receiver);

        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                g_autofree char *id = fixture_message_id(i);
                g_autofree char *payload = fixture_message_payload(i);

                g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, id, payload, on_sent, &sent[i]), ==, 0);
        }
        /* Nothing is answered from inside the call. */
        g_assert_false(sent[0].called);

        driver_wait(&d, all_sent, &wait, "the handlers of the sends");
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                g_autofree char *id = fixture_message_id(i);

                g_assert_cmpint(sent[i].error, ==, 0);
                g_assert_true(sent[i].client == d.client);
                g_assert_cmpstr(sent[i].id, ==, id);
                if (i > 0)
                        g_assert_cmpuint(sent[i].seq, >, sent[i - 1].seq);
        }

        receiver_wait(&d, &receiver, G_N_ELEMENTS(sent));
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++)
                assert_received(&receiver, i, "reader", i, sent[i].seq, FALSE);

        /* A send that cannot even be queued calls no handler. */
        g_assert_cmpint(durabus_send_async(d.client, "a..b", NULL, "{}", on_sent, &sent[0]), ==, -EINVAL);
        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", NULL, NULL), ==, -EINVAL);
        sent_clear(sent, G_N_ELEMENTS(sent));
}

static void test_send_async_canceled(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        Sent sent = { 0 };

        g_test_summary("A send still waiting for its reply when the client is freed gets its handler called "
                       "with -ECANCELED and no client, so that its userdata can be freed.");

        driver_start(&d, f, data);
        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", on_sent, &sent), ==, 0);
        d.client = durabus_client_unref(d.client);

        g_assert_true(sent.called);
        g_assert_null(sent.client);
        g_assert_cmpint(sent.error, ==, -ECANCELED);
        g_assert_nonnull(sent.error_name);
        g_assert_null(sent.id);
        sent_clear(&sent, 1);
}

/* ---- Subscriptions -------------------------------------------------------- */

static void test_subscribe_replay_then_live(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        guint64 seqs[8];
        gint64 before, after;

        g_test_summary("The handler receives first the replay of every stored message, in seq order, with its "
                       "endpoint, subscriber, id, payload, the timestamp of its Send and delivery count 1, then "
                       "each new message live; nothing else.");

        driver_start(&d, f, data);

        before = g_get_real_time();
        send_range(&d, 0, 5, seqs);
        after = g_get_real_time();

        s = subscribe(&d, "reader", NULL, &receiver);
        g_assert_cmpstr(durabus_subscription_get_endpoint(s), ==, ENDPOINT);
        g_assert_cmpstr(durabus_subscription_get_subscriber(s), ==, "reader");
        g_assert_true(durabus_subscription_get_client(s) == d.client);

        receiver_wait(&d, &receiver, 5);
        for (guint i = 0; i < 5; i++) {
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);
                g_assert_cmpuint(receiver_get(&receiver, i)->timestamp, >=, (guint64) before);
                g_assert_cmpuint(receiver_get(&receiver, i)->timestamp, <=, (guint64) after);
        }

        send_range(&d, 5, 3, seqs);
        receiver_wait(&d, &receiver, 8);
        for (guint i = 5; i < 8; i++)
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);

        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 8);
        g_assert_cmpuint(receiver.errors, ==, 0);
}

static void test_subscribe_ack(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) first = receiver_make();
        g_auto(Receiver) second = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, again = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *id0 = fixture_message_id(0), *id1 = fixture_message_id(1), *id2 = fixture_message_id(2);
        const char *const ids[] = { id1, id2, "no-such-id", NULL };
        uint32_t acked = G_MAXUINT32;
        guint64 seqs[4];

        g_test_summary("durabus_subscription_ack() returns 1 for a message acknowledged now and 0 for one "
                       "acknowledged before; ack_many() counts the ids acknowledged now. Only the unacknowledged "
                       "message comes again on the next subscription, flagged as redelivered.");

        driver_start(&d, f, data);
        send_range(&d, 0, 4, seqs);

        s = subscribe(&d, "reader", NULL, &first);
        receiver_wait(&d, &first, 4);

        g_assert_cmpint(durabus_subscription_ack(s, id0, &error), ==, 1);
        g_assert_cmpint(durabus_subscription_ack(s, id0, &error), ==, 0);
        g_assert_cmpint(durabus_subscription_ack_many(s, ids, &acked, &error), ==, 0);
        g_assert_cmpuint(acked, ==, 2);
        g_assert_cmpint(durabus_subscription_ack_many(s, ids, NULL, &error), ==, 0);
        /* Every durable subscription acknowledged 0 to 2: deleted. */
        g_assert_cmpuint(stored_messages(&d), ==, 1);

        g_assert_cmpint(durabus_subscription_unsubscribe(s, false, &error), ==, 0);
        again = subscribe(&d, "reader", NULL, &second);
        receiver_wait(&d, &second, 1);
        assert_received(&second, 0, "reader", 3, seqs[3], TRUE);
        driver_sync(&d);
        g_assert_cmpuint(second.messages->len, ==, 1);
        g_assert_cmpuint(first.messages->len, ==, 4);
}

static void test_subscribe_ack_from_handler(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        guint64 seqs[6];

        g_test_summary("A handler may acknowledge each message as it gets it (a synchronous call from inside "
                       "the loop); nothing is lost or reordered meanwhile, and everything acknowledged is "
                       "deleted.");

        receiver.ack = TRUE;
        driver_start(&d, f, data);
        send_range(&d, 0, 3, seqs);

        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 3);
        send_range(&d, 3, 3, seqs);
        receiver_wait(&d, &receiver, 6);
        for (guint i = 0; i < 6; i++)
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);

        g_assert_cmpuint(stored_messages(&d), ==, 0);
}

static void test_subscribe_window(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        const DurabusSubscribeOptions options = { .window = 2 };
        guint64 seqs[5];

        g_test_summary("The window option holds back what is beyond that many unacknowledged messages; each "
                       "acknowledgement lets the next one through.");

        driver_start(&d, f, data);
        send_range(&d, 0, 5, seqs);

        s = subscribe(&d, "reader", &options, &receiver);
        receiver_wait(&d, &receiver, 2);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 2);

        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), ==, 1);
        receiver_wait(&d, &receiver, 3);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 3);
        for (guint i = 0; i < 3; i++)
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);
}

static void test_subscribe_start_new(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        const DurabusSubscribeOptions options = { .start_new = true };
        guint64 seqs[5];

        g_test_summary("start_new makes a new durable subscription receive only messages sent after it was "
                       "created.");

        driver_start(&d, f, data);
        send_range(&d, 0, 3, seqs);

        s = subscribe(&d, "late", &options, &receiver);
        send_range(&d, 3, 2, seqs);
        receiver_wait(&d, &receiver, 2);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 2);
        assert_received(&receiver, 0, "late", 3, seqs[3], FALSE);
        assert_received(&receiver, 1, "late", 4, seqs[4], FALSE);
}

static void test_subscribe_ephemeral(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        guint64 seqs[4];

        g_test_summary("An ephemeral subscription (no name) gets live messages only, with subscriber \"\", and "
                       "takes no acknowledgements (InvalidArgs).");

        driver_start(&d, f, data);
        send_range(&d, 0, 2, seqs);

        s = subscribe(&d, NULL, NULL, &receiver);
        g_assert_cmpstr(durabus_subscription_get_subscriber(s), ==, "");
        send_range(&d, 2, 2, seqs);
        receiver_wait(&d, &receiver, 2);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 2);
        assert_received(&receiver, 0, "", 2, seqs[2], FALSE);
        assert_received(&receiver, 1, "", 3, seqs[3], FALSE);

        assert_failed(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, NULL);
}

static void test_subscribe_unsubscribe_keeps(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) first = receiver_make();
        g_auto(Receiver) second = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, again = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        const DurabusSubscribeOptions start_new = { .start_new = true };
        guint64 seqs[3];

        g_test_summary("After durabus_subscription_unsubscribe() without forget the handler gets nothing more, "
                       "and the durable subscription keeps collecting: subscribing again (start_new is ignored "
                       "for an existing subscription) replays what it missed.");

        driver_start(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &first);
        receiver_wait(&d, &first, 1);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&first, 0)->id, &error), ==, 1);

        g_assert_cmpint(durabus_subscription_unsubscribe(s, false, &error), ==, 0);
        send_range(&d, 1, 2, seqs);
        driver_sync(&d);
        g_assert_cmpuint(first.messages->len, ==, 1);
        g_assert_cmpuint(stored_messages(&d), ==, 2);

        /* The first object is detached: a second one of the same name is
         * not a duplicate. */
        again = subscribe(&d, "reader", &start_new, &second);
        receiver_wait(&d, &second, 2);
        assert_received(&second, 0, "reader", 1, seqs[1], FALSE);
        assert_received(&second, 1, "reader", 2, seqs[2], FALSE);
        g_assert_cmpuint(first.messages->len, ==, 1);
}

static void test_subscribe_unsubscribe_forget(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) first = receiver_make();
        g_auto(Receiver) second = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, again = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        const DurabusSubscribeOptions start_new = { .start_new = true };
        guint64 seqs[4];

        g_test_summary("durabus_subscription_unsubscribe() with forget deletes the durable subscription: "
                       "subscribing again under the name creates a new one, which with start_new gets none of "
                       "the messages sent before.");

        driver_start(&d, f, data);
        send_range(&d, 0, 2, seqs);
        s = subscribe(&d, "reader", NULL, &first);
        receiver_wait(&d, &first, 2);

        g_assert_cmpint(durabus_subscription_unsubscribe(s, true, &error), ==, 0);
        send_range(&d, 2, 1, seqs);

        again = subscribe(&d, "reader", &start_new, &second);
        send_range(&d, 3, 1, seqs);
        receiver_wait(&d, &second, 1);
        driver_sync(&d);
        g_assert_cmpuint(second.messages->len, ==, 1);
        assert_received(&second, 0, "reader", 3, seqs[3], FALSE);
}

static void test_subscribe_unref_detaches(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) first = receiver_make();
        g_auto(Receiver) second = receiver_make();
        g_autoptr(DurabusSubscription) again = NULL;
        g_autoptr(GDBusConnection) other = fixture_connect(f);
        DurabusSubscription *s;
        guint64 seqs[2];

        g_test_summary("Dropping the last reference of an attached subscription detaches it at the service "
                       "without waiting, so another connection can attach the same durable subscription.");

        driver_start(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &first);
        receiver_wait(&d, &first, 1);

        durabus_subscription_unref(s);
        /* The Unsubscribe is queued before this call on the connection. */
        driver_sync(&d);

        g_assert_cmpuint(fixture_subscribe(other, ENDPOINT, "reader"), ==, 1);
        fixture_unsubscribe(other, ENDPOINT, "reader", FALSE);

        again = subscribe(&d, "reader", NULL, &second);
        receiver_wait(&d, &second, 1);
        g_assert_cmpuint(first.messages->len, ==, 1);
}

static void test_subscribe_busy(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        DurabusSubscription *untouched = (DurabusSubscription *) &s;
        int r;

        g_test_summary("A durable subscription attached to another connection fails with SubscriberBusy and "
                       "-EBUSY from the service; attaching one twice through the same client fails the same "
                       "way before any call.");

        driver_start(&d, f, data);

        fixture_subscribe(f->conn, ENDPOINT, "reader");
        r = durabus_subscribe(d.client, ENDPOINT, "reader", NULL, on_message, &receiver, &untouched, &error);
        assert_failed(r, &error, -EBUSY, DURABUS_ERROR_SUBSCRIBER_BUSY, "reader");
        g_assert_true(untouched == (DurabusSubscription *) &s);
        sd_bus_error_free(&error);
        fixture_unsubscribe(f->conn, ENDPOINT, "reader", FALSE);

        s = subscribe(&d, "reader", NULL, &receiver);
        r = durabus_subscribe(d.client, ENDPOINT, "reader", NULL, on_message, &receiver, &untouched, &error);
        assert_failed(r, &error, -EBUSY, DURABUS_ERROR_SUBSCRIBER_BUSY, "reader");
        g_assert_true(untouched == (DurabusSubscription *) &s);
}

/* The unique name of the library's connection: the other connection of this
 * process on the bus besides the fixture's own. */
static char *library_unique_name(Fixture *f) {
        g_autoptr(GVariant) names = NULL;
        g_autofree const char **list = NULL;
        char *found = NULL;

        names = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "ListNames", NULL, G_VARIANT_TYPE("(as)"),
                                            G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, NULL);
        g_assert_nonnull(names);
        g_variant_get(names, "(^a&s)", &list);

        for (const char **name = list; *name; name++) {
                g_autoptr(GVariant) pid = NULL;
                guint32 process = 0;

                if (**name != ':' || g_str_equal(*name, g_dbus_connection_get_unique_name(f->conn)))
                        continue;
                pid = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                  "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                                  g_variant_new("(s)", *name), G_VARIANT_TYPE("(u)"),
                                                  G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, NULL);
                if (pid)
                        g_variant_get(pid, "(u)", &process);
                if (process == (guint32) getpid()) {
                        g_assert_null(found);
                        found = g_strdup(*name);
                }
        }

        g_assert_nonnull(found);
        return found;
}

static void test_subscribe_ignores_other_senders(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_autoptr(GVariant) id = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *library = NULL;
        g_autofree char *path = fixture_endpoint_path(ENDPOINT);
        guint64 seqs[2];

        g_test_summary("A Message signal that does not come from the instance of the service the subscription "
                       "attached to is ignored, even when it is addressed to the client and names its "
                       "subscription.");

        driver_start(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 1);

        library = library_unique_name(f);
        g_dbus_connection_emit_signal(f->conn, library, path, ENDPOINT_IFACE, "Message",
                                      g_variant_new("(sstsa{sv})", "reader", "forged", (guint64) 999, "{}", NULL),
                                      &error);
        g_assert_no_error(error);
        /* A round trip to the bus: it has routed the forged signal to the
         * library before it answers, and so before it can see the barrier
         * call below. */
        id = g_dbus_connection_call_sync(f->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetId", NULL, G_VARIANT_TYPE("(s)"),
                                         G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, &error);
        g_assert_no_error(error);

        send_range(&d, 1, 1, seqs);
        receiver_wait(&d, &receiver, 2);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 2);
        assert_received(&receiver, 0, "reader", 0, seqs[0], FALSE);
        assert_received(&receiver, 1, "reader", 1, seqs[1], FALSE);
}

/* ---- Errors --------------------------------------------------------------- */

static void test_errors_invalid_name(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        DurabusSubscription *s = NULL;
        g_autofree char *too_long = g_strnfill(201, 'a');
        g_autoptr(GVariant) endpoints = NULL;
        uint64_t seq = 7;
        int r;

        g_test_summary("Invalid endpoint names fail with InvalidName and -EINVAL, with a message naming the "
                       "name: from the service (a digit first, too long, any Broker call) and from the library "
                       "for names that cannot become an object path.");

        driver_start(&d, f, data);

        /* From the service. */
        assert_failed(durabus_open_endpoint(d.client, "9lives", &error), &error, -EINVAL,
                      DURABUS_ERROR_INVALID_NAME, "9lives");
        sd_bus_error_free(&error);
        assert_failed(durabus_send(d.client, "9lives", NULL, "{}", NULL, &seq, &error), &error, -EINVAL,
                      DURABUS_ERROR_INVALID_NAME, "9lives");
        g_assert_cmpuint(seq, ==, 7);
        sd_bus_error_free(&error);
        assert_failed(durabus_clear(d.client, too_long, NULL, &error), &error, -EINVAL, DURABUS_ERROR_INVALID_NAME,
                      NULL);
        sd_bus_error_free(&error);
        assert_failed(durabus_delete_endpoint(d.client, "a..b", &error), &error, -EINVAL,
                      DURABUS_ERROR_INVALID_NAME, "a..b");
        sd_bus_error_free(&error);

        /* From the library: no path could name these. */
        assert_failed(durabus_send(d.client, "a..b", NULL, "{}", NULL, NULL, &error), &error, -EINVAL,
                      DURABUS_ERROR_INVALID_NAME, "'a..b'");
        sd_bus_error_free(&error);
        assert_failed(durabus_get_stored(d.client, "a/b", NULL, NULL, &error), &error, -EINVAL,
                      DURABUS_ERROR_INVALID_NAME, "'a/b'");
        sd_bus_error_free(&error);
        assert_failed(durabus_clear(d.client, "", NULL, &error), &error, -EINVAL, DURABUS_ERROR_INVALID_NAME,
                      "empty");
        sd_bus_error_free(&error);
        r = durabus_subscribe(d.client, "app.", "reader", NULL, on_message, &receiver, &s, &error);
        assert_failed(r, &error, -EINVAL, DURABUS_ERROR_INVALID_NAME, "'app.'");
        g_assert_null(s);

        /* None of this made an endpoint. */
        endpoints = fixture_list_endpoints(f->conn);
        g_assert_cmpuint(g_variant_n_children(endpoints), ==, 0);
}

static void test_errors_not_subscribed(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        guint64 seqs[1];

        g_test_summary("An acknowledgement that reaches a new instance of the service before the subscription "
                       "attached itself again fails with NotSubscribed and -ESRCH, as the service answers; the "
                       "message then comes again and is acknowledged. Acknowledging through, or unsubscribing, "
                       "a subscription that was unsubscribed fails the same way.");

        driver_start(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 1);

        /* The loop does not run in between: the library has not seen the
         * service go, and this call activates a new instance. */
        stop_service(f, SIGTERM);
        assert_failed(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), &error, -ESRCH,
                      DURABUS_ERROR_NOT_SUBSCRIBED, "reader");
        sd_bus_error_free(&error);

        receiver_wait(&d, &receiver, 2);
        assert_received(&receiver, 1, "reader", 0, seqs[0], TRUE);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 1)->id, &error), ==, 1);

        g_assert_cmpint(durabus_subscription_unsubscribe(s, false, &error), ==, 0);
        assert_failed(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), &error, -ESRCH,
                      DURABUS_ERROR_NOT_SUBSCRIBED, "reader");
        sd_bus_error_free(&error);
        assert_failed(durabus_subscription_unsubscribe(s, true, &error), &error, -ESRCH,
                      DURABUS_ERROR_NOT_SUBSCRIBED, "reader");
}

static void test_errors_limits_exceeded(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autofree char *payload = g_strnfill(65, 'x');
        g_autofree char *id = NULL;
        Sent sent = { 0 };

        g_test_summary("A payload over the service's limit (here 64 bytes) fails with LimitsExceeded and "
                       "-ENOBUFS, synchronously and in the handler of an asynchronous send; nothing is stored.");

        driver_start(&d, f, data);
        assert_failed(durabus_send(d.client, ENDPOINT, "big", payload, &id, NULL, &error), &error, -ENOBUFS,
                      SD_BUS_ERROR_LIMITS_EXCEEDED, "65");
        g_assert_null(id);

        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, "big", payload, on_sent, &sent), ==, 0);
        driver_wait(&d, flag_is_set, &sent.called, "the handler of the send");
        g_assert_cmpint(sent.error, ==, -ENOBUFS);
        g_assert_cmpstr(sent.error_name, ==, SD_BUS_ERROR_LIMITS_EXCEEDED);
        g_assert_null(sent.id);
        sent_clear(&sent, 1);

        g_assert_cmpuint(stored_messages(&d), ==, 0);
}

static void test_errors_invalid_args(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        const DurabusSubscribeOptions huge_window = { .window = 70000 };
        DurabusSubscription *s = NULL;
        int r;

        g_test_summary("A bad subscriber name or option fails with InvalidArgs and -EINVAL from the service; a "
                       "payload that is not UTF-8 or a missing argument fails the same way in the library.");

        driver_start(&d, f, data);

        r = durabus_subscribe(d.client, ENDPOINT, "bad name", NULL, on_message, &receiver, &s, &error);
        assert_failed(r, &error, -EINVAL, SD_BUS_ERROR_INVALID_ARGS, "bad name");
        sd_bus_error_free(&error);
        r = durabus_subscribe(d.client, ENDPOINT, "reader", &huge_window, on_message, &receiver, &s, &error);
        assert_failed(r, &error, -EINVAL, SD_BUS_ERROR_INVALID_ARGS, "70000");
        sd_bus_error_free(&error);
        g_assert_null(s);

        assert_failed(durabus_send(d.client, ENDPOINT, NULL, "\xff", NULL, NULL, &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, "payload");
        sd_bus_error_free(&error);
        assert_failed(durabus_send(d.client, ENDPOINT, NULL, NULL, NULL, NULL, &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, NULL);
        sd_bus_error_free(&error);

        /* Without a place for the error, the errno alone. */
        g_assert_cmpint(durabus_open_endpoint(d.client, "9lives", NULL), ==, -EINVAL);
}

/* ---- Attaching again after the service went away ------------------------ */

/*
 * Five messages are delivered to two subscriptions of the client, and two
 * of them acknowledged by the first; then the service is stopped with sig,
 * two messages are sent while the library has not attached again, and two
 * more once it has. The first handler must see, in this order: 0-4 once,
 * 2-4 again flagged as redelivered (the replay of the new instance), 5-6
 * (stored meanwhile), 7-8 live; the second, which acknowledged nothing,
 * 0-4, 0-4 again and 5-8. Nothing is lost: once everything is acknowledged
 * the endpoint stores nothing.
 */
static void check_resubscribe_after_stop(Fixture *f, gconstpointer data, int sig) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) indexer = receiver_make();
        g_auto(Receiver) auditor = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, t = NULL;
        g_autoptr(GArray) meanwhile = NULL;
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GPtrArray) rest = g_ptr_array_new();
        g_autoptr(GPtrArray) all = g_ptr_array_new();
        uint32_t acked = 0;
        guint64 seqs[9];
        pid_t before;

        driver_start(&d, f, data);
        send_range(&d, 0, 5, seqs);
        s = subscribe(&d, "indexer", NULL, &indexer);
        t = subscribe(&d, "auditor", NULL, &auditor);
        receiver_wait(&d, &indexer, 5);
        receiver_wait(&d, &auditor, 5);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&indexer, 0)->id, &error), ==, 1);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&indexer, 1)->id, &error), ==, 1);

        before = fixture_service_pid(f);
        stop_service(f, sig);

        /* Stored by a new instance, which this call activates unless the
         * library did already. */
        meanwhile = fixture_send_numbered(f->conn, ENDPOINT, 5, 2);
        seqs[5] = fixture_seq_at(meanwhile, 0);
        seqs[6] = fixture_seq_at(meanwhile, 1);

        receiver_wait(&d, &indexer, 10);
        receiver_wait(&d, &auditor, 12);
        g_assert_cmpint(fixture_service_pid(f), !=, before);
        send_range(&d, 7, 2, seqs);
        receiver_wait(&d, &indexer, 12);
        receiver_wait(&d, &auditor, 14);
        driver_sync(&d);
        g_assert_cmpuint(indexer.messages->len, ==, 12);
        g_assert_cmpuint(auditor.messages->len, ==, 14);
        g_assert_cmpuint(indexer.errors + auditor.errors, ==, 0);

        for (guint i = 0; i < 5; i++)
                assert_received(&indexer, i, "indexer", i, seqs[i], FALSE);
        for (guint i = 2; i < 5; i++)
                assert_received(&indexer, 3 + i, "indexer", i, seqs[i], TRUE);
        for (guint i = 5; i < 9; i++)
                assert_received(&indexer, 3 + i, "indexer", i, seqs[i], FALSE);

        for (guint i = 0; i < 5; i++) {
                assert_received(&auditor, i, "auditor", i, seqs[i], FALSE);
                assert_received(&auditor, 5 + i, "auditor", i, seqs[i], TRUE);
        }
        for (guint i = 5; i < 9; i++)
                assert_received(&auditor, 5 + i, "auditor", i, seqs[i], FALSE);

        for (guint i = 5; i < 12; i++)
                g_ptr_array_add(rest, receiver_get(&indexer, i)->id);
        g_ptr_array_add(rest, NULL);
        g_assert_cmpint(durabus_subscription_ack_many(s, (const char *const *) rest->pdata, &acked, &error), ==, 0);
        g_assert_cmpuint(acked, ==, 7);

        for (guint i = 5; i < 14; i++)
                g_ptr_array_add(all, receiver_get(&auditor, i)->id);
        g_ptr_array_add(all, NULL);
        g_assert_cmpint(durabus_subscription_ack_many(t, (const char *const *) all->pdata, &acked, &error), ==, 0);
        g_assert_cmpuint(acked, ==, 9);
        g_assert_cmpuint(stored_messages(&d), ==, 0);
}

static void test_resubscribe_after_sigkill(Fixture *f, gconstpointer data) {
        g_test_summary("After the service is killed with SIGKILL, the subscription attaches itself again, "
                       "which activates the service; the handler keeps receiving: the unacknowledged messages "
                       "again, flagged as redelivered, then what was sent meanwhile and live messages, in "
                       "order, none lost.");
        check_resubscribe_after_stop(f, data, SIGKILL);
}

static void test_resubscribe_after_sigterm(Fixture *f, gconstpointer data) {
        g_test_summary("The same after the service ended cleanly on SIGTERM.");
        check_resubscribe_after_stop(f, data, SIGTERM);
}

static gboolean has_error(gconstpointer data) {
        const Receiver *r = data;
        return r->errors > 0;
}

static void test_resubscribe_failure_then_recovery(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_autofree char *saved = g_strconcat(f->state_dir, ".saved", NULL);
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(GError) gerror = NULL;
        guint64 seqs[3];

        g_test_summary("When the service cannot be started again, the error handler reports the failed attempt "
                       "with its D-Bus error; once the service appears on the bus again the subscription "
                       "attaches itself and the replay follows.");

        driver_start(&d, f, data);
        send_range(&d, 0, 3, seqs);
        s = subscribe(&d, "indexer", NULL, &receiver);
        receiver_wait(&d, &receiver, 3);
        /* The service counts deliveries on disk with its next sync, which
         * an Ack waits for: without it, SIGKILL could come first and the
         * replay would rightly say delivery count 1. */
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), ==, 1);
        stop_service(f, SIGKILL);

        /* A state directory that is a file: the service exits at startup,
         * and activation fails. */
        g_assert_cmpint(g_rename(f->state_dir, saved), ==, 0);
        g_file_set_contents(f->state_dir, "", 0, &gerror);
        g_assert_no_error(gerror);

        driver_wait(&d, has_error, &receiver, "the report of the failed attempt");
        g_assert_cmpuint(receiver.errors, ==, 1);
        g_assert_nonnull(receiver.last_error_name);
        g_assert_true(g_str_has_prefix(receiver.last_error_name, "org.freedesktop.DBus.Error.Spawn."));
        g_assert_cmpint(receiver.last_error, <, 0);
        g_assert_cmpuint(receiver.messages->len, ==, 3);

        g_assert_cmpint(g_unlink(f->state_dir), ==, 0);
        g_assert_cmpint(g_rename(saved, f->state_dir), ==, 0);
        fixture_start_service(f);

        receiver_wait(&d, &receiver, 5);
        for (guint i = 1; i < 3; i++)
                assert_received(&receiver, 2 + i, "indexer", i, seqs[i], TRUE);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 5);
        g_assert_cmpuint(receiver.errors, ==, 1);
}

/* ---- Access control ------------------------------------------------------
 * A service that trusts nobody (trust-same-user=false) and gives the rights
 * on app.** to the holder of one token, as its configuration says. The
 * service reads the configuration when it starts, so each test writes it
 * before its first call. */

#define TOKEN "c1e7a2b9f04d6e835a1c9b7d2e4f6a80"
#define OTHER_TOKEN "5d0b8e3f7a2c4e6d9b1f3a5c7e9d2b4f"
#define TOKEN_CONFIG(token)                                                             \
        "[Broker]\ntrust-same-user=false\n\n"                                           \
        "[Client c]\ntoken=" token "\npublish=app.**\nsubscribe=app.**\n"

/* A client of a service that trusts nobody, with TOKEN proved. */
static void driver_start_authenticated(Driver *d, Fixture *f, gconstpointer data) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;

        fixture_write_config(TOKEN_CONFIG(TOKEN));
        driver_start(d, f, data);
        g_assert_cmpint(durabus_client_authenticate(d->client, TOKEN, &error), ==, 0);
}

/* One durabus_send_async() of payload to ENDPOINT, answered. */
static void send_async_wait(Driver *d, Sent *sent) {
        g_assert_cmpint(durabus_send_async(d->client, ENDPOINT, NULL, "{}", on_sent, sent), ==, 0);
        driver_wait(d, flag_is_set, &sent->called, "the handler of the send");
}

static void test_access_refused_without_token(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_auto(DurabusStrv) names = NULL;
        DurabusSubscription *s = NULL;
        Sent sent = { 0 };
        int r;

        g_test_summary("A client that proved no token to a service that trusts nobody is refused every send "
                       "and subscription with AccessDenied and -EACCES, naming the endpoint, and is shown no "
                       "endpoint.");

        fixture_write_config(TOKEN_CONFIG(TOKEN));
        driver_start(&d, f, data);

        assert_failed(durabus_send(d.client, ENDPOINT, NULL, "{}", NULL, NULL, &error), &error, -EACCES,
                      ERROR_ACCESS_DENIED, ENDPOINT);
        sd_bus_error_free(&error);

        r = durabus_subscribe(d.client, ENDPOINT, "reader", NULL, on_message, &receiver, &s, &error);
        assert_failed(r, &error, -EACCES, ERROR_ACCESS_DENIED, ENDPOINT);
        g_assert_null(s);
        sd_bus_error_free(&error);

        send_async_wait(&d, &sent);
        g_assert_cmpint(sent.error, ==, -EACCES);
        g_assert_cmpstr(sent.error_name, ==, ERROR_ACCESS_DENIED);
        g_assert_nonnull(strstr(sent.error_message, ENDPOINT));
        sent_clear(&sent, 1);

        g_assert_cmpint(durabus_list_endpoints(d.client, &names, &error), ==, 0);
        g_assert_cmpuint(g_strv_length(names), ==, 0);
}

static void test_access_token_grants_rights(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(DurabusSubscription) s = NULL;
        Sent sent = { 0 };
        guint64 seqs[2];

        g_test_summary("After durabus_client_authenticate() with the token of a registered client, the client "
                       "sends, synchronously and through a handler, and subscribes within that client's "
                       "patterns, and is still refused outside them.");

        driver_start_authenticated(&d, f, data);

        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 1);
        assert_received(&receiver, 0, "reader", 0, seqs[0], FALSE);

        send_async_wait(&d, &sent);
        g_assert_cmpint(sent.error, ==, 0);
        sent_clear(&sent, 1);
        send_range(&d, 1, 1, seqs);
        receiver_wait(&d, &receiver, 3);
        assert_received(&receiver, 2, "reader", 1, seqs[1], FALSE);

        assert_failed(durabus_send(d.client, "other", NULL, "{}", NULL, NULL, &error), &error, -EACCES,
                      ERROR_ACCESS_DENIED, "other");
}

static void test_access_wrong_token(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        pid_t before;

        g_test_summary("A token the service does not accept fails with AccessDenied and -EACCES and leaves the "
                       "client as it was: refused before, and after an accepted token still holding that one, "
                       "also for the next instance of the service. A missing, empty or non-UTF-8 token is "
                       "InvalidArgs, found by the library.");

        fixture_write_config(TOKEN_CONFIG(TOKEN));
        driver_start(&d, f, data);

        assert_failed(durabus_client_authenticate(d.client, OTHER_TOKEN, &error), &error, -EACCES, ERROR_ACCESS_DENIED,
                      AUTHENTICATION_FAILED);
        sd_bus_error_free(&error);
        assert_failed(durabus_send(d.client, ENDPOINT, NULL, "{}", NULL, NULL, &error), &error, -EACCES,
                      ERROR_ACCESS_DENIED, ENDPOINT);
        sd_bus_error_free(&error);

        g_assert_cmpint(durabus_client_authenticate(d.client, TOKEN, &error), ==, 0);
        assert_failed(durabus_client_authenticate(d.client, OTHER_TOKEN, &error), &error, -EACCES, ERROR_ACCESS_DENIED,
                      AUTHENTICATION_FAILED);
        sd_bus_error_free(&error);
        send_numbered(&d, 0);

        before = fixture_service_pid(f);
        stop_service(f, SIGKILL);
        send_numbered(&d, 1);
        g_assert_cmpint(fixture_service_pid(f), !=, before);

        assert_failed(durabus_client_authenticate(d.client, NULL, &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, NULL);
        sd_bus_error_free(&error);
        assert_failed(durabus_client_authenticate(d.client, "", &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, NULL);
        sd_bus_error_free(&error);
        assert_failed(durabus_client_authenticate(d.client, "caf\xe9", &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, "UTF-8");
        sd_bus_error_free(&error);
        assert_failed(durabus_client_authenticate(NULL, TOKEN, &error), &error, -EINVAL,
                      SD_BUS_ERROR_INVALID_ARGS, NULL);
}

static void test_access_sends_after_sigkill(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        Sent sent = { 0 };
        pid_t killed;

        g_test_summary("After the service is killed with SIGKILL, sends through the same client go on working: "
                       "a synchronous send made before the loop saw the restart, refused by the new instance, "
                       "proves the token again and is made once more; one made after the loop saw it, and an "
                       "asynchronous one, go out behind a new proof.");

        driver_start_authenticated(&d, f, data);
        send_numbered(&d, 0);

        /* The loop does not run: the library has not seen the service go. */
        killed = fixture_service_pid(f);
        stop_service(f, SIGKILL);
        send_numbered(&d, 1);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);

        killed = fixture_service_pid(f);
        stop_service(f, SIGKILL);
        driver_sync(&d);
        send_numbered(&d, 2);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);

        killed = fixture_service_pid(f);
        stop_service(f, SIGKILL);
        driver_sync(&d);
        send_async_wait(&d, &sent);
        g_assert_cmpint(sent.error, ==, 0);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);
        sent_clear(&sent, 1);

        g_assert_cmpuint(stored_messages(&d), ==, 4);
}

static void test_access_subscription_after_sigkill(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(DurabusSubscription) s = NULL;
        guint64 seqs[3];
        pid_t killed;

        g_test_summary("A subscription of an authenticated client keeps receiving after the service is killed "
                       "with SIGKILL: the token is proved to the new instance before the subscription's "
                       "Subscribe, so the replay of what was not acknowledged and live messages follow.");

        driver_start_authenticated(&d, f, data);
        send_range(&d, 0, 2, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 2);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), ==, 1);

        killed = fixture_service_pid(f);
        stop_service(f, SIGKILL);

        /* Nothing else calls the service before the subscription does. */
        receiver_wait(&d, &receiver, 3);
        assert_received(&receiver, 2, "reader", 1, seqs[1], TRUE);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);

        send_range(&d, 2, 1, seqs);
        receiver_wait(&d, &receiver, 4);
        assert_received(&receiver, 3, "reader", 2, seqs[2], FALSE);
        driver_sync(&d);
        g_assert_cmpuint(receiver.messages->len, ==, 4);
        g_assert_cmpuint(receiver.errors, ==, 0);
}

static void test_access_refused_by_new_instance(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(DurabusSubscription) s = NULL;
        Sent sent = { 0 };
        guint64 seqs[1];

        g_test_summary("When a new instance of the service does not accept the token (its configuration "
                       "changed), the subscription attaching itself again, an asynchronous and a synchronous "
                       "send each fail with the Authenticate's AccessDenied; the client tries again with the "
                       "next instance, which accepts it, and the subscription receives its replay.");

        driver_start_authenticated(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 1);

        fixture_write_config(TOKEN_CONFIG(OTHER_TOKEN));
        stop_service(f, SIGKILL);

        driver_wait(&d, has_error, &receiver, "the report of the refused attempt");
        g_assert_cmpint(receiver.last_error, ==, -EACCES);
        g_assert_cmpstr(receiver.last_error_name, ==, ERROR_ACCESS_DENIED);
        g_assert_cmpstr(receiver.last_error_message, ==, AUTHENTICATION_FAILED);

        send_async_wait(&d, &sent);
        g_assert_cmpint(sent.error, ==, -EACCES);
        g_assert_cmpstr(sent.error_name, ==, ERROR_ACCESS_DENIED);
        g_assert_cmpstr(sent.error_message, ==, AUTHENTICATION_FAILED);
        sent_clear(&sent, 1);

        assert_failed(durabus_send(d.client, ENDPOINT, NULL, "{}", NULL, NULL, &error), &error, -EACCES,
                      ERROR_ACCESS_DENIED, AUTHENTICATION_FAILED);
        sd_bus_error_free(&error);

        fixture_write_config(TOKEN_CONFIG(TOKEN));
        stop_service(f, SIGKILL);
        receiver_wait(&d, &receiver, 2);
        assert_received(&receiver, 1, "reader", 0, seqs[0], TRUE);
        g_assert_cmpuint(receiver.errors, ==, 1);
        g_assert_cmpuint(stored_messages(&d), ==, 1);
}

static void test_access_held_send_canceled_with_the_client(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_autoptr(GVariant) barrier = NULL;
        Sent sent[2] = { 0 };

        g_test_summary("Sends refused by a new instance that does not accept the token wait for the answer to "
                       "the Authenticate ahead of them; when the client is freed first, each handler is called "
                       "once, with -ECANCELED and no client.");

        driver_start_authenticated(&d, f, data);
        send_numbered(&d, 0);
        fixture_write_config(TOKEN_CONFIG(OTHER_TOKEN));
        stop_service(f, SIGKILL);
        driver_sync(&d);

        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", on_sent, &sent[0]), ==, 0);
        g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", on_sent, &sent[1]), ==, 0);
        g_assert_cmpint(durabus_client_flush(d.client), ==, 0);
        /* Answered after the service refused the sends, which the bus has
         * passed on by then; the refusal of the token is half a second
         * away. */
        barrier = fixture_list_endpoints(f->conn);
        driver_dispatch_pending(&d);
        g_assert_false(sent[0].called);
        g_assert_false(sent[1].called);

        d.client = durabus_client_unref(d.client);
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                g_assert_true(sent[i].called);
                g_assert_null(sent[i].client);
                g_assert_cmpint(sent[i].error, ==, -ECANCELED);
        }
        sent_clear(sent, G_N_ELEMENTS(sent));
}

/* ---- Direct connections ------------------------------------------------- */

/* The connection the service has the subscription attached to, as its
 * refusal of the same Subscribe from the fixture's connection names it: a
 * unique name of the bus, or "direct:N" for a direct connection. token,
 * unless NULL, is proved first, for a service that trusts nobody. */
static char *attachment_of(Fixture *f, const char *subscriber, const char *token) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        const char *open, *close;

        if (token)
                reply = fixture_call_ok(f->conn, BROKER_PATH, BROKER_IFACE, "Authenticate",
                                        g_variant_new("(s)", token), "()");
        error = fixture_endpoint_call_error(f->conn, ENDPOINT, "Subscribe",
                                            g_variant_new("(sa{sv})", subscriber, NULL));
        fixture_assert_dbus_error(error, DURABUS_ERROR_SUBSCRIBER_BUSY, subscriber);
        open = strrchr(error->message, '(');
        close = open ? strchr(open, ')') : NULL;
        g_assert_nonnull(close);
        return g_strndup(open + 1, (gsize) (close - open - 1));
}

static void assert_attached_directly(Fixture *f, const char *subscriber, const char *token) {
        g_autofree char *owner = attachment_of(f, subscriber, token);
        g_autofree char *kind = g_strndup(owner, strlen("direct:"));

        g_assert_cmpstr(kind, ==, "direct:");
}

static void assert_attached_over_bus(Fixture *f, const char *subscriber) {
        g_autofree char *owner = attachment_of(f, subscriber, NULL);
        g_autofree char *library = library_unique_name(f);

        g_assert_cmpstr(owner, ==, library);
}

/* Counts the Send calls that pass through the bus, as a monitor connection
 * (BecomeMonitor) sees them. GDBus runs the filter in its own thread. */
typedef struct SendMonitor {
        GDBusConnection *conn;
        guint filter;
        GMutex lock;
        GCond changed;
        guint sends;
        gboolean barrier_seen;          /* the Send with id BARRIER_ID went by */
} SendMonitor;

#define BARRIER_ID "barrier"

static GDBusMessage *monitor_filter(G_GNUC_UNUSED GDBusConnection *c, GDBusMessage *m, gboolean incoming,
                                    gpointer userdata) {
        SendMonitor *monitor = userdata;
        GDBusMessageType type = g_dbus_message_get_message_type(m);
        GVariant *body = g_dbus_message_get_body(m);
        const char *id = NULL;

        /* Only the answer to BecomeMonitor is for this connection itself. */
        if (!incoming || type == G_DBUS_MESSAGE_TYPE_METHOD_RETURN || type == G_DBUS_MESSAGE_TYPE_ERROR)
                return m;

        if (type == G_DBUS_MESSAGE_TYPE_METHOD_CALL && g_strcmp0(g_dbus_message_get_member(m), "Send") == 0) {
                if (body && g_variant_is_of_type(body, G_VARIANT_TYPE("(ssa{sv})")))
                        g_variant_get_child(body, 0, "&s", &id);
                g_mutex_lock(&monitor->lock);
                monitor->sends++;
                monitor->barrier_seen = monitor->barrier_seen || g_strcmp0(id, BARRIER_ID) == 0;
                g_cond_broadcast(&monitor->changed);
                g_mutex_unlock(&monitor->lock);
        }
        g_object_unref(m);
        return NULL;
}

static void monitor_start(SendMonitor *monitor, Fixture *f) {
        const char *rules[] = { "type='method_call',interface='" ENDPOINT_IFACE "',member='Send'", NULL };
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;

        g_mutex_init(&monitor->lock);
        g_cond_init(&monitor->changed);
        monitor->conn = fixture_connect(f);
        monitor->filter = g_dbus_connection_add_filter(monitor->conn, monitor_filter, monitor, NULL);
        reply = g_dbus_connection_call_sync(monitor->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                            g_variant_new("(^asu)", rules, 0), G_VARIANT_TYPE("()"),
                                            G_DBUS_CALL_FLAGS_NONE, FIXTURE_TIMEOUT_MS, NULL, &error);
        g_assert_no_error(error);
}

static void monitor_clear(SendMonitor *monitor) {
        if (!monitor->conn)
                return;
        g_dbus_connection_remove_filter(monitor->conn, monitor->filter);
        g_dbus_connection_close_sync(monitor->conn, NULL, NULL);
        g_clear_object(&monitor->conn);
        g_mutex_clear(&monitor->lock);
        g_cond_clear(&monitor->changed);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SendMonitor, monitor_clear)

/* A synchronous send of the library (over the bus) as a barrier: the bus
 * passes the client's messages on in order, so once the monitor saw it, it
 * saw every Send the client had sent over the bus before. Returns how many
 * Sends it saw, the barrier included. */
static guint monitor_sync(SendMonitor *monitor, Driver *d) {
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        gint64 deadline = g_get_monotonic_time() + (gint64) FIXTURE_TIMEOUT_MS * 1000;
        guint sends;

        g_assert_cmpint(durabus_send(d->client, ENDPOINT, BARRIER_ID, "{}", NULL, NULL, &error), ==, 0);
        g_mutex_lock(&monitor->lock);
        while (!monitor->barrier_seen)
                if (!g_cond_wait_until(&monitor->changed, &monitor->lock, deadline))
                        g_error("Timed out after %d ms waiting for the monitor to see the barrier",
                                FIXTURE_TIMEOUT_MS);
        sends = monitor->sends;
        g_mutex_unlock(&monitor->lock);
        return sends;
}

static void test_direct_subscription(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(DurabusSubscription) s = NULL;
        guint64 seqs[3];

        g_test_summary("A client on sd-event attaches its subscription over a direct connection, which the "
                       "service names as the subscription's connection; the replay, live messages and "
                       "acknowledgements go over it. On a foreign loop the client stays on the bus.");

        driver_start(&d, f, data);
        send_range(&d, 0, 2, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 2);
        if (d.integration == INTEGRATION_SD_EVENT)
                assert_attached_directly(f, "reader", NULL);
        else
                assert_attached_over_bus(f, "reader");

        send_range(&d, 2, 1, seqs);
        receiver_wait(&d, &receiver, 3);
        for (guint i = 0; i < 3; i++) {
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);
                g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, i)->id, &error), ==, 1);
        }
        g_assert_cmpuint(stored_messages(&d), ==, 0);

        g_assert_cmpint(durabus_subscription_unsubscribe(s, false, &error), ==, 0);
        /* Detached: the fixture's connection may take it now. */
        g_assert_cmpuint(fixture_subscribe(f->conn, ENDPOINT, "reader"), ==, 0);
        g_assert_cmpuint(receiver.errors, ==, 0);
}

static void test_direct_off_by_environment(Fixture *f, gconstpointer data) {
        g_auto(Driver) off = { 0 };
        g_auto(Driver) on = { 0 };
        g_auto(Receiver) r1 = receiver_make();
        g_auto(Receiver) r2 = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, t = NULL;

        g_test_summary("DURABUS_NO_DIRECT=1 when the client is made keeps it on the bus; \"0\" does not.");

        g_setenv("DURABUS_NO_DIRECT", "1", TRUE);
        driver_start(&off, f, data);
        g_setenv("DURABUS_NO_DIRECT", "0", TRUE);
        driver_start(&on, f, data);
        g_unsetenv("DURABUS_NO_DIRECT");

        s = subscribe(&off, "reader", NULL, &r1);
        t = subscribe(&on, "auditor", NULL, &r2);
        send_numbered(&off, 0);
        receiver_wait(&off, &r1, 1);
        receiver_wait(&on, &r2, 1);

        assert_attached_directly(f, "auditor", NULL);

        /* The library's connection on the bus is to be "off"'s alone. */
        g_assert_cmpint(durabus_subscription_unsubscribe(t, false, NULL), ==, 0);
        on.client = durabus_client_unref(on.client);
        t = durabus_subscription_unref(t);
        assert_attached_over_bus(f, "reader");
}

static void test_direct_off_by_call(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) r1 = receiver_make();
        g_auto(Receiver) r2 = receiver_make();
        g_auto(Receiver) r3 = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL, t = NULL, u = NULL;

        g_test_summary("durabus_client_set_direct(false) keeps the subscriptions made from then on on the bus, "
                       "also while a direct connection is open; true lets the next one attach over a direct "
                       "connection.");

        g_assert_cmpint(durabus_client_set_direct(NULL, false), ==, -EINVAL);
        driver_start(&d, f, data);
        g_assert_cmpint(durabus_client_set_direct(d.client, false), ==, 0);
        s = subscribe(&d, "reader", NULL, &r1);
        send_numbered(&d, 0);
        receiver_wait(&d, &r1, 1);
        assert_attached_over_bus(f, "reader");

        g_assert_cmpint(durabus_client_set_direct(d.client, true), ==, 0);
        t = subscribe(&d, "auditor", NULL, &r2);
        receiver_wait(&d, &r2, 1);
        assert_attached_directly(f, "auditor", NULL);
        assert_attached_over_bus(f, "reader");

        /* What is attached over the open connection stays there. */
        g_assert_cmpint(durabus_client_set_direct(d.client, false), ==, 0);
        u = subscribe(&d, "archiver", NULL, &r3);
        receiver_wait(&d, &r3, 1);
        assert_attached_over_bus(f, "archiver");
        assert_attached_directly(f, "auditor", NULL);
}

static void test_direct_after_sigkill(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_auto(sd_bus_error) error = SD_BUS_ERROR_NULL;
        g_autoptr(DurabusSubscription) s = NULL;
        guint64 seqs[3];
        pid_t killed;

        g_test_summary("When the service is killed, the direct connection closes, and the subscription attaches "
                       "itself again over a new one to the instance it activates: the message it had not "
                       "acknowledged comes again with delivery count 2, then live messages, nothing lost.");

        driver_start(&d, f, data);
        send_range(&d, 0, 2, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 2);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 0)->id, &error), ==, 1);
        assert_attached_directly(f, "reader", NULL);

        killed = fixture_service_pid(f);
        stop_service(f, SIGKILL);

        /* Nothing but the library starts the service again. */
        receiver_wait(&d, &receiver, 3);
        assert_received(&receiver, 2, "reader", 1, seqs[1], TRUE);
        g_assert_cmpuint(receiver_get(&receiver, 2)->delivery_count, ==, 2);
        g_assert_cmpint(fixture_service_pid(f), !=, killed);
        assert_attached_directly(f, "reader", NULL);

        send_range(&d, 2, 1, seqs);
        receiver_wait(&d, &receiver, 4);
        assert_received(&receiver, 3, "reader", 2, seqs[2], FALSE);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 2)->id, &error), ==, 1);
        g_assert_cmpint(durabus_subscription_ack(s, receiver_get(&receiver, 3)->id, &error), ==, 1);
        g_assert_cmpuint(stored_messages(&d), ==, 0);
        g_assert_cmpuint(receiver.errors, ==, 0);
}

static void test_direct_refused_falls_back(Fixture *f, gconstpointer data) {
        g_autoptr(GPtrArray) directs = g_ptr_array_new_with_free_func(g_object_unref);
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        g_autoptr(GError) full = NULL;
        guint64 seqs[2];

        g_test_summary("A service that refuses the direct connection (here: its 128 are taken) is used over the "
                       "bus, as without direct connections.");

        for (guint i = 0; i < 128; i++)
                g_ptr_array_add(directs, fixture_open_direct(f->conn));
        full = fixture_open_direct_error(f->conn);
        fixture_assert_dbus_error(full, "org.freedesktop.DBus.Error.LimitsExceeded", NULL);

        driver_start(&d, f, data);
        send_range(&d, 0, 1, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 1);
        assert_attached_over_bus(f, "reader");
        send_range(&d, 1, 1, seqs);
        receiver_wait(&d, &receiver, 2);
        for (guint i = 0; i < 2; i++)
                assert_received(&receiver, i, "reader", i, seqs[i], FALSE);
        g_assert_cmpuint(receiver.errors, ==, 0);
}

static void test_direct_async_sends(Fixture *f, gconstpointer data) {
        g_auto(SendMonitor) monitor = { 0 };
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        Sent sent[6] = { 0 };
        SentWait first = { sent, 1 }, all = { sent, G_N_ELEMENTS(sent) };

        g_test_summary("The first asynchronous send goes over the bus and asks for a direct connection; the "
                       "next ones go over it (a monitor of the bus sees none of them) and get their replies, "
                       "stored in the order they were queued.");

        monitor_start(&monitor, f);
        driver_start(&d, f, data);

        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                g_autofree char *id = fixture_message_id(i);
                g_autofree char *payload = fixture_message_payload(i);

                g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, id, payload, on_sent, &sent[i]), ==, 0);
                if (i == 0)
                        driver_wait(&d, all_sent, &first, "the handler of the first send");
        }
        driver_wait(&d, all_sent, &all, "the handlers of the sends");
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                g_autofree char *id = fixture_message_id(i);

                g_assert_cmpint(sent[i].error, ==, 0);
                g_assert_true(sent[i].client == d.client);
                g_assert_cmpstr(sent[i].id, ==, id);
                if (i > 0)
                        g_assert_cmpuint(sent[i].seq, >, sent[i - 1].seq);
        }
        /* The first one and the barrier. */
        g_assert_cmpuint(monitor_sync(&monitor, &d), ==, 2);

        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, G_N_ELEMENTS(sent) + 1);
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++)
                assert_received(&receiver, i, "reader", i, sent[i].seq, FALSE);
        sent_clear(sent, G_N_ELEMENTS(sent));
}

static void test_direct_off_async_sends(Fixture *f, gconstpointer data) {
        g_auto(SendMonitor) monitor = { 0 };
        g_auto(Driver) d = { 0 };
        Sent sent[3] = { 0 };

        g_test_summary("Without direct connections every asynchronous send goes over the bus, where the monitor "
                       "sees it: the observation of the test of direct sends can fail.");

        monitor_start(&monitor, f);
        driver_start(&d, f, data);
        g_assert_cmpint(durabus_client_set_direct(d.client, false), ==, 0);
        /* One at a time, each time after the client could have opened a
         * direct connection. */
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++) {
                SentWait one = { &sent[i], 1 };

                g_assert_cmpint(durabus_send_async(d.client, ENDPOINT, NULL, "{}", on_sent, &sent[i]), ==, 0);
                driver_wait(&d, all_sent, &one, "the handler of the send");
        }
        for (guint i = 0; i < G_N_ELEMENTS(sent); i++)
                g_assert_cmpint(sent[i].error, ==, 0);
        g_assert_cmpuint(monitor_sync(&monitor, &d), ==, G_N_ELEMENTS(sent) + 1);
        sent_clear(sent, G_N_ELEMENTS(sent));
}

static void test_direct_token_after_sigkill(Fixture *f, gconstpointer data) {
        g_auto(Driver) d = { 0 };
        g_auto(Receiver) receiver = receiver_make();
        g_autoptr(DurabusSubscription) s = NULL;
        Sent sent = { 0 };
        guint64 seqs[2];

        g_test_summary("Against a service that trusts nobody, the direct connection is opened after the token "
                       "was proved, with its rights (without them OpenDirect is refused and the client stays on "
                       "the bus); after a SIGKILL the token is proved to the new instance before the next "
                       "OpenDirect, and the subscription attaches over a direct connection again.");

        driver_start_authenticated(&d, f, data);
        send_range(&d, 0, 2, seqs);
        s = subscribe(&d, "reader", NULL, &receiver);
        receiver_wait(&d, &receiver, 2);
        assert_attached_directly(f, "reader", TOKEN);

        stop_service(f, SIGKILL);
        receiver_wait(&d, &receiver, 4);
        assert_received(&receiver, 2, "reader", 0, seqs[0], TRUE);
        assert_received(&receiver, 3, "reader", 1, seqs[1], TRUE);
        assert_attached_directly(f, "reader", TOKEN);

        send_async_wait(&d, &sent);
        g_assert_cmpint(sent.error, ==, 0);
        receiver_wait(&d, &receiver, 5);
        g_assert_cmpuint(receiver.errors, ==, 0);
        sent_clear(&sent, 1);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        /* Nothing may reach the bus of the session running the tests. */
        g_test_dbus_unset();

#define ADD(path, data, fn) g_test_add(path, Fixture, data, fixture_setup, fn, fixture_teardown)

        ADD("/libdurabus/client/connects-to-the-session-bus", NULL, test_client_session_bus);
        g_test_add_func("/libdurabus/client/refuses-bad-arguments", test_client_bad_arguments);
        ADD("/libdurabus/client/offers-descriptor-events-and-timeout", NULL, test_client_foreign_loop_interface);
        ADD("/libdurabus/client/references-and-loops", &with_sd_event, test_client_references_and_loops);
        g_test_add_data_func("/libdurabus/client/reports-a-lost-connection/sd-event", &with_sd_event,
                             test_client_disconnect);
        g_test_add_data_func("/libdurabus/client/reports-a-lost-connection/glib", &with_glib,
                             test_client_disconnect);

        ADD("/libdurabus/endpoints/open-list-delete", &with_sd_event, test_endpoints_open_list_delete);
        ADD("/libdurabus/endpoints/clear-and-stored", &with_sd_event, test_endpoints_clear_and_stored);

        ADD("/libdurabus/send/sync", &with_sd_event, test_send_sync);
        ADD("/libdurabus/send/async/sd-event", &with_sd_event, test_send_async);
        ADD("/libdurabus/send/async/glib", &with_glib, test_send_async);
        ADD("/libdurabus/send/async/canceled-when-the-client-goes", &with_sd_event, test_send_async_canceled);

        ADD("/libdurabus/subscribe/replay-then-live/sd-event", &with_sd_event, test_subscribe_replay_then_live);
        ADD("/libdurabus/subscribe/replay-then-live/glib", &with_glib, test_subscribe_replay_then_live);
        ADD("/libdurabus/subscribe/ack-and-ack-many", &with_sd_event, test_subscribe_ack);
        ADD("/libdurabus/subscribe/ack-from-the-handler/sd-event", &with_sd_event, test_subscribe_ack_from_handler);
        ADD("/libdurabus/subscribe/ack-from-the-handler/glib", &with_glib, test_subscribe_ack_from_handler);
        ADD("/libdurabus/subscribe/window", &with_sd_event, test_subscribe_window);
        ADD("/libdurabus/subscribe/start-new", &with_sd_event, test_subscribe_start_new);
        ADD("/libdurabus/subscribe/ephemeral", &with_sd_event, test_subscribe_ephemeral);
        ADD("/libdurabus/subscribe/unsubscribe-keeps-the-subscription", &with_sd_event,
            test_subscribe_unsubscribe_keeps);
        ADD("/libdurabus/subscribe/unsubscribe-with-forget-deletes-it", &with_sd_event,
            test_subscribe_unsubscribe_forget);
        ADD("/libdurabus/subscribe/unref-detaches", &with_sd_event, test_subscribe_unref_detaches);
        ADD("/libdurabus/subscribe/busy", &with_sd_event, test_subscribe_busy);
        ADD("/libdurabus/subscribe/ignores-other-senders", &with_sd_event, test_subscribe_ignores_other_senders);

        ADD("/libdurabus/errors/invalid-name", &with_sd_event, test_errors_invalid_name);
        ADD("/libdurabus/errors/not-subscribed", &with_sd_event, test_errors_not_subscribed);
        ADD("/libdurabus/errors/limits-exceeded", &small_payloads, test_errors_limits_exceeded);
        ADD("/libdurabus/errors/invalid-args", &with_sd_event, test_errors_invalid_args);

        ADD("/libdurabus/resubscribe/after-sigkill/sd-event", &with_sd_event, test_resubscribe_after_sigkill);
        ADD("/libdurabus/resubscribe/after-sigkill/glib", &with_glib, test_resubscribe_after_sigkill);
        ADD("/libdurabus/resubscribe/after-sigterm/sd-event", &with_sd_event, test_resubscribe_after_sigterm);
        ADD("/libdurabus/resubscribe/after-sigterm/glib", &with_glib, test_resubscribe_after_sigterm);
        ADD("/libdurabus/resubscribe/failure-is-reported-then-recovered", &with_sd_event,
            test_resubscribe_failure_then_recovery);

        ADD("/libdurabus/access/refused-without-a-token", &with_sd_event, test_access_refused_without_token);
        ADD("/libdurabus/access/token-grants-the-client-rights", &with_sd_event, test_access_token_grants_rights);
        ADD("/libdurabus/access/wrong-token-is-refused-and-changes-nothing", &with_sd_event,
            test_access_wrong_token);
        ADD("/libdurabus/access/sends-after-sigkill-prove-the-token-again", &with_sd_event,
            test_access_sends_after_sigkill);
        ADD("/libdurabus/access/subscription-after-sigkill/sd-event", &with_sd_event,
            test_access_subscription_after_sigkill);
        ADD("/libdurabus/access/subscription-after-sigkill/glib", &with_glib,
            test_access_subscription_after_sigkill);
        ADD("/libdurabus/access/token-refused-by-a-new-instance-is-reported", &with_sd_event,
            test_access_refused_by_new_instance);
        ADD("/libdurabus/access/held-sends-are-canceled-with-the-client", &with_sd_event,
            test_access_held_send_canceled_with_the_client);

        ADD("/libdurabus/direct/subscription-attaches-directly/sd-event", &with_sd_event, test_direct_subscription);
        ADD("/libdurabus/direct/subscription-attaches-directly/glib-stays-on-the-bus", &with_glib,
            test_direct_subscription);
        ADD("/libdurabus/direct/off-by-environment", &with_sd_event, test_direct_off_by_environment);
        ADD("/libdurabus/direct/off-by-call", &with_sd_event, test_direct_off_by_call);
        ADD("/libdurabus/direct/reattaches-after-sigkill", &with_sd_event, test_direct_after_sigkill);
        ADD("/libdurabus/direct/refused-falls-back-to-the-bus", &with_sd_event, test_direct_refused_falls_back);
        ADD("/libdurabus/direct/async-sends-go-direct", &with_sd_event, test_direct_async_sends);
        ADD("/libdurabus/direct/async-sends-off-go-over-the-bus", &with_sd_event, test_direct_off_async_sends);
        ADD("/libdurabus/direct/token-proved-before-opening-after-sigkill", &with_sd_event,
            test_direct_token_after_sigkill);

        return g_test_run();
}
