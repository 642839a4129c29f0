/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpus of fuzz-record: a valid value of every record type,
 * made by the encoders of service/record.c, one file each, into the
 * directory given as the only argument. Run once to make
 * tests/fuzz/corpus/record/; run again after a change of the format:
 *
 *   build-fuzz/tests/fuzz/make-record-corpus tests/fuzz/corpus/record
 */

#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "record.h"
#include "util.h"

static const char *dir;

static void write_seed(const char *name, const void *data, size_t size) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        if (!g_file_set_contents(path, data, (gssize) size, &error)) {
                fprintf(stderr, "%s\n", error->message);
                exit(EXIT_FAILURE);
        }
        printf("%s: %zu bytes\n", path, size);
}

static void write_meta(const char *name, const MetaRecord *meta) {
        _cleanup_(freep) void *data = NULL;
        size_t size;

        if (record_encode_meta(meta, &data, &size) < 0)
                abort();
        write_seed(name, data, size);
}

/* expires 0: a message without a time-to-live (format 1). */
static void write_message(const char *name, uint64_t timestamp, uint64_t expires, const char *id,
                          const char *payload) {
        _cleanup_(freep) void *data = NULL;
        size_t size;

        if (record_encode_message_expiring(timestamp, expires, id, payload, strlen(payload), &data, &size) < 0)
                abort();
        write_seed(name, data, size);
}

static void write_upkeep(const char *name, const UpkeepRecord *u) {
        _cleanup_(freep) void *data = NULL;
        size_t size;

        if (record_encode_upkeep(u, &data, &size) < 0)
                abort();
        write_seed(name, data, size);
}

static void write_subscription(const char *name, const SubscriptionRecord *s) {
        _cleanup_(freep) void *data = NULL;
        size_t size;

        if (record_encode_subscription(s, &data, &size) < 0)
                abort();
        write_seed(name, data, size);
}

int main(int argc, char **argv) {
        g_autofree char *longest_id = g_strnfill(MESSAGE_ID_MAX, 'i');
        g_autofree char *longest_subscriber = g_strnfill(SUBSCRIBER_NAME_MAX, 's');
        char *no_subscribers[] = { NULL };
        char *subscribers[] = { "worker", "audit.log-2", NULL };
        char *longest[] = { longest_subscriber, NULL };
        uint64_t acked[] = { 12, 13, 40 };
        uint8_t seq[8], count[4];

        if (argc != 2) {
                fprintf(stderr, "Usage: %s DIRECTORY\n", argv[0]);
                return EXIT_FAILURE;
        }
        dir = argv[1];

        write_meta("meta-new", &(MetaRecord) { .clean = false, .next_seq = 1, .first_seq = 1,
                                               .subscribers = no_subscribers });
        write_meta("meta-two-subscribers", &(MetaRecord) { .clean = true, .next_seq = 42, .first_seq = 10,
                                                           .stored_count = 32, .stored_bytes = 4096,
                                                           .subscribers = subscribers });
        write_meta("meta-longest-subscriber", &(MetaRecord) { .clean = true, .next_seq = UINT64_MAX,
                                                              .first_seq = UINT64_MAX,
                                                              .subscribers = longest });

        write_message("message-json", 1700000000000000, 0, "order-7", "{\"n\": 7}");
        write_message("message-empty-payload", 0, 0, "x", "");
        write_message("message-longest-id", UINT64_MAX, 0, longest_id, "caf\xc3\xa9");
        write_message("message-expiring", 1700000000000000, 1700000005000000, "ttl-5s", "{}");
        write_message("message-expiring-never", 1700000000000000, UINT64_MAX - 1, "ttl-max", "x");

        write_upkeep("upkeep-none", &(UpkeepRecord) {});
        write_upkeep("upkeep-expiring-and-counted",
                     &(UpkeepRecord) { .expiring_from = 5, .expiring_to = 90, .discarded = 3, .expired = 12 });

        write_subscription("subscription-none-acked", &(SubscriptionRecord) { .floor = 1, .delivered_upto = 1 });
        write_subscription("subscription-acked-above-floor",
                           &(SubscriptionRecord) { .floor = 10, .delivered_upto = 41, .pending = 28,
                                                   .acked = acked, .n_acked = ELEMENTSOF(acked) });

        record_encode_seq(0x0102030405060708, seq);
        write_seed("seq", seq, sizeof(seq));
        record_encode_count(3, count);
        write_seed("count", count, sizeof(count));

        return EXIT_SUCCESS;
}
