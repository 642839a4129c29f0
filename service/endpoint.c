/* SPDX-License-Identifier: MIT */
#include "endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>
#include <time.h>
#include <unistd.h>

#include "names.h"
#include "util.h"

/* Reorganizing gives the space of deleted records back to the file system;
 * it rewrites the file, so it waits until the endpoint is empty (cheap then)
 * and enough was deleted to be worth it. */
#define REORGANIZE_AFTER_DELETES 1024

static void subscription_destroy(gpointer p) {
        subscription_free(p);
}

int endpoint_new(const char *name, const char *dir, Endpoint **ret) {
        _cleanup_(endpoint_freep) Endpoint *e = NULL;

        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;

        e->durable = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, subscription_destroy);
        e->ephemeral = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, subscription_destroy);
        e->name = strdup(name);
        if (!e->name || names_endpoint_to_path(name, &e->path) < 0 ||
            names_endpoint_to_bus_name(name, &e->bus_name) < 0 || asprintf(&e->db_path, "%s/%s.db", dir, name) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(e);
        return 0;
}

Endpoint *endpoint_free(Endpoint *e) {
        if (!e)
                return NULL;

        if (e->durable)
                g_hash_table_destroy(e->durable);
        if (e->ephemeral)
                g_hash_table_destroy(e->ephemeral);
        subscription_free(e->broadcast);
        store_free(e->store);
        free(e->name);
        free(e->path);
        free(e->bus_name);
        free(e->db_path);
        free(e);
        return NULL;
}

void endpoint_freep(Endpoint **e) {
        endpoint_free(*e);
}

/* ---- records ---- */

static int get_record(Store *store, const RecordKey *key, void **ret, size_t *ret_size) {
        return store_get(store, key->data, key->size, ret, ret_size);
}

static int put_record(Store *store, const RecordKey *key, const void *value, size_t size) {
        return store_put(store, key->data, key->size, value, size);
}

static int delete_record(Store *store, const RecordKey *key) {
        int r = store_delete(store, key->data, key->size);
        return r == -ENOENT ? 0 : r;
}

static int message_exists(Endpoint *e, uint64_t seq) {
        RecordKey key;

        record_key_message(&key, seq);
        return store_exists(e->store, key.data, key.size);
}

static int get_message(Endpoint *e, uint64_t seq, MessageRecord **ret) {
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        size_t size;
        int r;

        record_key_message(&key, seq);
        r = get_record(e->store, &key, &value, &size);
        if (r < 0)
                return r;

        return record_decode_message(value, size, ret);
}

static int lookup_index(Endpoint *e, const char *id, uint64_t *ret_seq) {
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        uint64_t seq;
        size_t size;
        int r;

        record_key_index(&key, id);
        r = get_record(e->store, &key, &value, &size);
        if (r < 0)
                return r;

        r = record_decode_seq(value, size, &seq);
        if (r < 0)
                return r;

        /* An index left behind by a damaged message that was deleted
         * without its id points at nothing: the id is not stored. */
        r = message_exists(e, seq);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;

        *ret_seq = seq;
        return 0;
}

static int put_index(Endpoint *e, const char *id, uint64_t seq) {
        uint8_t value[8];
        RecordKey key;

        record_key_index(&key, id);
        record_encode_seq(seq, value);
        return put_record(e->store, &key, value, sizeof(value));
}

static int write_meta(Endpoint *e, Store *store, const MetaRecord *meta) {
        _cleanup_(freep) void *value = NULL;
        _cleanup_(freep) char **names = NULL;
        MetaRecord m = *meta;
        RecordKey key;
        size_t size;
        int r;

        names = (char **) g_hash_table_get_keys_as_array(e->durable, NULL);
        m.subscribers = names;

        r = record_encode_meta(&m, &value, &size);
        if (r < 0)
                return r;

        record_key_meta(&key);
        return put_record(store, &key, value, size);
}

static int write_current_meta(Endpoint *e, bool clean) {
        MetaRecord meta = {
                .clean = clean,
                .next_seq = e->next_seq,
                .first_seq = e->first_seq,
                .stored_count = e->stored_count,
                .stored_bytes = e->stored_bytes,
        };
        int r;

        r = write_meta(e, e->store, &meta);
        if (r < 0)
                return r;

        e->committed_next_seq = e->next_seq;
        return 0;
}

static int write_upkeep(Endpoint *e, Store *store) {
        UpkeepRecord upkeep = {
                .expiring_from = e->expiring_from,
                .expiring_to = e->expiring_to,
                .discarded = e->discarded,
                .expired = e->expired,
        };
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        size_t size;
        int r;

        r = record_encode_upkeep(&upkeep, &value, &size);
        if (r < 0)
                return r;

        record_key_upkeep(&key);
        return put_record(store, &key, value, size);
}

/* The upkeep record is missing in a database written before limits
 * existed (nothing expires there) and in a new one. A damaged one is
 * replaced: every stored message is then swept once, and the counts start
 * over. */
static int load_upkeep(Endpoint *e) {
        _cleanup_(freep) void *value = NULL;
        UpkeepRecord upkeep = {};
        RecordKey key;
        size_t size;
        int r;

        e->sweep_cursor = e->sweep_due = 0;
        e->upkeep_dirty = false;

        record_key_upkeep(&key);
        r = get_record(e->store, &key, &value, &size);
        if (r >= 0)
                r = record_decode_upkeep(value, size, &upkeep);
        if (r == -EBADMSG) {
                log_warning("Endpoint '%s': its record of expiring and discarded messages is damaged, "
                            "sweeping every stored message once", e->name);
                if (e->stored_count > 0)
                        upkeep = (UpkeepRecord) { .expiring_from = e->first_seq, .expiring_to = e->next_seq - 1 };
                e->upkeep_dirty = true;
        } else if (r < 0 && r != -ENOENT)
                return r;

        e->expiring_from = upkeep.expiring_from;
        e->expiring_to = upkeep.expiring_to;
        e->discarded = upkeep.discarded;
        e->expired = upkeep.expired;
        return 0;
}

