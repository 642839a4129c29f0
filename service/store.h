/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A key/value database file on disk (GDBM). The only module that knows GDBM:
 * everything above it sees byte strings and negative errno values.
 *
 * Every database carries a format-version record, written at creation and
 * checked at open.
 *
 * Crash atomicity. GDBM updates its file in place, several writes per change
 * (bucket, directory, avail block, header), so a process killed between
 * them, or a power cut, can leave it damaged. The store therefore keeps,
 * for a database PATH, three files:
 *   PATH          the live GDBM file, read and written as changes come;
 *   PATH.base     the checkpoint: a synced copy of the live file as it was
 *                 at the last checkpoint, never written in place;
 *   PATH.journal  every change since that checkpoint, as logical records
 *                 (PUT key value, DELETE key, CLEAR), each framed with its
 *                 length and a CRC-32 (journal.h), then OPEN and CLOSE
 *                 records that mark an orderly close.
 * A store_put() or store_delete() that returned has changed the live file
 * and written its record to the journal (so it survives the death of the
 * process); store_sync() fdatasync()s the journal, the only point where a
 * change becomes durable, also across a power loss. When the journal has
 * grown to the size of the live file (4 MiB at least), store_sync() also
 * checkpoints: the live file, synced, is copied (a reflink where the file
 * system has them) to PATH.base.tmp, renamed over PATH.base, and the
 * journal is emptied. store_close() syncs the live file and ends the
 * journal with CLOSE. At open, a journal that ends with CLOSE says the live
 * file is whole, and it is opened as it is, in a time that does not grow
 * with the journal (the CLOSE is found from the end of the file and checked
 * against the journal's head, see journal.h); anything else says the
 * process died with the file open, and the live file is restored: PATH.base
 * is copied over it in place (a live file without CLOSE is never trusted,
 * so a crash in the middle costs nothing, and a full disk has room), and
 * every whole journal record is replayed onto it in order. Records are
 * absolute (what a key holds, not how it changed), so replaying one that
 * the base holds already is harmless.
 * What each crash costs (the models: SQLite's rollback journal and
 * Mosquitto's persist_write.c, which has only the snapshot):
 *   - killed or powered off at any moment: every change before the last
 *     store_sync() that returned is kept, anything after it may or may not
 *     be (a torn journal tail is ignored); the next open copies the base
 *     and replays the journal, so it takes time and room in proportion to
 *     the database;
 *   - in a checkpoint: before the rename, the old base and the full journal
 *     restore the same state; after it, the new base and a journal it holds
 *     already do;
 *   - in a creation: the database is renamed into place whole, last, so
 *     there is none before;
 *   - in a restore: the journal still does not end in CLOSE, so the next
 *     open restores again; in a recovery (store_recover()) the live file is
 *     replaced by a rename only, so the next open starts it again.
 * Disk: about twice the live file (the base is a copy, unless reflinked)
 * plus the journal, at most the size of the live file or 4 MiB beyond a
 * checkpoint, and 64 KiB to 128 KiB allocated ahead of the journal's end
 * (journal.c) so that Acks are still written on a full disk; briefly a
 * third copy during a checkpoint.
 * A database without PATH.base (made before the journal) is opened as it
 * stands and checkpointed at once; one whose journal has no head (made
 * before heads, journal.h) is opened as before, reading the whole journal,
 * and checkpointed at once too, so that later opens are quick.

 * A write that fails half-way (a full disk, an I/O error) leaves GDBM's
 * handle unusable; the store then opens the file again, so reads and later
 * writes go on (see reopen() in store.c). The failed write's own change may
 * be partly in the file: the caller takes it back.
 *
 * Fault injection, only in builds configured with -Dfault_injection=true
 * (which define DURABUS_FAULT_INJECTION; other builds contain none of it).
 * Before each store_open(), store_put(), store_delete() and store_sync() the
 * store reads its rules from the environment variable DURABUS_FAULTS and
 * from the file named by DURABUS_FAULTS_FILE, read again every time so that
 * a test can start and end a fault while the service runs by rewriting the
 * file (write a new one and rename it over, so no read sees half of it).
 * Rules are separated by spaces, newlines or ';'; each is
 *     OP:ERRNO[:after=N][:path=TEXT][:key=C]
 *   OP     open, put, delete or sync
 *   ERRNO  EIO or ENOSPC: the operation returns its negative value without
 *          touching the database
 *   after  the first N operations the rule matches succeed (counted from
 *          when the rules last changed); default 0
 *   path   only databases whose path contains TEXT, e.g. path=/app.jobs.db
 *   key    only records whose key starts with the byte C (record.h: m, i,
 *          s, d), for put and delete
 * Example: DURABUS_FAULTS="put:ENOSPC:after=3:key=m" fails the fourth
 * message write and every one after it. The first rule that applies wins; a
 * malformed rule is logged and ignored.
 * In the same builds, DURABUS_CHECKPOINT_BYTES=N makes a sync checkpoint
 * once the journal has grown by N bytes, whatever the size of the file (for
 * tests that want crashes to hit checkpoints).
 */

#include <stdbool.h>
#include <stddef.h>

#define STORE_FORMAT_VERSION 1

typedef struct Store Store;

/*
 * Opens the database at path. With create, a missing file is created with
 * the version record, synced, and its base and an empty journal; without, a
 * missing file is -ENOENT. An existing database not closed in order is
 * restored from its base and journal first (see above). Returns
 * -EPROTONOSUPPORT for a database of another format version, -EBADMSG for a
 * file that is not a durabus database or is damaged (the base too, when it
 * had to be restored), other negative errno values for system failures.
 * *ret_store is set on success only.
 */
int store_open(const char *path, bool create, Store **ret_store);

/* Closes the database without syncing: at the next open it is restored as
 * after a crash. Accepts NULL, returns NULL. */
Store *store_free(Store *store);
void store_freep(Store **store);

/* Closes the database in order: syncs the journal and the live file, then
 * ends the journal with CLOSE, so that the next open uses the live file as
 * it is. Frees the store in any case. 0 or negative errno (then the next
 * open restores the database, which is correct, only slower). */
int store_close(Store *store);

/* Removes the files of the database at path (not open): the live one first,
 * so that a crash half-way leaves no database, then its base and journal.
 * 0 or negative errno. */
int store_remove(const char *path);

/*
 * An empty database (with its version record) at PATH.new, to be filled and
 * then put in the place of store's with store_replace(). It has no base and
 * no journal of its own; freed without store_replace(), its file is removed.
 * 0 and *ret_fresh, or negative errno.
 */
int store_open_replacement(Store *store, Store **ret_fresh);

/*
 * Replaces the whole content of store by that of *fresh (from
 * store_open_replacement()), durably and atomically: a crash at any moment
 * leaves the old content or the new. The point of no return is a synced
 * journal record of the replacement; then the fresh file is renamed over the
 * live one and checkpointed. On success *fresh is consumed (set to NULL)
 * and 0 returned, also when the rename failed after that point (the store
 * then restores its file from the journal on its next use). Negative errno
 * with both stores unchanged otherwise.
 */
int store_replace(Store *store, Store **fresh);

/* Fetches a value: 0 and a newly allocated copy (the caller frees it) with
 * its size, -ENOENT when the key is absent, other negative errno on failure. */
int store_get(Store *store, const void *key, size_t key_size, void **ret_value, size_t *ret_size);

/* 1 when the key is present, 0 when not, negative errno on failure. */
int store_exists(Store *store, const void *key, size_t key_size);

/* Inserts or replaces a value. 0 or negative errno (nothing changed then). */
int store_put(Store *store, const void *key, size_t key_size, const void *value, size_t value_size);

/* Removes a key: 0, -ENOENT when it was absent, other negative errno. */
int store_delete(Store *store, const void *key, size_t key_size);

/* Makes every change durable: fdatasync()s the journal, and checkpoints when
 * it has grown enough (a failed checkpoint is only logged). 0 or negative
 * errno (the changes stay, the next sync writes them again). */
int store_sync(Store *store);

/* Calls f with every key of the database, in GDBM's order, until f returns a
 * negative errno, which is returned. f must not change the database. 0 or
 * negative errno. */
int store_foreach_key(Store *store, int (*f)(const void *key, size_t key_size, void *userdata), void *userdata);

/* What store_recover() did. */
typedef struct StoreRecovery {
        char *damaged_path;             /* where the damaged file is kept, owned */
        bool from_checkpoint;           /* rebuilt from the base and the journal */
        bool unreadable;                /* GDBM could not open it: nothing was recovered */
        size_t recovered_records;       /* records GDBM read back */
        size_t failed_records;          /* records GDBM could not read */
        size_t failed_buckets;          /* buckets (of many records) GDBM could not read */
} StoreRecovery;

void store_recovery_done(StoreRecovery *recovery);

/*
 * Replaces the damaged database at path (not open) by the best there is to
 * read, in a fresh, synced database with the version record: its base with
 * the journal replayed when the base opens (from_checkpoint), else what
 * GDBM's own recovery (gdbm_recover()) reads from a copy of the live file.
 * The damaged file is never deleted: it stays as PATH.damaged-TIMESTAMP. A
 * file GDBM cannot open at all is replaced by an empty database. The result
 * becomes the new base, with an empty journal. 0 and *ret filled (the
 * caller calls store_recovery_done()), or negative errno with path
 * untouched (a full disk, for one: the copy needs room).
 */
int store_recover(const char *path, StoreRecovery *ret);

/* Rewrites the file to give the space of deleted records back to the file
 * system, and checkpoints it so that the base shrinks too. 0 or negative
 * errno; the data is unchanged either way. */
int store_reorganize(Store *store);
