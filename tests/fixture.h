/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one fixture of every integration test: a private dbus-daemon
 * (GTestDBus, never the user's bus) whose service directories hold an
 * org.durabus1.service file that execs the durabusd of the build tree, plus
 * the directory where durabusd writes the activation files of endpoints. The
 * service is started by activation, by the first call, as on a desktop.
 *
 * Tests run with G_TEST_OPTION_ISOLATE_DIRS, so XDG_STATE_HOME (the store)
 * and XDG_DATA_HOME (activation files) are fresh per test.
 *
 * Besides the bus, the fixture holds the helpers that more than one test
 * program uses: one call of the API each, waiting for names and processes
 * to go, asserting D-Bus errors, and numbered messages with a Collector of
 * the Message signals they turn into. Every helper fails the test (rather
 * than returning an error) unless it says otherwise.
 */

#include <gio/gio.h>
#include <sys/types.h>

#define DURABUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"
#define BROKER_IFACE "org.durabus1.Broker"
#define ENDPOINT_IFACE "org.durabus1.Endpoint"
#define PROPERTIES_IFACE "org.freedesktop.DBus.Properties"

/* The D-Bus errors of the contract, spelled out here rather than taken from
 * service/errors.h so that a renamed error fails the tests. */
#define ERROR_INVALID_NAME "org.durabus1.Error.InvalidName"
#define ERROR_NOT_SUBSCRIBED "org.durabus1.Error.NotSubscribed"
#define ERROR_SUBSCRIBER_BUSY "org.durabus1.Error.SubscriberBusy"
#define ERROR_STORAGE_FAILED "org.durabus1.Error.StorageFailed"
#define ERROR_NO_SUCH_ENDPOINT "org.durabus1.Error.NoSuchEndpoint"
#define ERROR_INVALID_ARGS "org.freedesktop.DBus.Error.InvalidArgs"
#define ERROR_LIMITS_EXCEEDED "org.freedesktop.DBus.Error.LimitsExceeded"
#define ERROR_ACCESS_DENIED "org.freedesktop.DBus.Error.AccessDenied"

/* The message of a refused Authenticate. */
#define AUTHENTICATION_FAILED "Authentication failed: the token is not accepted"

/* How long a test waits for anything before it fails. */
#define FIXTURE_TIMEOUT_MS 20000

typedef struct FixtureOptions {
        const char *service_args;       /* extra durabusd arguments, or NULL */
} FixtureOptions;

typedef struct Fixture {
        GTestDBus *bus;
        GDBusConnection *conn;          /* the test's own client connection */
        char *state_dir;                /* $XDG_STATE_HOME/durabus */
        char *services_dir;             /* where the test's .service file lives */
        char *endpoint_services_dir;    /* $XDG_DATA_HOME/dbus-1/services */
} Fixture;

/* Brings up the private bus and connects f->conn to it; the service is not
 * started yet. data is a const FixtureOptions *, a struct that starts with
 * one (the test data of data-driven cases), or NULL. */
void fixture_setup(Fixture *f, gconstpointer data);

/* Stops the service with SIGTERM if it runs, then the bus; frees what f
 * holds. */
void fixture_teardown(Fixture *f, gconstpointer data);

/* Writes a file for the user's eyes only (mode 0600, its directory created
 * 0700), as files with tokens should be. */
void fixture_write_private_file(const char *path, const char *contents);

/* Writes $XDG_CONFIG_HOME/durabus/durabus.conf, which the activated service
 * reads when it starts: call before the first call of a test. */
void fixture_write_config(const char *contents);

/* A further client connection to the private bus; the caller unrefs it. */
GDBusConnection *fixture_connect(Fixture *f);

/* Calls a method of org.durabus1 synchronously. Returns the reply (type
 * reply_type, or NULL to not check) or NULL with error set. */
GVariant *fixture_call(GDBusConnection *c, const char *path, const char *iface, const char *method,
                       GVariant *args, const char *reply_type, GError **error);

/* The same, failing the test on error. */
GVariant *fixture_call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method,
                          GVariant *args, const char *reply_type);