/* A message with a time-to-live at seq widens the range the sweep covers. */
static void note_expiring(Endpoint *e, uint64_t seq, uint64_t expires) {
        bool had = e->expiring_from != 0;

        if (!had || seq < e->expiring_from)
                e->expiring_from = seq;
        e->expiring_to = MAX(e->expiring_to, seq);
        if (e->sweep_cursor == 0)
                /* A sweep due at once (0, after an open) stays due. */
                e->sweep_due = had ? MIN(e->sweep_due, expires) : expires;
        else
                e->sweep_next = MIN(e->sweep_next, expires);
        e->upkeep_dirty = true;
}

static int write_subscription(Store *store, const char *name, const SubscriptionRecord *record) {
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        size_t size;
        int r;

        r = record_encode_subscription(record, &value, &size);
        if (r < 0)
                return r;

        record_key_subscription(&key, name);
        return put_record(store, &key, value, size);
}

/* Deletes the delivery counts of s's acknowledged messages, once its
 * acknowledgements are written. What a failure leaves is deleted by the
 * next commit. */
static int delete_stale_counts(Endpoint *e, Subscription *s) {
        RecordKey key;
        int r;

        while (s->stale_counts.n > 0) {
                uint64_t seq = s->stale_counts.items[s->stale_counts.n - 1];

                record_key_delivery(&key, seq, s->name);
                r = delete_record(e->store, &key);
                if (r < 0)
                        return r;
                (void) seqset_remove(&s->stale_counts, seq);
        }
        return 0;
}

static int write_dirty_subscriptions(Endpoint *e) {
        GHashTableIter i;
        Subscription *s;
        int r;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                SubscriptionRecord record = subscription_record_view(s);

                if (s->dirty) {
                        r = write_subscription(e->store, s->name, &record);
                        if (r < 0)
                                return r;
                        s->dirty = false;
                }

                r = delete_stale_counts(e, s);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* ---- open, repair, commit, close ---- */

static int add_durable(Endpoint *e, const char *name, uint64_t floor, Subscription **ret) {
        _cleanup_(subscription_freep) Subscription *s = NULL;
        char *key;
        int r;

        r = subscription_new(name, true, floor, &s);
        if (r < 0)
                return r;

        key = strdup(name);
        if (!key)
                return -ENOMEM;

        s->endpoint = e;
        s->dirty = true;
        g_hash_table_replace(e->durable, key, s);
        if (ret)
                *ret = s;
        TAKE_PTR(s);
        return 0;
}

static int load_subscription(Endpoint *e, const char *name) {
        _cleanup_(subscription_record_done) SubscriptionRecord record = {};
        _cleanup_(freep) void *value = NULL;
        Subscription *s;
        RecordKey key;
        size_t size;
        int r;

        r = add_durable(e, name, e->first_seq, &s);
        if (r < 0)
                return r;

        record_key_subscription(&key, name);
        r = get_record(e->store, &key, &value, &size);
        if (r == -ENOENT) {
                /* The meta record names it but its record was never written:
                 * only damage does that. Starting it over at the oldest
                 * stored message loses nothing. */
                log_warning("Endpoint '%s': subscription '%s' has no record, replaying it from the start",
                            e->name, name);
                s->pending = e->stored_count;
                return 0;
        }
        if (r < 0)
                return r;

        r = record_decode_subscription(value, size, &record);
        if (r < 0)
                return r;

        subscription_load(s, &record);
        s->dirty = false;
        return 0;
}

static int load(Endpoint *e, bool *ret_clean) {
        _cleanup_(meta_record_done) MetaRecord meta = {};
        _cleanup_(freep) void *value = NULL;
        RecordKey key;
        size_t size;
        int r;

        record_key_meta(&key);
        r = get_record(e->store, &key, &value, &size);
        if (r == -ENOENT) {
                /* A new database. Sequence numbers start at 1, so that 0 can
                 * never be taken for a message. */
                e->next_seq = e->first_seq = e->committed_next_seq = 1;
                e->stored_count = e->stored_bytes = 0;
                *ret_clean = true;
                return load_upkeep(e);
        }
        if (r < 0)
                return r;

        r = record_decode_meta(value, size, &meta);
        if (r < 0)
                return r;

        e->next_seq = e->committed_next_seq = meta.next_seq;
        e->first_seq = meta.first_seq;
        e->stored_count = meta.stored_count;
        e->stored_bytes = meta.stored_bytes;

        for (char **name = meta.subscribers; *name; name++) {
                r = load_subscription(e, *name);
                if (r < 0)
                        return r;
        }

        *ret_clean = meta.clean;
        return load_upkeep(e);
}

/*
 * After an unclean close (the process was killed, the machine lost power)
 * the records written since the last commit may be partial, in the order
 * they are written:
 *   - Send writes 'm' then 'i'; counters and subscriptions follow at commit.
 *     So a message may exist beyond next_seq, or lack its index record.
 *   - Deleting a message removes 'i' before 'm'.
 *   - A message above the next_seq of the meta record on disk is deleted
 *     only after that record was brought up to date (delete_message()), so
 *     the messages above it form one run without gaps, which repair finds
 *     by probing upwards.
 *   - The totals and each subscription's pending count may be stale.
 * None of those writes had its reply sent yet. Repair keeps every complete
 * message record (a Send that was stored stays stored), restores missing
 * index records and recounts from the message records.
 */
static int repair(Endpoint *e) {
        uint64_t count = 0, bytes = 0, first = 0, expiring_from = 0, expiring_to = 0;
        GHashTableIter i;
        Subscription *s;
        int r;

        for (;;) {
                r = message_exists(e, e->next_seq);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                e->next_seq++;
        }

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                s->pending = 0;
                s->dirty = true;
        }

        for (uint64_t seq = e->first_seq; seq < e->next_seq; seq++) {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                uint64_t indexed;

                r = get_message(e, seq, &m);
                if (r == -ENOENT)
                        continue;
                if (r == -EBADMSG) {
                        log_error("Endpoint '%s': message %" PRIu64 " is damaged, skipping it", e->name, seq);
                        continue;
                }
                if (r < 0)
                        return r;

                if (first == 0)
                        first = seq;
                if (m->expires) {
                        if (expiring_from == 0)
                                expiring_from = seq;
                        expiring_to = seq;
                }
                count++;
                bytes += strlen(m->id) + m->payload_size;

                r = lookup_index(e, m->id, &indexed);
                if (r == -ENOENT || (r >= 0 && indexed != seq))
                        r = put_index(e, m->id, seq);
                if (r < 0)
                        return r;

                g_hash_table_iter_init(&i, e->durable);
                while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                        if (!subscription_is_acked(s, seq))
                                s->pending++;
        }

        e->first_seq = first > 0 ? first : e->next_seq;
        e->stored_count = count;
        e->stored_bytes = bytes;
        /* Read from the messages themselves: a Send with a time-to-live whose
         * commit the crash cut short is swept too. The counts of discarded
         * and expired messages keep their last committed value. */
        e->expiring_from = expiring_from;
        e->expiring_to = expiring_to;
        e->upkeep_dirty = true;
        log_info("Endpoint '%s' was not closed in order; recounted %" PRIu64 " stored messages", e->name, count);
        return 0;
}

