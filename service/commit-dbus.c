/* SPDX-License-Identifier: MIT */
#include "commit-dbus.h"

#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sender.h"
#include "util.h"

typedef struct Held {
        Endpoint *endpoint;
        sd_bus_message *call;
        sd_bus_message *reply;
        uint64_t undo_seq;
        uint64_t n_undo;
} Held;

/* The longest a held reply waits while the bus never runs dry: under steady
 * traffic the idle-priority commit could otherwise be put off for good. */
#define COMMIT_MAX_DELAY_USEC (50 * 1000)

struct Committer {
        sd_event_source *source;
        sd_event_source *deadline;      /* runs a commit the idle source keeps missing */
        committed_fn committed;
        void *userdata;
        GPtrArray *held;        /* Held *, in arrival order */
        GPtrArray *dirty;       /* Endpoint *, each once */
};

static void held_free(gpointer p) {
        Held *h = p;

        sd_bus_message_unref(h->call);
        sd_bus_message_unref(h->reply);
        free(h);
}

static int schedule(Committer *c) {
        int r, armed;

        r = sd_event_source_set_enabled(c->source, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;

        /* The deadline counts from the first work of a round, not the last. */
        r = sd_event_source_get_enabled(c->deadline, &armed);
        if (r < 0 || armed)
                return r;
        r = sd_event_source_set_time_relative(c->deadline, COMMIT_MAX_DELAY_USEC);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(c->deadline, SD_EVENT_ONESHOT);
}

static int on_defer(sd_event_source *s, void *userdata) {
        committer_run(userdata);
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        committer_run(userdata);
        return 0;
}

int committer_new(sd_event *event, committed_fn committed, void *userdata, Committer **ret) {
        _cleanup_(committer_freep) Committer *c = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;

        c->committed = committed;
        c->userdata = userdata;
        c->held = g_ptr_array_new_with_free_func(held_free);
        c->dirty = g_ptr_array_new();

        r = sd_event_add_defer(event, &c->source, on_defer, c);
        if (r < 0)
                return r;

        /* Idle priority: it runs only once the bus has no message left to
         * dispatch, so everything that arrived together shares one sync. */
        r = sd_event_source_set_priority(c->source, SD_EVENT_PRIORITY_IDLE);
        if (r < 0)
                return r;

        r = sd_event_source_set_enabled(c->source, SD_EVENT_OFF);
        if (r < 0)
                return r;

        r = sd_event_add_time_relative(event, &c->deadline, CLOCK_MONOTONIC, COMMIT_MAX_DELAY_USEC, 0, on_deadline,
                                       c);
        if (r < 0)
                return r;

        r = sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

Committer *committer_free(Committer *c) {
        if (!c)
                return NULL;

        committer_run(c);
        sd_event_source_disable_unref(c->source);
        sd_event_source_disable_unref(c->deadline);
        g_ptr_array_unref(c->held);
        g_ptr_array_unref(c->dirty);
        free(c);
        return NULL;
}

void committer_freep(Committer **c) {
        committer_free(*c);
}

int committer_touch(Committer *c, Endpoint *e) {
        if (!g_ptr_array_find(c->dirty, e, NULL))
                g_ptr_array_add(c->dirty, e);

        return schedule(c);
}

int committer_hold(Committer *c, Endpoint *e, sd_bus_message *call, sd_bus_message *reply, uint64_t undo_seq,
                   uint64_t n_undo) {
        Held *h;

        h = malloc(sizeof(*h));
        if (!h)
                return -ENOMEM;

        *h = (Held) {
                .endpoint = e,
                .call = sd_bus_message_ref(call),
                .reply = sd_bus_message_ref(reply),
                .undo_seq = undo_seq,
                .n_undo = n_undo,
        };
        g_ptr_array_add(c->held, h);

        return committer_touch(c, e);
}

bool committer_busy(Committer *c) {
        return c->held->len > 0 || c->dirty->len > 0;
}

static bool holds_for(GPtrArray *held, Endpoint *e) {
        for (guint i = 0; i < held->len; i++)
                if (((Held *) g_ptr_array_index(held, i))->endpoint == e)
                        return true;
        return false;
}

/* The call's messages may be in the file but were not synced: take them
 * back, newest first, so what the caller is told (not stored) is true, also
 * after a crash. */
static void undo(Held *h) {
        int r;

        r = endpoint_unsend(h->endpoint, h->undo_seq, h->n_undo);
        if (r < 0)
                log_error("Failed to take back messages %" PRIu64 " to %" PRIu64 " of endpoint '%s': %s",
                          h->undo_seq, h->undo_seq + h->n_undo - 1, h->endpoint->name, strerror(-r));
}

static void answer(Held *h, int commit_result) {
        int r;

        if (commit_result >= 0) {
                r = sd_bus_send(NULL, h->reply, NULL);
                if (r < 0)
                        log_warning("Failed to send a reply to %s: %s", sender_name(h->call), strerror(-r));
                return;
        }

        r = sd_bus_reply_method_errorf(h->call, DURABUS_ERROR_STORAGE_FAILED,
                                       "Failed to write endpoint '%s' to stable storage: %s", h->endpoint->name,
                                       strerror(-commit_result));
        if (r < 0)
                log_warning("Failed to send an error reply to %s: %s", sender_name(h->call), strerror(-r));
}

void committer_run(Committer *c) {
        g_autoptr(GPtrArray) held = NULL, dirty = NULL;
        g_autoptr(GHashTable) failed = NULL;

        if (!committer_busy(c))
                return;

        /* This round is the one either trigger asked for. */
        (void) sd_event_source_set_enabled(c->source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);

        /* Take the work: what the hooks below add belongs to the next round. */
        held = TAKE_PTR(c->held);
        dirty = TAKE_PTR(c->dirty);
        c->held = g_ptr_array_new_with_free_func(held_free);
        c->dirty = g_ptr_array_new();
        failed = g_hash_table_new(g_direct_hash, g_direct_equal);

        for (guint i = 0; i < dirty->len; i++) {
                Endpoint *e = g_ptr_array_index(dirty, i);
                int r;

                r = endpoint_commit(e, holds_for(held, e));
                if (r < 0) {
                        log_error("Failed to commit endpoint '%s': %s", e->name, strerror(-r));
                        g_hash_table_insert(failed, e, GINT_TO_POINTER(r));
                }
        }

        /* Newest first: each message taken back is then the highest one
         * stored, so no gap opens below a message still in the file, which
         * a repair after a crash could not see past (endpoint.c). */
        for (guint i = held->len; i > 0; i--) {
                Held *h = g_ptr_array_index(held, i - 1);
                if (g_hash_table_contains(failed, h->endpoint))
                        undo(h);
        }

        for (guint i = 0; i < held->len; i++) {
                Held *h = g_ptr_array_index(held, i);
                answer(h, GPOINTER_TO_INT(g_hash_table_lookup(failed, h->endpoint)));
        }

        for (guint i = 0; i < dirty->len; i++) {
                Endpoint *e = g_ptr_array_index(dirty, i);

                /* A failed endpoint keeps its changes marked dirty: the next
                 * commit, whatever brings it, tries again. Retrying right
                 * away would only spin on a disk that keeps failing. */
                if (!g_hash_table_contains(failed, e) && c->committed)
                        c->committed(e, c->userdata);
        }
}

void committer_forget(Committer *c, Endpoint *e) {
        committer_run(c);
        (void) g_ptr_array_remove(c->dirty, e);
}
