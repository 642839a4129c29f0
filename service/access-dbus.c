/* SPDX-License-Identifier: MIT */
#include "access-dbus.h"

#include <errno.h>
#include <glib.h>
#include <string.h>
#include <time.h>

#include "creds.h"
#include "sender.h"
#include "util.h"

/* How long a failed Authenticate waits for its error. A connection's
 * failures are answered one after another, each this long after the last,
 * so that guessing is slow however many calls a connection sends at once. */
#define AUTHENTICATE_FAILURE_DELAY_USEC (500 * 1000)

typedef struct Caller Caller;

/* An Authenticate call whose error waits for the failure delay. */
typedef struct Failure {
        Caller *caller;
        sd_bus_message *call;
        sd_event_source *timer;
} Failure;

struct Caller {
        Context *context;
        char *name;             /* the connection's name (sender.h) */
        Identity identity;
        bool trusted;
        bool *granted;          /* per client of the policy: its rights apply */
        bool authenticated;     /* some of them were proved with a token */
        bool refusal_logged;
        bool failure_logged;
        sd_bus_track *track;    /* NULL for a direct connection, which direct-dbus.c watches */
        uint64_t failures_until; /* CLOCK_MONOTONIC: when the last failure waiting is answered */
        GPtrArray *failures;    /* Failure *, owned */
};

static void failure_free(Failure *f) {
        sd_event_source_disable_unref(f->timer);
        sd_bus_message_unref(f->call);
        free(f);
}

static void caller_free(Caller *caller) {
        if (caller->authenticated)
                caller->context->n_authenticated--;
        g_ptr_array_unref(caller->failures);
        sd_bus_track_unref(caller->track);
        identity_done(&caller->identity);
        free(caller->granted);
        free(caller->name);
        free(caller);
}

void access_dbus_init(Context *c) {
        c->callers = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify) caller_free);
}

static int reply_failure(Failure *f) {
        return sd_bus_reply_method_errorf(f->call, SD_BUS_ERROR_ACCESS_DENIED,
                                          "Authentication failed: the token is not accepted");
}

void access_dbus_done(Context *c) {
        GHashTableIter i;
        Caller *caller;

        if (!c->callers)
                return;

        /* Nobody goes without an answer, not even at exit. */
        g_hash_table_iter_init(&i, c->callers);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &caller))
                for (guint k = 0; k < caller->failures->len; k++)
                        (void) reply_failure(g_ptr_array_index(caller->failures, k));

        g_hash_table_destroy(c->callers);
        c->callers = NULL;
}

bool access_dbus_busy(Context *c) {
        return c->n_authenticated > 0;
}

static int on_caller_gone(sd_bus_track *track, void *userdata) {
        Caller *caller = userdata;

        g_hash_table_remove(caller->context->callers, caller->name);
        return 0;
}

/* "pid 1234, /usr/bin/foo", "pid 1234, flatpak app org.example.Notes": who
 * a caller is, for log lines. */
static char *describe(const Identity *id) {
        if (id->sandbox == SANDBOX_NONE)
                return g_strdup_printf("pid %d, uid %u, %s", (int) id->pid, (unsigned) id->uid,
                                       id->exe ? id->exe : "executable unknown");
        return g_strdup_printf("pid %d, uid %u, %s app %s", (int) id->pid, (unsigned) id->uid,
                               sandbox_to_string(id->sandbox), id->app_id ? id->app_id : "of unknown id");
}

/* The facts of the bus about the sender of m: its credentials as the bus
 * took them from its socket when it connected, never from /proc, which
 * could by now describe another process. */
static int query_bus_facts(sd_bus_message *m, sd_bus_creds **ret_creds, CredsFacts *facts) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_SELINUX_CONTEXT,
                                      &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &facts->uid);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_pid(creds, &facts->pid);
        if (r < 0)
                return r;
        /* The bus reports the label of a process under an LSM (AppArmor:
         * "snap.firefox.firefox (enforce)"); none without. */
        if (sd_bus_creds_get_selinux_context(creds, &facts->security_label) < 0)
                facts->security_label = NULL;

        *ret_creds = TAKE_PTR(creds);
        return 0;
}

