/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A key/value database file on disk (GDBM). The only module that knows GDBM:
 * everything above it sees byte strings and negative errno values.
 *
 * Every database carries a format-version record, written at creation and
 * checked at open. A store_put() or store_delete() that returned has handed
 * its bytes to the kernel (GDBM writes each changed bucket before returning),
 * so it survives the death of the process; only store_sync() makes it
 * survive a power loss.
 *
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
 */

#include <stdbool.h>
#include <stddef.h>

#define STORE_FORMAT_VERSION 1

typedef struct Store Store;

/*
 * Opens the database at path. With create, a missing file is created with
 * the version record (and synced); without, a missing file is -ENOENT.
 * Returns -EPROTONOSUPPORT for a database of another format version,
 * -EBADMSG for a file that is not a durabus database or is damaged, other
 * negative errno values for system failures. *ret_store is set on success only.
 */
int store_open(const char *path, bool create, Store **ret_store);

/* Closes the database without syncing. Accepts NULL, returns NULL. */
Store *store_free(Store *store);
void store_freep(Store **store);

/* Fetches a value: 0 and a newly allocated copy (the caller frees it) with
 * its size, -ENOENT when the key is absent, other negative errno on failure. */
int store_get(Store *store, const void *key, size_t key_size, void **ret_value, size_t *ret_size);

/* 1 when the key is present, 0 when not, negative errno on failure. */
int store_exists(Store *store, const void *key, size_t key_size);

/* Inserts or replaces a value. 0 or negative errno (nothing changed then). */
int store_put(Store *store, const void *key, size_t key_size, const void *value, size_t value_size);

/* Removes a key: 0, -ENOENT when it was absent, other negative errno. */
int store_delete(Store *store, const void *key, size_t key_size);

/* Flushes every change to stable storage (fsync). 0 or negative errno. */
int store_sync(Store *store);

/* Calls f with every key of the database, in GDBM's order, until f returns a
 * negative errno, which is returned. f must not change the database. 0 or
 * negative errno. */
int store_foreach_key(Store *store, int (*f)(const void *key, size_t key_size, void *userdata), void *userdata);

/* What store_recover() did. */
typedef struct StoreRecovery {
        char *damaged_path;             /* where the damaged file is kept, owned */
        bool unreadable;                /* GDBM could not open it: nothing was recovered */
        size_t recovered_records;       /* records GDBM read back */
        size_t failed_records;          /* records GDBM could not read */
        size_t failed_buckets;          /* buckets (of many records) GDBM could not read */
} StoreRecovery;

void store_recovery_done(StoreRecovery *recovery);

/*
 * Replaces the damaged database at path (not open) by what GDBM's own
 * recovery (gdbm_recover()) reads from a copy of it, in a fresh, synced
 * database with the version record. The damaged file is never deleted: it
 * stays as PATH.damaged-TIMESTAMP. A file GDBM cannot open at all is
 * replaced by an empty database. 0 and *ret filled (the caller calls
 * store_recovery_done()), or negative errno with path untouched (a full
 * disk, for one: the copy needs room).
 */
int store_recover(const char *path, StoreRecovery *ret);

/* Rewrites the file to give the space of deleted records back to the file
 * system. 0 or negative errno; the data is unchanged either way. */
int store_reorganize(Store *store);