/* ---- damaged databases ---- */

/* What the records of a recovered database say, read without trusting its
 * meta record. */
typedef struct Salvage {
        Endpoint *endpoint;
        GPtrArray *keys;        /* GBytes *, every key of the database */
        uint64_t min_seq, max_seq;
        uint64_t damaged;       /* records that do not decode, deleted */
        GPtrArray *subscribers; /* char *, names of the 's' records */
} Salvage;

static int collect_key(const void *key, size_t key_size, void *userdata) {
        Salvage *salvage = userdata;

        g_ptr_array_add(salvage->keys, g_bytes_new(key, key_size));
        return 0;
}

/* Whether the record under key decodes as what its key says it is; the
 * ones the caller cannot use at all are deleted, so that load() and
 * repair() see only sound records. */
static int check_record(Salvage *salvage, const uint8_t *key, size_t key_size) {
        _cleanup_(meta_record_done) MetaRecord meta = {};
        _cleanup_(subscription_record_done) SubscriptionRecord subscription = {};
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        _cleanup_(freep) void *value = NULL;
        Endpoint *e = salvage->endpoint;
        RecordKey meta_key;
        uint64_t seq;
        uint32_t count;
        size_t size;
        int r;

        r = store_get(e->store, key, key_size, &value, &size);
        if (r < 0)
                return r;

        record_key_meta(&meta_key);
        if (key_size == meta_key.size && memcmp(key, meta_key.data, key_size) == 0)
                r = record_decode_meta(value, size, &meta);
        else if (key[0] == 'm' && key_size == 9) {
                r = record_decode_message(value, size, &m);
                if (r >= 0) {
                        seq = 0;
                        for (size_t i = 1; i < 9; i++)
                                seq = (seq << 8) | key[i];
                        salvage->min_seq = salvage->min_seq ? MIN(salvage->min_seq, seq) : seq;
                        salvage->max_seq = MAX(salvage->max_seq, seq);
                }
        } else if (key[0] == 's' && key_size > 1) {
                g_autofree char *name = g_strndup((const char *) key + 1, key_size - 1);

                /* A subscription whose record is damaged starts over at the
                 * oldest message: it loses nothing, it gets more again. */
                if (names_check_subscriber(name, NULL) >= 0)
                        g_ptr_array_add(salvage->subscribers, g_steal_pointer(&name));
                r = record_decode_subscription(value, size, &subscription);
        } else if (key[0] == 'i')
                /* Repair writes the index of every message again. */
                r = record_decode_seq(value, size, &seq);
        else if (key[0] == 'd')
                r = record_decode_count(value, size, &count);
        else
                return 0;
        if (r != -EBADMSG)
                return r;

        salvage->damaged++;
        r = store_delete(e->store, key, key_size);
        return r == -ENOENT ? 0 : r;
}

