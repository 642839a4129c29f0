/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The redo journal of a store (store.c, its only user): an append-only file
 * of logical records, each framed as
 *     u32 length of the body, u32 CRC-32 of the body, body
 * (little-endian), the body being u8 op, u32 key size, key, value. A crash
 * can leave the last record torn (a part of it, or garbage where the file
 * grew); reading stops at the first record whose frame or checksum does not
 * hold, and opening cuts that tail off, so that what is appended next is
 * read back.
 *
 * Records are written to the file as they are appended (they survive the
 * death of the process), and are on stable storage once journal_sync()
 * returned. A write that fails is kept in memory and tried again by the
 * next append or sync, from the same offset, so the file never holds a gap.
 *
 * Opening in time that does not grow with the journal. Every journal begins
 * with its head, an OPEN record whose value is a nonce of
 * JOURNAL_NONCE_SIZE random bytes, drawn anew whenever the journal begins
 * (created, or rewound to 0). journal_append_close() appends a CLOSE whose
 * value is that nonce and the record's own offset in the file (u64). At
 * open, a file that begins with a head and ends with such a CLOSE, its
 * nonce the head's and its offset where it lies, is taken as it is, and
 * nothing between is read; any other file is read whole, as before heads
 * existed. A PUT's payload cannot forge that CLOSE, not knowing the nonce,
 * nor can a CLOSE cut off with an earlier journal, whose nonce was another,
 * and a torn CLOSE does not hold: each of those is read whole, and its last
 * record is not CLOSE.
 * Compatibility: a journal written before heads existed (whose CLOSE and
 * OPEN have empty values) is read whole at every open, and correctly,
 * until it is rewound to 0; journal_has_head() tells it. The version before
 * heads reads a journal with them correctly too: it ignores OPEN and looks
 * at the op of CLOSE only.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum JournalOp {
        JOURNAL_PUT = 1,        /* the key holds the value */
        JOURNAL_DELETE = 2,     /* the key holds nothing */
        JOURNAL_CLEAR = 3,      /* no key holds anything */
        JOURNAL_OPEN = 4,       /* the database is open for writing */
        JOURNAL_CLOSE = 5,      /* the database was closed in order */
} JournalOp;

#define JOURNAL_NONCE_SIZE 16

typedef struct Journal Journal;

/* Called with each record in order; a negative errno stops the reading and
 * is returned. */
typedef int (*journal_record_fn)(JournalOp op, const void *key, size_t key_size, const void *value,
                                 size_t value_size, void *userdata);

/* Opens the journal at path, creating one when missing (its head only), and
 * cuts off a torn tail; a file without a whole record is begun again, with
 * a head. *ret_last is the op of the last whole record found, 0 when there
 * was none. After journal_append_close() this takes the same time whatever
 * the size of the journal; otherwise it reads the whole file. 0 or negative
 * errno; *ret and *ret_last set on success. */
int journal_open(const char *path, Journal **ret, JournalOp *ret_last);

/* Closes the file; what could not be written is dropped. Accepts NULL,
 * returns NULL. */
Journal *journal_free(Journal *j);
void journal_freep(Journal **j);

/* Calls f with every whole record of the journal file at path, in order; a
 * missing file has none. The number of records read or negative errno. */
int journal_read(const char *path, journal_record_fn f, void *userdata);

/* Appends a record and writes it. 0, or -ENOMEM (nothing appended); a
 * failed write is not an error here: journal_sync() reports it. */
int journal_append(Journal *j, JournalOp op, const void *key, size_t key_size, const void *value,
                   size_t value_size);

/* Appends the CLOSE record that the next journal_open() recognizes from the
 * end of the file (see above), and writes it; as journal_append(). */
int journal_append_close(Journal *j);

/* Whether the journal begins with a head, so that a CLOSE appended to it
 * is recognized from the end; false for a journal of the format before
 * heads, until it is rewound to 0, and for one whose head could not be
 * written (a full disk: the journal is whole without it, only slower to
 * open). */
bool journal_has_head(Journal *j);

/* Writes what is not written yet and fdatasync()s. 0 or negative errno (the
 * records stay, for the next try). */
int journal_sync(Journal *j);

/* The size of the journal: what is in the file and what waits for it. */
uint64_t journal_size(Journal *j);

/* Where the next record goes; with journal_rewind(), takes back the records
 * appended since (to drop a change that was not committed). */
uint64_t journal_mark(Journal *j);

/* Cuts the journal back to mark and syncs; at 0 it begins again, empty of
 * changes, with a new head. 0 or negative errno. */
int journal_rewind(Journal *j, uint64_t mark);

/* CRC-32 (IEEE 802.3, as zlib computes it) of size bytes, continuing crc
 * (0 to start). */
uint32_t journal_crc32(uint32_t crc, const void *data, size_t size);
