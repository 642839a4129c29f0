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

/* Rewrites the file to give the space of deleted records back to the file
 * system. 0 or negative errno; the data is unchanged either way. */
int store_reorganize(Store *store);