static int caller_new(Context *c, sd_bus_message *m, Caller **ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
        _cleanup_(freep) char *who = NULL;
        Caller *caller;
        CredsFacts facts = {};
        int r;

        caller = calloc(1, sizeof(Caller));
        if (!caller)
                return -ENOMEM;
        caller->context = c;
        caller->failures = g_ptr_array_new_with_free_func((GDestroyNotify) failure_free);
        caller->name = strdup(sender_name(m));
        r = caller->name ? 0 : -ENOMEM;
        /* The watch goes out before the question of the credentials, and
         * the bus answers in order: a connection that leaves after the
         * answer is seen leaving, one that left before has no answer. */
        if (r >= 0)
                r = sd_bus_track_new(c->bus, &caller->track, on_caller_gone, caller);
        if (r >= 0)
                r = sd_bus_track_add_name(caller->track, caller->name);
        if (r >= 0)
                r = query_bus_facts(m, &creds, &facts);
        /* What cannot be read of /proc leaves the sandbox unknown, which
         * creds_classify() never trusts. */
        if (r >= 0)
                (void) creds_read_proc("/proc", facts.pid, &facts, &storage);
        if (r >= 0)
                r = creds_classify(&facts, &caller->identity);
        if (r >= 0) {
                caller->granted = calloc(c->policy.n_clients + 1, sizeof(bool));
                r = caller->granted ? 0 : -ENOMEM;
        }
        if (r < 0) {
                caller_free(caller);
                return r;
        }
        g_hash_table_insert(c->callers, caller->name, caller);

        caller->trusted = policy_trusts(&c->policy, &caller->identity, c->uid);
        for (size_t i = 0; i < c->policy.n_clients; i++)
                caller->granted[i] = policy_client_matches(&c->policy.clients[i], &caller->identity);

        who = describe(&caller->identity);
        log_debug("Caller %s is %s, %s", caller->name, who ? who : "?", caller->trusted ? "trusted" : "not trusted");
        *ret = caller;
        return 0;
}

/* The caller that sent m, looked up once per connection. A direct
 * connection got its caller when it was opened; one without is refused. */
static int caller_get(Context *c, sd_bus_message *m, Caller **ret) {
        const char *sender = sender_name(m);
        Caller *caller;

        if (!sender)
                return -EPERM;

        caller = g_hash_table_lookup(c->callers, sender);
        if (caller) {
                *ret = caller;
                return 0;
        }
        if (sd_bus_message_get_bus(m) != c->bus)
                return -EPERM;
        return caller_new(c, m, ret);
}

/* Whether caller holds a right on some endpoint. */
static bool caller_holds_rights(Context *c, const Caller *caller) {
        if (caller->trusted)
                return true;
        for (size_t i = 0; i < c->policy.n_clients; i++)
                if (caller->granted[i] && policy_client_holds_rights(&c->policy.clients[i]))
                        return true;
        return false;
}

/* A caller of the name name that is what from is and holds the rights it
 * holds now; its failures and its log flags start afresh. */
static int caller_copy(Context *c, const Caller *from, const char *name, Caller **ret) {
        Caller *caller;
        int r;

        caller = calloc(1, sizeof(Caller));
        if (!caller)
                return -ENOMEM;
        caller->context = c;
        caller->failures = g_ptr_array_new_with_free_func((GDestroyNotify) failure_free);
        caller->name = strdup(name);
        caller->granted = calloc(c->policy.n_clients + 1, sizeof(bool));
        r = caller->name && caller->granted ? identity_copy(&from->identity, &caller->identity) : -ENOMEM;
        if (r < 0) {
                caller_free(caller);
                return r;
        }

        caller->trusted = from->trusted;
        memcpy(caller->granted, from->granted, c->policy.n_clients * sizeof(bool));
        /* Its proofs are its own from now on: it keeps the service from
         * exiting when idle as long as it lives, as the bus connection's do. */
        if (from->authenticated) {
                caller->authenticated = true;
                c->n_authenticated++;
        }

        *ret = caller;
        return 0;
}

int access_dbus_copy_caller(Context *c, sd_bus_message *m, const char *name, sd_bus_error *error) {
        Caller *from, *caller;
        int r;

        r = caller_get(c, m, &from);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not allowed to open a direct connection: the bus cannot tell who this "
                                         "connection is (%s)",
                                         strerror(-r));
        if (!caller_holds_rights(c, from))
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not allowed to open a direct connection: connection '%s' holds no right "
                                         "on any endpoint",
                                         from->name);

        r = caller_copy(c, from, name, &caller);
        if (r < 0)
                return r;
        g_hash_table_insert(c->callers, caller->name, caller);
        log_debug("Direct connection %s has the rights of %s", caller->name, from->name);
        return 0;
}

void access_dbus_forget(Context *c, const char *name) {
        if (c->callers)
                g_hash_table_remove(c->callers, name);
}

