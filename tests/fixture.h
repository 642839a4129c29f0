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
 */

#include <gio/gio.h>
#include <sys/types.h>

#define DURABUS_NAME "org.durabus1"
#define BROKER_PATH "/org/durabus1"
#define BROKER_IFACE "org.durabus1.Broker"
#define ENDPOINT_IFACE "org.durabus1.Endpoint"

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

/* A further client connection to the private bus; the caller unrefs it. */
GDBusConnection *fixture_connect(Fixture *f);

/* Calls a method of org.durabus1 synchronously. Returns the reply (type
 * reply_type, or NULL to not check) or NULL with error set. */
GVariant *fixture_call(GDBusConnection *c, const char *path, const char *iface, const char *method,
                       GVariant *args, const char *reply_type, GError **error);

/* The same, failing the test on error. */
GVariant *fixture_call_ok(GDBusConnection *c, const char *path, const char *iface, const char *method,
                          GVariant *args, const char *reply_type);

/* Path of an endpoint: "app.jobs" -> "/org/durabus1/endpoint/app/jobs". */
char *fixture_endpoint_path(const char *name);

/* Send(id, payload, {}) on an endpoint; returns the seq, stores the id. */
guint64 fixture_send(GDBusConnection *c, const char *endpoint, const char *id, const char *payload, char **ret_id);

/* The PID of the running service, 0 when org.durabus1 has no owner. */
pid_t fixture_service_pid(Fixture *f);

/* Sends sig to the service and waits until its process is gone and the bus
 * has dropped its names. */
void fixture_kill_service(Fixture *f, int sig);

/* Iterates the default main context until *flag is TRUE; fails the test
 * after FIXTURE_TIMEOUT_MS. */
void fixture_wait_for(gboolean *flag);

/* Collects Message signals that reach one connection. */
typedef struct Delivered {
        char *path;             /* the endpoint's object path */
        char *subscriber;
        char *id;
        guint64 seq;
        char *payload;
        guint64 timestamp;
        guint32 delivery_count;
} Delivered;

typedef struct Collector {
        GDBusConnection *conn;
        guint subscription;
        GPtrArray *messages;    /* Delivered * */
} Collector;

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

const Delivered *collector_get(Collector *collector, guint i);
