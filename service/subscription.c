/* SPDX-License-Identifier: MIT */
#include "subscription.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int subscription_new(const char *name, bool durable, uint64_t floor, Subscription **ret) {
        _cleanup_(subscription_freep) Subscription *s = NULL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        s->name = strdup(name);
        if (!s->name)
                return -ENOMEM;

        s->durable = durable;
        s->floor = floor;
        s->delivered_upto = floor;
        s->window = SUBSCRIPTION_WINDOW_DEFAULT;

        *ret = TAKE_PTR(s);
        return 0;
}

void subscription_detach(Subscription *s) {
        s->track = sd_bus_track_unref(s->track);
        s->bus = sd_bus_unref(s->bus);
        free(s->owner);
        s->owner = NULL;
        seqset_clear(&s->in_flight);
}

Subscription *subscription_free(Subscription *s) {
        if (!s)
                return NULL;

        subscription_detach(s);
        seqset_clear(&s->acked);
        seqset_clear(&s->stale_counts);
        free(s->name);
        free(s);
        return NULL;
}

void subscription_freep(Subscription **s) {
        subscription_free(*s);
}

bool subscription_is_acked(const Subscription *s, uint64_t seq) {
        return seq < s->floor || seqset_contains(&s->acked, seq);
}

void subscription_load(Subscription *s, SubscriptionRecord *record) {
        seqset_clear(&s->acked);
        s->floor = record->floor;
        s->delivered_upto = record->delivered_upto;
        s->pending = record->pending;
        s->acked = (SeqSet) { .items = record->acked, .n = record->n_acked, .capacity = record->n_acked };
        record->acked = NULL;
        record->n_acked = 0;
}

SubscriptionRecord subscription_record_view(const Subscription *s) {
        return (SubscriptionRecord) {
                .floor = s->floor,
                .delivered_upto = s->delivered_upto,
                .pending = s->pending,
                .acked = s->acked.items,
                .n_acked = s->acked.n,
        };
}