/* A call that is expected to fail: returns its error, which the caller
 * frees, or NULL when it succeeded (fixture_assert_dbus_error() reports
 * that). */
GError *fixture_call_error(GDBusConnection *c, const char *path, const char *iface, const char *method,
                           GVariant *args);

/* Path of an endpoint: "app.jobs" -> "/org/durabus1/endpoint/app/jobs". The
 * caller frees it. */
char *fixture_endpoint_path(const char *name);

/* Properties.Get on an object of org.durabus1; returns the unboxed value,
 * which the caller unrefs. */
GVariant *fixture_get_property(GDBusConnection *c, const char *path, const char *iface, const char *property);

/* ---- Broker ---------------------------------------------------------- */

/* OpenEndpoint(name, {}). The returned object path goes to *ret_path, for
 * the caller to free, unless ret_path is NULL. */
void fixture_open_endpoint(GDBusConnection *c, const char *name, char **ret_path);

/* DeleteEndpoint(name). */
void fixture_delete_endpoint(GDBusConnection *c, const char *name);

/* ListEndpoints(): the a(so) array, which the caller unrefs. */
GVariant *fixture_list_endpoints(GDBusConnection *c);

/* OpenDirect({}) from c, and a connection over the socket it returns: a
 * client of the service peer to peer, without the bus and without Hello.
 * Every helper that takes a connection works on it. The caller unrefs it. */
GDBusConnection *fixture_open_direct(GDBusConnection *c);

/* An OpenDirect expected to fail: returns its error, which the caller
 * frees, or NULL when it succeeded (the connection is then closed). */
GError *fixture_open_direct_error(GDBusConnection *c);

/* ---- Endpoint -------------------------------------------------------- */

/* fixture_call_ok() and fixture_call_error() on the object of an endpoint,
 * given by its name. */
GVariant *fixture_endpoint_call_ok(GDBusConnection *c, const char *endpoint, const char *method, GVariant *args,
                                   const char *reply_type);
GError *fixture_endpoint_call_error(GDBusConnection *c, const char *endpoint, const char *method, GVariant *args);

/* Send(id, payload, {}) on an endpoint; returns the seq. The id of the reply
 * (generated when id is "") goes to *ret_id, for the caller to free, unless
 * ret_id is NULL. */
guint64 fixture_send(GDBusConnection *c, const char *endpoint, const char *id, const char *payload, char **ret_id);

/* Subscribe(subscriber, {}) from c; returns pending, how many stored
 * messages the subscription will replay. */
guint64 fixture_subscribe(GDBusConnection *c, const char *endpoint, const char *subscriber);

/* The same with the options start and window; start NULL and window 0 leave
 * the option out. */
guint64 fixture_subscribe_with(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *start,
                               guint32 window);

/* Unsubscribe(subscriber, {}) from c, or with {forget: true}. */
void fixture_unsubscribe(GDBusConnection *c, const char *endpoint, const char *subscriber, gboolean forget);

/* Ack(subscriber, ids) from c, ids NULL-terminated; returns how many of them
 * this call acknowledged. */
guint32 fixture_ack(GDBusConnection *c, const char *endpoint, const char *subscriber, const char *const *ids);

/* ClearAll(); returns how many messages it deleted. */
guint64 fixture_clear_all(GDBusConnection *c, const char *endpoint);

/* A property of type t of an endpoint (StoredMessages, StoredBytes); fails
 * the test when it has another type. */
guint64 fixture_endpoint_u64_property(GDBusConnection *c, const char *endpoint, const char *property);

/* The endpoint's StoredMessages. */
guint64 fixture_stored_messages(GDBusConnection *c, const char *endpoint);

/* ---- Errors ---------------------------------------------------------- */

/* Fails the test unless error is the D-Bus error name with a non-empty
 * message that contains needle, the bad value (needle NULL: any non-empty
 * message). A NULL error, a call that succeeded, fails too. The failure
 * names the caller's line and prints both sides. */