static unsigned caller_rights(Context *c, const Caller *caller, const char *endpoint) {
        unsigned rights = 0;

        if (caller->trusted)
                return RIGHT_PUBLISH | RIGHT_SUBSCRIBE | RIGHT_ADMIN;

        for (size_t i = 0; i < c->policy.n_clients; i++)
                if (caller->granted[i])
                        rights |= policy_client_rights(&c->policy.clients[i], endpoint);
        return rights;
}

static const char *rights_to_string(unsigned rights) {
        switch (rights) {
        case RIGHT_PUBLISH:
                return "publish";
        case RIGHT_SUBSCRIBE:
                return "subscribe";
        case RIGHTS_MANAGE:
                return "publish or admin";
        default:
                return "needed";
        }
}

int access_dbus_check(Context *c, sd_bus_message *m, const char *endpoint, unsigned rights, const char *what,
                      sd_bus_error *error) {
        _cleanup_(freep) char *who = NULL;
        Caller *caller;
        int r;

        r = caller_get(c, m, &caller);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "Not allowed to %s endpoint '%s': the bus cannot tell who this "
                                         "connection is (%s)",
                                         what, endpoint, strerror(-r));

        if (caller_rights(c, caller, endpoint) & rights)
                return 0;

        /* Once per connection: a client looping on a refused call must not
         * flood the journal. */
        if (!caller->refusal_logged) {
                caller->refusal_logged = true;
                who = describe(&caller->identity);
                log_warning("Refused %s (%s) to %s endpoint '%s': the %s right is missing; further refusals of "
                            "this connection are not logged",
                            caller->name, who ? who : "?", what, endpoint, rights_to_string(rights));
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                 "Not allowed to %s endpoint '%s': the %s right is missing", what, endpoint,
                                 rights_to_string(rights));
}

bool access_dbus_may_see(Context *c, sd_bus_message *m, const char *endpoint) {
        Caller *caller;

        return m && caller_get(c, m, &caller) >= 0 && caller_rights(c, caller, endpoint) != 0;
}

static int on_failure_delay(sd_event_source *s, uint64_t usec, void *userdata) {
        Failure *f = userdata;
        int r;

        r = reply_failure(f);
        if (r < 0)
                log_warning("Failed to answer an Authenticate call of %s: %s", f->caller->name, strerror(-r));
        g_ptr_array_remove(f->caller->failures, f);
        return 0;
}

/* Answers a failed Authenticate once the failure delay has passed. */
static int delay_failure(Context *c, Caller *caller, sd_bus_message *m) {
        _cleanup_(freep) char *who = NULL;
        Failure *f;
        uint64_t at;
        int r;

        at = MAX(now_usec(CLOCK_MONOTONIC), caller->failures_until) + AUTHENTICATE_FAILURE_DELAY_USEC;

        f = calloc(1, sizeof(Failure));
        if (!f)
                return -ENOMEM;
        f->caller = caller;
        f->call = sd_bus_message_ref(m);
        /* Accuracy 1 µs: 0 would be sd-event's default of 250 ms. */
        r = sd_event_add_time(c->event, &f->timer, CLOCK_MONOTONIC, at, 1, on_failure_delay, f);
        if (r < 0) {
                failure_free(f);
                return r;
        }
        g_ptr_array_add(caller->failures, f);
        caller->failures_until = at;

        /* The token itself is never logged. */
        if (!caller->failure_logged) {
                caller->failure_logged = true;
                who = describe(&caller->identity);
                log_warning("Authentication of %s (%s) failed; further failures of this connection are not logged",
                            caller->name, who ? who : "?");
        }
        /* Handled: the error follows the delay. */
        return 1;
}

int access_dbus_method_authenticate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Context *c = userdata;
        _cleanup_(freep) size_t *found = NULL;
        const char *token;
        Caller *caller;
        size_t size, n = 0;
        int r;

        r = sd_bus_message_read(m, "s", &token);
        if (r < 0)
                return r;

        r = caller_get(c, m, &caller);
        if (r < 0)
                return r;

        found = calloc(c->policy.n_clients + 1, sizeof(size_t));
        if (!found)
                return -ENOMEM;

        /* A token too long to be one of ours fails like any other wrong one. */
        size = strlen(token);
        if (size <= POLICY_TOKEN_MAX)
                n = policy_find_token(&c->policy, token, size, found);
        if (n == 0)
                return delay_failure(c, caller, m);

        for (size_t i = 0; i < n; i++) {
                if (!caller->granted[found[i]])
                        log_info("Connection %s authenticated as client '%s'", caller->name,
                                 c->policy.clients[found[i]].name);
                caller->granted[found[i]] = true;
        }
        if (!caller->authenticated) {
                caller->authenticated = true;
                c->n_authenticated++;
        }

        return sd_bus_reply_method_return(m, NULL);
}