static int salvage_records(Endpoint *e, Salvage *salvage) {
        int r;

        r = store_foreach_key(e->store, collect_key, salvage);
        if (r < 0)
                return r;

        /* Checked after the walk: deleting during it would upset GDBM's
         * iteration. */
        for (guint i = 0; i < salvage->keys->len; i++) {
                size_t size;
                const uint8_t *key = g_bytes_get_data(g_ptr_array_index(salvage->keys, i), &size);

                if (size == 0)
                        continue;
                r = check_record(salvage, key, size);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* Loads the state of a recovered database: the meta record where it
 * survived, widened to every message and subscription record found, which
 * repair() then recounts. */
static int load_salvaged(Endpoint *e, Salvage *salvage, uint64_t *ret_expected) {
        bool clean;
        int r;

        r = salvage_records(e, salvage);
        if (r < 0)
                return r;

        r = load(e, &clean);
        if (r < 0)
                return r;
        /* The count of the last commit: what the file should have held. */
        *ret_expected = e->stored_count;

        if (salvage->max_seq > 0) {
                e->next_seq = MAX(e->next_seq, salvage->max_seq + 1);
                e->first_seq = MIN(e->first_seq, salvage->min_seq);
        }
        for (guint i = 0; i < salvage->subscribers->len; i++) {
                const char *name = g_ptr_array_index(salvage->subscribers, i);

                if (!g_hash_table_contains(e->durable, name)) {
                        log_warning("Endpoint '%s': subscription '%s' was lost from the endpoint's state, "
                                    "restoring it", e->name, name);
                        r = load_subscription(e, name);
                        if (r < 0)
                                return r;
                }
        }

        return repair(e);
}

/* Opens the database and loads it, repairing it after an unclean close;
 * with salvage, after a recovery. Leaves the endpoint closed on failure. */
static int open_database(Endpoint *e, Salvage *salvage, uint64_t *ret_expected) {
        bool clean;
        int r;

        r = store_open(e->db_path, true, &e->store);
        if (r < 0)
                return r;

        if (salvage)
                r = load_salvaged(e, salvage, ret_expected);
        else {
                r = load(e, &clean);
                if (r >= 0 && !clean)
                        r = repair(e);
        }
        if (r >= 0)
                r = write_dirty_subscriptions(e);
        if (r >= 0 && e->upkeep_dirty)
                r = write_upkeep(e, e->store);
        if (r >= 0)
                e->upkeep_dirty = false;
        /* From here until endpoint_close() the database is open for writing:
         * a crash in between leaves clean unset. */
        if (r >= 0)
                r = write_current_meta(e, false);
        if (r >= 0)
                r = store_sync(e->store);
        if (r < 0) {
                e->store = store_free(e->store);
                g_hash_table_remove_all(e->durable);
                return r;
        }

        e->dirty = false;
        return 0;
}

/*
 * A database that GDBM or the record decoders call damaged (-EBADMSG, which
 * covers a file GDBM needs to recover) is replaced by what GDBM's recovery
 * reads from a copy (store_recover(), which keeps the damaged file as
 * NAME.db.damaged-TIMESTAMP), then loaded as after an unclean close, with
 * every record checked. Crash scenarios: killed before the recovered file
 * is renamed into place, the damaged one is still there and recovered again
 * at the next open; killed after, the recovered one is opened as any
 * database that was not closed in order (repaired again).
 */
static int recover(Endpoint *e) {
        _cleanup_(store_recovery_done) StoreRecovery recovery = {};
        g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
        g_autoptr(GPtrArray) subscribers = g_ptr_array_new_with_free_func(g_free);
        Salvage salvage = { .endpoint = e, .keys = keys, .subscribers = subscribers };
        uint64_t expected = 0;
        int r;

        log_error("Database of endpoint '%s' is damaged, recovering what GDBM can read of it", e->name);
        r = store_recover(e->db_path, &recovery);
        if (r < 0)
                return log_error_errno(r, "Failed to recover the database of endpoint '%s': %m", e->name);

        r = open_database(e, &salvage, &expected);
        if (r < 0)
                return log_error_errno(r, "Failed to open the recovered database of endpoint '%s': %m", e->name);

        log_error("Endpoint '%s' recovered: %" PRIu64 " messages served, %" PRIu64 " fewer than its last "
                  "committed count; GDBM could not read %zu records and %zu buckets%s, %" PRIu64
                  " damaged records dropped; the damaged database is kept as '%s'",
                  e->name, e->stored_count, expected > e->stored_count ? expected - e->stored_count : 0,
                  recovery.failed_records, recovery.failed_buckets,
                  recovery.unreadable ? " (the whole file was unreadable)" : "", salvage.damaged,
                  recovery.damaged_path);
        return 0;
}

int endpoint_open(Endpoint *e) {
        int r;

        if (e->store)
                return 0;

        r = open_database(e, NULL, NULL);
        if (r == -EBADMSG)
                r = recover(e);
        return r;
}

int endpoint_commit(Endpoint *e, bool sync) {
        int r;

        if (!e->store)
                return 0;

        r = write_dirty_subscriptions(e);
        if (r < 0)
                return r;

        if (e->upkeep_dirty) {
                r = write_upkeep(e, e->store);
                if (r < 0)
                        return r;
                e->upkeep_dirty = false;
        }

        if (e->dirty) {
                r = write_current_meta(e, false);
                if (r < 0)
                        return r;
                e->dirty = false;
        }

        if (e->stored_count == 0 && e->deleted_since_reorganize >= REORGANIZE_AFTER_DELETES) {
                r = store_reorganize(e->store);
                if (r < 0)
                        log_warning("Failed to reorganize the database of endpoint '%s', keeping it as it is: %s",
                                    e->name, strerror(-r));
                e->deleted_since_reorganize = 0;
        }

        return sync ? store_sync(e->store) : 0;
}

int endpoint_close(Endpoint *e) {
        int r;

        if (!e->store)
                return 0;

        r = endpoint_commit(e, false);
        if (r >= 0)
                r = write_current_meta(e, true);
        if (r >= 0)
                r = store_close(TAKE_PTR(e->store));

        e->store = store_free(e->store);
        g_hash_table_remove_all(e->durable);
        g_hash_table_remove_all(e->ephemeral);
        return r;
}

/* ---- messages ---- */

static int advance_first(Endpoint *e) {
        int r;

        if (e->stored_count == 0) {
                e->first_seq = e->next_seq;
                return 0;
        }

        for (;;) {
                r = message_exists(e, e->first_seq);
                if (r != 0)
                        return r < 0 ? r : 0;
                e->first_seq++;
        }
}

/* 1 when a message above seq is stored, 0 when none is, negative errno. */
static int stored_above(Endpoint *e, uint64_t seq) {
        for (uint64_t above = seq + 1; above < e->next_seq; above++) {
                int r = message_exists(e, above);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* Deletes a stored message: the index first (see repair()), then the
 * message. Subscriptions that had not acknowledged it have one less pending.
 * id, when known, finds the index of a message whose record is damaged. */
static int delete_message(Endpoint *e, uint64_t seq, const char *id) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        GHashTableIter i;
        Subscription *s;
        RecordKey key;
        int r;

        r = get_message(e, seq, &m);
        if (r == -EBADMSG)
                log_error("Endpoint '%s': message %" PRIu64 " is damaged, deleting it", e->name, seq);
        else if (r < 0)
                return r;
        else
                id = m->id;

        /* Above the committed next_seq a deletion would leave a gap that
         * repair could not see past: commit the counter first. Not needed
         * when nothing is stored above it, as when the Sends of a failed
         * commit are taken back, newest first, on a disk that may refuse
         * that very write. */
        if (seq >= e->committed_next_seq) {
                r = stored_above(e, seq);
                if (r > 0)
                        r = write_current_meta(e, false);
                if (r < 0)
                        return r;
        }

        if (id) {
                record_key_index(&key, id);
                r = delete_record(e->store, &key);
                if (r < 0)
                        return r;
        }

        record_key_message(&key, seq);
        r = delete_record(e->store, &key);
        if (r < 0)
                return r;

        /* A message deleted before a subscription acknowledged it (it
         * expired or was discarded) leaves nothing of it behind: not its
         * place in the window, not its delivery count. A crash before the
         * count is deleted leaves a record nobody reads, dropped when the
         * subscription is forgotten; so does a failure to delete it, which
         * is not worth failing the deletion of the message for. */
        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                if (!subscription_is_acked(s, seq)) {
                        s->pending--;
                        s->dirty = true;
                        (void) seqset_remove(&s->in_flight, seq);
                        if (seq < s->delivered_upto) {
                                record_key_delivery(&key, seq, s->name);
                                (void) delete_record(e->store, &key);
                        }
                }

        /* The size of a damaged record is unknown; repair recounts it. */
        e->stored_count--;
        if (m)
                e->stored_bytes -= strlen(m->id) + m->payload_size;
        e->deleted_since_reorganize++;
        e->dirty = true;
        return advance_first(e);
}

static bool acked_by_all(Endpoint *e, uint64_t seq) {
        GHashTableIter i;
        Subscription *s;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s))
                if (!subscription_is_acked(s, seq))
                        return false;

        return g_hash_table_size(e->durable) > 0;
}

/* Deletes every stored message that every durable subscription has
 * acknowledged. Without any durable subscription nothing is deleted: those
 * messages wait for the first one. */
static int collect(Endpoint *e) {
        int r;

        if (g_hash_table_size(e->durable) == 0)
                return 0;

        for (uint64_t seq = e->first_seq; seq < e->next_seq; seq++) {
                if (!acked_by_all(e, seq))
                        continue;
                r = message_exists(e, seq);
                if (r > 0)
                        r = delete_message(e, seq, NULL);
                if (r < 0)
                        return r;
        }

        return 0;
}

/* Deletes an expired message, counting it. */
static int expire_message(Endpoint *e, uint64_t seq, const char *id) {
        int r;

        r = delete_message(e, seq, id);
        if (r < 0)
                return r;

        e->expired++;
        e->upkeep_dirty = true;
        return 0;
}

/* Whether the endpoint would be over its limits with that much more. */
static bool over_limits(const Endpoint *e, uint64_t more_messages, uint64_t more_bytes) {
        return (e->limits.max_messages > 0 && e->stored_count + more_messages > e->limits.max_messages) ||
               (e->limits.max_bytes > 0 && e->stored_bytes + more_bytes > e->limits.max_bytes);
}

/* Whether a count went past 1, 10, 100, ...: when a full endpoint logs. */
static bool passed_power_of_ten(uint64_t before, uint64_t after) {
        for (uint64_t p = 1; p <= after; p *= 10) {
                if (before < p)
                        return true;
                if (p > UINT64_MAX / 10)
                        break;
        }
        return false;
}

/* Deletes the oldest messages below keep_seq until the endpoint is within
 * its limits. */
static int discard_oldest(Endpoint *e, uint64_t keep_seq) {
        uint64_t before = e->discarded;
        int r;

        while (over_limits(e, 0, 0) && e->first_seq < keep_seq) {
                uint64_t seq = e->first_seq;

                r = delete_message(e, seq, NULL);
                if (r == -ENOENT) {
                        /* Not stored after all: the counters were off
                         * (repair recounts them); look further. */
                        e->first_seq++;
                        continue;
                }
                if (r < 0)
                        return r;
                e->discarded++;
                e->upkeep_dirty = true;
        }

        /* Logged at the 1st, 10th, 100th... discard: a producer that keeps
         * an endpoint full must not flood the journal. */
        if (passed_power_of_ten(before, e->discarded))
                log_warning("Endpoint '%s' is full (at most %" PRIu64 " messages, %" PRIu64 " bytes; 0 is no limit) "
                            "and discards its oldest messages: %" PRIu64 " discarded so far",
                            e->name, e->limits.max_messages, e->limits.max_bytes, e->discarded);
        return 0;
}

int endpoint_send(Endpoint *e, const char *id, const char *payload, size_t payload_size, uint64_t timestamp,
                  char **ret_id, uint64_t *ret_seq) {
        return endpoint_send_full(e, id, payload, payload_size, timestamp, 0, ret_id, ret_seq);
}

int endpoint_send_full(Endpoint *e, const char *id, const char *payload, size_t payload_size, uint64_t timestamp,
                       uint64_t expires, char **ret_id, uint64_t *ret_seq) {
        char generated[SD_ID128_STRING_MAX];
        _cleanup_(freep) void *value = NULL;
        _cleanup_(freep) char *id_copy = NULL;
        GHashTableIter i;
        Subscription *s;
        RecordKey key;
        uint64_t seq, cost;
        size_t size;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        if (*id) {
                r = lookup_index(e, id, &seq);
                if (r >= 0) {
                        id_copy = strdup(id);
                        if (!id_copy)
                                return -ENOMEM;
                        *ret_id = TAKE_PTR(id_copy);
                        *ret_seq = seq;
                        return 0;
                }
                if (r != -ENOENT)
                        return r;
        } else {
                sd_id128_t uuid;

                r = sd_id128_randomize(&uuid);
                if (r < 0)
                        return r;
                id = sd_id128_to_string(uuid, generated);
        }

        id_copy = strdup(id);
        if (!id_copy)
                return -ENOMEM;

        cost = strlen(id) + payload_size;
        if (e->limits.max_bytes > 0 && cost > e->limits.max_bytes)
                return -EMSGSIZE;
        if (!e->limits.discard_oldest && over_limits(e, 1, cost))
                return -ENOBUFS;

        seq = e->next_seq;
        r = record_encode_message_expiring(timestamp, expires, id, payload, payload_size, &value, &size);
        if (r < 0)
                return r;

        /* A write that failed may still have left its record, in part, in
         * the file (store.h): both are taken back, so neither a later repair
         * nor a lookup of the id finds a message whose Send was refused. */
        record_key_message(&key, seq);
        r = put_record(e->store, &key, value, size);
        if (r >= 0)
                r = put_index(e, id, seq);
        if (r < 0) {
                RecordKey index;

                record_key_index(&index, id);
                (void) delete_record(e->store, &index);
                (void) delete_record(e->store, &key);
                return r;
        }

        if (e->stored_count == 0)
                e->first_seq = seq;
        e->next_seq++;
        e->stored_count++;
        e->stored_bytes += strlen(id) + payload_size;
        e->dirty = true;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                s->pending++;
                s->dirty = true;
        }

        if (expires)
                note_expiring(e, seq, expires);

        /* Stored first, discarded after: a Send that fails to store
         * discards nothing. A crash in between leaves the endpoint over its
         * limits by this message (the next Send discards again); a crash
         * after leaves the oldest discarded, and this message stored or,
         * when the commit did not happen, repaired in (its Send got no
         * reply either way). Once discarded, a message stays discarded also
         * when the commit of this Send fails and takes the Send back. */
        if (e->limits.discard_oldest && over_limits(e, 0, 0)) {
                r = discard_oldest(e, seq);
                if (r < 0) {
                        (void) endpoint_unsend(e, seq, 1);
                        return r;
                }
        }

        *ret_id = TAKE_PTR(id_copy);
        *ret_seq = seq;
        return 1;
}

