/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Group commit. A handler that changed an endpoint hands its prepared reply
 * to the committer instead of sending it. Once the event loop has nothing of
 * higher priority left (every message that arrived together was handled),
 * or at the latest 50 ms after the first change of the round when traffic
 * never lets up, the committer writes and syncs each changed endpoint once, then sends the
 * held replies, or StorageFailed errors where the sync failed (after taking
 * back the Sends it covered), then lets the bus layer deliver what became
 * available. So no reply goes out before its sync, and many share one.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "endpoint.h"

typedef struct Committer Committer;

/* Called for each committed endpoint after the replies went out. */
typedef void (*committed_fn)(Endpoint *e, void *userdata);

int committer_new(sd_event *event, committed_fn committed, void *userdata, Committer **ret);
/* Runs a last commit, so no held reply is lost. Accepts NULL, returns NULL. */
Committer *committer_free(Committer *c);
void committer_freep(Committer **c);

/* Holds reply (to call) until e's next commit, taking references to both.
 * The n_undo messages from undo_seq on are those endpoint_send() stored for
 * this call, taken back if the commit fails (n_undo 0: none). 0 or -ENOMEM
 * (nothing held then). */
int committer_hold(Committer *c, Endpoint *e, sd_bus_message *call, sd_bus_message *reply, uint64_t undo_seq,
                   uint64_t n_undo);

/* Schedules a commit of e without a reply to wait for it: state such as
 * delivery progress is written, without a sync of its own. */
int committer_touch(Committer *c, Endpoint *e);

/* Commits everything now. */
void committer_run(Committer *c);

/* Whether anything waits for a commit. */
bool committer_busy(Committer *c);

/* Commits, then drops e from what waits for the next commit: for an
 * endpoint about to be freed. */
void committer_forget(Committer *c, Endpoint *e);