#define fixture_assert_dbus_error(error, name, needle) \
        fixture_assert_dbus_error_at(__FILE__, __LINE__, G_STRFUNC, error, name, needle)
void fixture_assert_dbus_error_at(const char *file, int line, const char *func, const GError *error,
                                  const char *name, const char *needle);

/* ---- The service process and the bus --------------------------------- */

/* The PID of the running service, 0 when org.durabus1 has no owner. */
pid_t fixture_service_pid(Fixture *f);

/* Starts the service if it does not run yet (a call activates it) and
 * returns its PID. */
pid_t fixture_start_service(Fixture *f);

/* Sends sig to the service and waits until its process is gone and the bus
 * has dropped its names. */
void fixture_kill_service(Fixture *f, int sig);

/* Iterates the default main context until *flag is TRUE; fails the test
 * after FIXTURE_TIMEOUT_MS. */
void fixture_wait_for(gboolean *flag);

/* Watches name on f->conn: *vanished becomes TRUE, during an iteration of
 * the main context, once name has no owner (at once when it has none now).
 * Returns the watch, for g_bus_unwatch_name(). */
guint fixture_watch_name_vanishing(Fixture *f, const char *name, gboolean *vanished);

/* Waits until name has no owner on the bus. */
void fixture_wait_for_name_to_vanish(Fixture *f, const char *name);

/* Closes a client connection and waits until the bus has announced that its
 * unique name is gone. The bus tells the service (which tracks the names of
 * attached connections) in the same broadcast, before it routes any later
 * call to it, so the next call finds the connection's subscriptions detached
 * and a Subscribe of the same name is not SubscriberBusy. c stays the
 * caller's to unref. */
void fixture_close_connection(Fixture *f, GDBusConnection *c);

/* Waits until process pid has ended (a zombie counts as ended). */
void fixture_wait_for_process_gone(pid_t pid);

/* ---- Numbered messages ----------------------------------------------- */

/* Message i has the id "msg-%04u" and the payload "{\"n\": %u}"; the caller
 * frees each. */
char *fixture_message_id(guint i);
char *fixture_message_payload(guint i);

/* Sends the numbered messages [first, first + n) one at a time; returns
 * their seqs in an array of n guint64, which the caller unrefs. */
GArray *fixture_send_numbered(GDBusConnection *c, const char *endpoint, guint first, guint n);

/* Seq i of such an array; fails the test when it has no seq i. */
guint64 fixture_seq_at(GArray *seqs, guint i);

/* What fixture_send_pipelined() is to do besides sending, and what it saw. */
typedef struct SendBatch {
        pid_t kill_pid;         /* the process to kill... */
        guint kill_after;       /* ...with SIGKILL at this many replies; 0: never, and no Send may fail */
        guint replied;          /* Sends that got their reply */
        guint failed;           /* Sends that got an error */
        gboolean killed;        /* kill_pid was sent SIGKILL */
} SendBatch;

/*
 * Sends the numbered messages [0, n) pipelined, so that a large backlog is
 * stored quickly (the service may group their syncs): up to 100 calls are
 * out at once, each reply issues the next. The private bus keeps
 * dbus-daemon's default limit of 128 pending replies per connection, hence
 * the cap. With batch->kill_after set, the service is killed from the
 * callback of that reply, while the replies of the calls still out are on
 * their way. batch may be NULL. Fails the test when FIXTURE_TIMEOUT_MS pass
 * without an answer to any Send. Returns the seqs in an array of n guint64,
 * 0 where a Send got no reply; the caller unrefs it.
 */
GArray *fixture_send_pipelined(GDBusConnection *c, const char *endpoint, guint n, SendBatch *batch);

/* ---- Collected Message and Messages signals -------------------------- */

/* One message of a Message or Messages signal that reached a connection. */
typedef struct Delivered {
        char *path;             /* the endpoint's object path */
        char *subscriber;
        char *id;
        guint64 seq;
        char *payload;
        guint64 timestamp;
        guint32 delivery_count;
        guint signal_no;        /* 0: a Message signal; n: the collector's nth Messages signal */
} Delivered;