int endpoint_unsend(Endpoint *e, uint64_t seq, uint64_t n) {
        int ret = 0;

        for (uint64_t i = n; i > 0; i--) {
                int r = delete_message(e, seq + i - 1, NULL);
                if (r < 0 && r != -ENOENT && ret == 0)
                        ret = r;
        }
        return ret;
}

/* Moves the floor over everything acknowledged or no longer stored, so the
 * set of acknowledgements above it stays small. */
static int advance_floor(Endpoint *e, Subscription *s) {
        int r;

        if (s->floor < e->first_seq) {
                s->floor = e->first_seq;
                seqset_drop_below(&s->acked, s->floor);
                s->dirty = true;
        }

        while (s->floor < e->next_seq) {
                if (!seqset_remove(&s->acked, s->floor)) {
                        r = message_exists(e, s->floor);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                break;
                }
                s->floor++;
                s->dirty = true;
        }

        return 0;
}

int endpoint_ack(Endpoint *e, Subscription *s, const char *id) {
        uint64_t seq;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        r = lookup_index(e, id, &seq);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;

        if (subscription_is_acked(s, seq))
                return 0;

        r = seqset_add(&s->acked, seq);
        if (r < 0)
                return r;
        s->pending--;
        s->dirty = true;
        (void) seqset_remove(&s->in_flight, seq);

        /* Its delivery count goes only after the acknowledgement is written
         * (write_dirty_subscriptions()): deleted now, a crash before that
         * would bring the message again with its count reset. */
        if (seq < s->delivered_upto) {
                r = seqset_add(&s->stale_counts, seq);
                if (r < 0)
                        return r;
        }

        if (acked_by_all(e, seq)) {
                r = delete_message(e, seq, id);
                if (r < 0)
                        return r;
        }

        r = advance_floor(e, s);
        if (r < 0)
                return r;

        return 1;
}

int endpoint_clear(Endpoint *e, uint64_t *ret_removed) {
        _cleanup_(store_freep) Store *fresh = NULL;
        GHashTableIter i;
        Subscription *s;
        MetaRecord meta;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        /* A new database holding only the counters and the subscriptions,
         * put in the place of the old one at once (store_replace()): a
         * crash leaves either the old database or the new one, never a
         * half-cleared one. */
        r = store_open_replacement(e->store, &fresh);
        if (r < 0)
                return r;

        meta = (MetaRecord) { .next_seq = e->next_seq, .first_seq = e->next_seq };
        r = write_meta(e, fresh, &meta);

        /* Nothing expires in an empty endpoint; the counts go on. */
        e->expiring_from = e->expiring_to = 0;
        if (r >= 0)
                r = write_upkeep(e, fresh);

        g_hash_table_iter_init(&i, e->durable);
        while (r >= 0 && g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                SubscriptionRecord record = { .floor = e->next_seq, .delivered_upto = e->next_seq };
                r = write_subscription(fresh, s->name, &record);
        }

        if (r >= 0)
                r = store_replace(e->store, &fresh);
        if (r < 0)
                return r;

        *ret_removed = e->stored_count;
        e->first_seq = e->committed_next_seq = e->next_seq;
        e->stored_count = e->stored_bytes = 0;
        e->deleted_since_reorganize = 0;
        e->dirty = false;
        e->upkeep_dirty = false;
        e->sweep_cursor = 0;

        g_hash_table_iter_init(&i, e->durable);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &s)) {
                s->floor = s->delivered_upto = s->cursor = e->next_seq;
                s->pending = 0;
                s->dirty = false;
                seqset_clear(&s->acked);
                seqset_clear(&s->in_flight);
        }

        return 0;
}