/* Collects the messages of the Message and Messages signals that reach one
 * connection, in the order they came. */
typedef struct Collector {
        GDBusConnection *conn;
        guint subscription, batch_subscription;
        GPtrArray *messages;    /* Delivered * */
        guint n_batches;        /* Messages signals */
} Collector;

/* Starts collecting on c, which the collector keeps a reference to. */
Collector *collector_new(GDBusConnection *c);
void collector_free(Collector *collector);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Collector, collector_free)

/* Waits until at least n messages were collected; fails after the timeout. */
void collector_wait(Collector *collector, guint n);

/* A barrier instead of a sleep: pings the service over the collector's
 * connection and dispatches everything that arrived before the reply. The
 * bus keeps the order of one sender's messages, so afterwards the collector
 * holds every signal the service sent before it answered the ping. */
void collector_sync(Collector *collector);

/* Collected message i, owned by the collector; fails the test when fewer
 * were collected. */
const Delivered *collector_get(Collector *collector, guint i);

/* Acks, from c, the ids of the collected messages [from, to); returns how
 * many of them this call acknowledged. */
guint32 fixture_ack_collected(GDBusConnection *c, const char *endpoint, const char *subscriber,
                              Collector *collector, guint from, guint to);

/* Checks a collected message against numbered message number, sent to
 * endpoint with reply seq, delivered to subscriber for the delivery_count-th
 * time. */
void fixture_assert_delivered(const Delivered *d, const char *endpoint, const char *subscriber, guint number,
                              guint64 seq, guint32 delivery_count);

/* ---- Restarting under clients that activate it ----------------------- */

/* The unique name of the running service's connection; the caller frees
 * it. Fails the test when org.durabus1 has no owner. */
char *fixture_service_unique_name(Fixture *f);

/* Sends sig to the service and waits until its process is gone and the bus
 * has dropped that instance's connection. Unlike fixture_kill_service(),
 * this waits for the instance's unique name, which nobody can own again,
 * rather than for org.durabus1 to have no owner: a client that re-attaches
 * by itself (libdurabus, durabusctl listen) may start a new instance at
 * once, so the name may never be seen without an owner. */
void fixture_stop_service_instance(Fixture *f, int sig);

/* ---- Helpers of the reliability tests -------------------------------- */

/* The unsigned value of the environment variable name, or fallback when it
 * is unset or empty; a value that is not a number in [min, max] fails the
 * test, naming the variable. */
guint64 fixture_env_uint(const char *name, guint64 fallback, guint64 min, guint64 max);

/*
 * A producer: sends the numbered messages [first, first + n) to one
 * endpoint from one connection, pipelined like fixture_send_pipelined()
 * (up to max_in_flight calls out at once, each reply issues the next),
 * while the main context runs. Several producers, on different
 * connections, send at the same time. Every Send must succeed: an error
 * fails the test. The calls have no timeout: whoever runs the main context
 * fails a stall, as producers_wait() does.
 */
typedef struct Producer {
        GDBusConnection *conn;
        char *endpoint;
        char *path;
        guint first;
        guint total;
        guint next;             /* offset of the next message to send */
        guint outstanding;      /* calls in flight */
        guint replied;
        gboolean done;          /* every Send got its reply */
        GArray *seqs;           /* guint64: the seq of message first + i at i, 0 until it got its reply */
} Producer;

/* Starts a producer: its first Sends are issued before it returns. c is
 * referenced. max_in_flight is 1 to 100 (the bus allows a connection 128
 * calls awaiting replies). */
Producer *producer_new(GDBusConnection *c, const char *endpoint, guint first, guint n, guint max_in_flight);

/* Frees a producer that is done (or never had a call in flight); accepts
 * NULL. */
void producer_free(Producer *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Producer, producer_free)

/* Iterates the default main context until every producer of the array
 * (Producer *) is done. Fails the test when FIXTURE_TIMEOUT_MS pass without
 * a reply to any of them, however long the whole takes. */
void producers_wait(GPtrArray *producers);