/* ---- subscriptions ---- */

int endpoint_durable_subscription(Endpoint *e, const char *name, bool start_new, Subscription **ret) {
        Subscription *s;
        bool first;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        s = g_hash_table_lookup(e->durable, name);
        if (s) {
                *ret = s;
                return 0;
        }

        if (e->limits.max_subscriptions > 0 && g_hash_table_size(e->durable) >= e->limits.max_subscriptions)
                return -ENOBUFS;

        first = g_hash_table_size(e->durable) == 0;
        r = add_durable(e, name, start_new ? e->next_seq : e->first_seq, &s);
        if (r < 0)
                return r;

        s->pending = start_new ? 0 : e->stored_count;
        e->dirty = true;

        /* The first subscription starting with new messages leaves the stored
         * ones to nobody: they are acknowledged by every subscription. */
        if (start_new && first) {
                r = collect(e);
                if (r < 0)
                        return r;
        }

        *ret = s;
        return 1;
}

/* A subscription to the messages sent from now on, of an open endpoint. */
static int new_live_subscription(Endpoint *e, Subscription **ret) {
        Subscription *s;
        int r;

        r = subscription_new("", false, e->next_seq, &s);
        if (r < 0)
                return r;
        s->endpoint = e;
        s->cursor = e->next_seq;

        *ret = s;
        return 0;
}

int endpoint_ephemeral_subscription(Endpoint *e, const char *owner, Subscription **ret) {
        _cleanup_(subscription_freep) Subscription *s = NULL;
        Subscription *found;
        char *key;
        int r;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        found = g_hash_table_lookup(e->ephemeral, owner);
        if (found) {
                *ret = found;
                return 0;
        }

        r = new_live_subscription(e, &s);
        if (r < 0)
                return r;

        key = strdup(owner);
        if (!key)
                return -ENOMEM;
        g_hash_table_replace(e->ephemeral, key, s);

        *ret = TAKE_PTR(s);
        return 1;
}

int endpoint_start_broadcast(Endpoint *e) {
        int r;

        if (e->broadcast)
                return 0;

        r = endpoint_open(e);
        if (r < 0)
                return r;

        return new_live_subscription(e, &e->broadcast);
}

void endpoint_drop_ephemeral(Endpoint *e, const char *owner) {
        g_hash_table_remove(e->ephemeral, owner);
}

int endpoint_forget(Endpoint *e, Subscription *s) {
        gpointer key_owned;
        RecordKey key;
        int r;

        /* The meta record stops naming it before its records go, so a crash
         * in between leaves no subscription without its state. */
        if (!g_hash_table_steal_extended(e->durable, s->name, &key_owned, NULL))
                return -ENOENT;
        r = write_current_meta(e, false);
        if (r < 0) {
                g_hash_table_replace(e->durable, key_owned, s);
                return r;
        }
        free(key_owned);

        for (uint64_t seq = s->floor; r >= 0 && seq < s->delivered_upto; seq++) {
                record_key_delivery(&key, seq, s->name);
                r = delete_record(e->store, &key);
        }
        if (r >= 0) {
                record_key_subscription(&key, s->name);
                r = delete_record(e->store, &key);
        }

        subscription_free(s);
        if (r < 0)
                return r;

        return collect(e);
}

void endpoint_rewind(Endpoint *e, Subscription *s) {
        seqset_clear(&s->in_flight);
        if (s->durable)
                s->cursor = MAX(s->floor, e->first_seq);
        else
                s->cursor = e->next_seq;
}

int endpoint_next_delivery(Endpoint *e, Subscription *s, MessageRecord **ret_message, uint64_t *ret_seq,
                           uint32_t *ret_count) {
        _cleanup_(message_record_freep) MessageRecord *m = NULL;
        _cleanup_(freep) void *value = NULL;
        uint32_t count = 1;
        RecordKey key;
        size_t size;
        uint64_t seq;
        int r;

        if (s->cursor < e->first_seq)
                s->cursor = e->first_seq;

        for (;;) {
                if (s->cursor >= e->next_seq || (s->durable && s->in_flight.n >= s->window))
                        return 0;

                seq = s->cursor;
                if (s->durable && subscription_is_acked(s, seq)) {
                        s->cursor++;
                        continue;
                }

                r = get_message(e, seq, &m);
                if (r == -EBADMSG)
                        log_error("Endpoint '%s': message %" PRIu64 " is damaged, not delivering it", e->name, seq);
                if (r == -ENOENT || r == -EBADMSG) {
                        s->cursor++;
                        continue;
                }
                if (r < 0)
                        return r;

                if (endpoint_expired(m->expires, now_usec(CLOCK_REALTIME))) {
                        r = expire_message(e, seq, m->id);
                        if (r < 0)
                                return r;
                        m = message_record_free(m);
                        s->cursor++;
                        continue;
                }
                break;
        }

        if (s->durable && seq < s->delivered_upto) {
                uint8_t encoded[4];

                /* A redelivery: its count is kept in a record of its own, so
                 * that the first delivery, by far the most common, writes
                 * nothing per message. */
                record_key_delivery(&key, seq, s->name);
                r = get_record(e->store, &key, &value, &size);
                if (r >= 0)
                        r = record_decode_count(value, size, &count);
                if (r < 0 && r != -ENOENT)
                        return r;
                count = (count < UINT32_MAX) ? count + 1 : count;

                record_encode_count(count, encoded);
                r = put_record(e->store, &key, encoded, sizeof(encoded));
                if (r < 0)
                        return r;
        } else if (s->durable) {
                s->delivered_upto = seq + 1;
                s->dirty = true;
        }

        if (s->durable) {
                r = seqset_add(&s->in_flight, seq);
                if (r < 0)
                        return r;
        }

        s->cursor = seq + 1;
        *ret_message = TAKE_PTR(m);
        *ret_seq = seq;
        *ret_count = count;
        return 1;
}

int endpoint_save_subscription(Endpoint *e, Subscription *s) {
        SubscriptionRecord record = subscription_record_view(s);
        int r;

        r = write_subscription(e->store, s->name, &record);
        if (r < 0)
                return r;

        s->dirty = false;
        return 0;
}

int endpoint_remove_files(Endpoint *e) {
        e->store = store_free(e->store);

        return store_remove(e->db_path);
}

/* ---- expiry ---- */

int endpoint_sweep(Endpoint *e, uint64_t now, unsigned budget, uint64_t *ret_due, uint64_t *ret_deleted) {
        uint64_t deleted = 0;
        int r = 0;

        *ret_deleted = 0;
        if (!e->store || e->expiring_from == 0) {
                *ret_due = UINT64_MAX;
                return 0;
        }

        if (e->sweep_cursor == 0) {
                if (now < e->sweep_due) {
                        *ret_due = e->sweep_due;
                        return 0;
                }
                e->sweep_cursor = MAX(e->expiring_from, e->first_seq);
                e->sweep_low = e->sweep_high = 0;
                e->sweep_next = UINT64_MAX;
        }

        for (; budget > 0 && e->sweep_cursor <= e->expiring_to && e->sweep_cursor < e->next_seq; budget--) {
                _cleanup_(message_record_freep) MessageRecord *m = NULL;
                uint64_t seq = e->sweep_cursor++;

                r = get_message(e, seq, &m);
                if (r == -ENOENT || r == -EBADMSG)
                        continue;
                if (r < 0)
                        break;
                if (m->expires == 0)
                        continue;

                if (endpoint_expired(m->expires, now)) {
                        r = expire_message(e, seq, m->id);
                        if (r < 0)
                                break;
                        deleted++;
                        continue;
                }

                if (e->sweep_low == 0)
                        e->sweep_low = seq;
                e->sweep_high = seq;
                e->sweep_next = MIN(e->sweep_next, m->expires);
        }

        *ret_deleted = deleted;
        if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                /* Tried again from the start of the range, later. */
                e->sweep_cursor = 0;
                e->sweep_due = now + 1000000;
                *ret_due = e->sweep_due;
                return r;
        }

        if (e->sweep_cursor <= e->expiring_to && e->sweep_cursor < e->next_seq) {
                *ret_due = now;
                return 1;
        }

        /* One pass done: what is left alive with a time-to-live lies in
         * [sweep_low, sweep_high], the next of them to expire at
         * sweep_next. Sends during the pass widened expiring_to and lowered
         * sweep_next, so they are accounted for. If the process dies before
         * this narrower range is committed, the wider one on disk only
         * costs a longer sweep. */
        if (e->expiring_from != e->sweep_low || e->expiring_to != e->sweep_high)
                e->upkeep_dirty = true;
        e->expiring_from = e->sweep_low;
        e->expiring_to = e->sweep_high;
        e->sweep_cursor = 0;
        e->sweep_due = e->sweep_next;
        *ret_due = e->expiring_from ? e->sweep_due : UINT64_MAX;
        return 0;
}
