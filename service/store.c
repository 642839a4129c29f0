/* SPDX-License-Identifier: MIT */
#include "store.h"

#include <errno.h>
#include <gdbm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

/* GDBM grows its bucket cache with the file by default, so the service's
 * memory would grow with the backlog; a fixed cache of 64 buckets (one
 * file-system block each) keeps it flat. */
#define CACHE_BUCKETS 64

#define VERSION_KEY "\0durabus-format"
#define VERSION_KEY_SIZE (sizeof(VERSION_KEY) - 1)

struct Store {
        GDBM_FILE dbf;
};

/* GDBM reports its own error codes; the ones backed by a system call carry
 * that call's errno. Damage to the file's structure becomes -EBADMSG, so the
 * caller can tell "the disk failed" from "the file is broken". */
static int errno_from_gdbm(GDBM_FILE dbf) {
        gdbm_error e = dbf ? gdbm_last_errno(dbf) : gdbm_errno;

        if (gdbm_check_syserr(e)) {
                int saved = dbf ? gdbm_last_syserr(dbf) : errno;
                return saved > 0 ? -saved : -EIO;
        }

        switch (e) {
        case GDBM_NO_ERROR:
                return -EIO;
        case GDBM_MALLOC_ERROR:
                return -ENOMEM;
        case GDBM_ITEM_NOT_FOUND:
                return -ENOENT;
        case GDBM_CANT_BE_WRITER:
                return -EBUSY;
        case GDBM_BAD_MAGIC_NUMBER:
        case GDBM_EMPTY_DATABASE:
        case GDBM_BYTE_SWAPPED:
        case GDBM_BAD_FILE_OFFSET:
        case GDBM_FILE_EOF:
        case GDBM_NEED_RECOVERY:
        case GDBM_DIR_OVERFLOW:
        case GDBM_BAD_BUCKET:
        case GDBM_BAD_HEADER:
        case GDBM_BAD_AVAIL:
        case GDBM_BAD_HASH_TABLE:
        case GDBM_BAD_DIR_ENTRY:
        case GDBM_BUCKET_CACHE_CORRUPTED:
        case GDBM_BAD_HASH_ENTRY:
                return -EBADMSG;
        default:
                return -EIO;
        }
}

static datum datum_of(const void *data, size_t size) {
        return (datum) { .dptr = (char *) data, .dsize = (int) size };
}

Store *store_free(Store *store) {
        if (!store)
                return NULL;

        if (store->dbf)
                (void) gdbm_close(store->dbf);
        free(store);
        return NULL;
}

void store_freep(Store **store) {
        store_free(*store);
}

static int bound_memory(GDBM_FILE dbf) {
        size_t cache = CACHE_BUCKETS;
        int automatic = 0;

        if (gdbm_setopt(dbf, GDBM_SETCACHEAUTO, &automatic, sizeof(automatic)) != 0 ||
            gdbm_setopt(dbf, GDBM_SETCACHESIZE, &cache, sizeof(cache)) != 0)
                return errno_from_gdbm(dbf);
        return 0;
}

static int check_version(Store *store, bool created) {
        char version[16];
        _cleanup_(freep) void *value = NULL;
        size_t size = 0;
        int r, n;

        n = snprintf(version, sizeof(version), "%d", STORE_FORMAT_VERSION);

        r = store_get(store, VERSION_KEY, VERSION_KEY_SIZE, &value, &size);
        if (r == -ENOENT && created) {
                r = store_put(store, VERSION_KEY, VERSION_KEY_SIZE, version, (size_t) n);
                if (r < 0)
                        return r;
                return store_sync(store);
        }
        if (r == -ENOENT)
                return -EBADMSG;
        if (r < 0)
                return r;

        if (size != (size_t) n || memcmp(value, version, size) != 0)
                return -EPROTONOSUPPORT;

        return 0;
}

int store_open(const char *path, bool create, Store **ret_store) {
        _cleanup_(store_freep) Store *store = NULL;
        struct stat st;
        bool created;
        int r;

        created = stat(path, &st) < 0;
        if (created && errno != ENOENT)
                return -errno;
        if (created && !create)
                return -ENOENT;
        if (!created && st.st_size == 0)
                /* GDBM would treat an empty file as new and write a fresh
                 * database into it; an empty file is damage to report. */
                return -EBADMSG;

        store = calloc(1, sizeof(*store));
        if (!store)
                return -ENOMEM;

        /* Locking is the caller's: the service holds one lock for the whole
         * state directory, so GDBM's own per-file lock would only add a way
         * to fail. */
        store->dbf = gdbm_open(path, 0, (created ? GDBM_WRCREAT : GDBM_WRITER) | GDBM_NOLOCK | GDBM_CLOEXEC,
                               0600, NULL);
        if (!store->dbf)
                return errno_from_gdbm(NULL);

        r = bound_memory(store->dbf);
        if (r < 0)
                return r;

        r = check_version(store, created);
        if (r < 0)
                return r;

        *ret_store = TAKE_PTR(store);
        return 0;
}

int store_get(Store *store, const void *key, size_t key_size, void **ret_value, size_t *ret_size) {
        datum value;

        value = gdbm_fetch(store->dbf, datum_of(key, key_size));
        if (!value.dptr)
                return errno_from_gdbm(store->dbf);

        *ret_value = value.dptr;
        *ret_size = (size_t) value.dsize;
        return 0;
}

int store_exists(Store *store, const void *key, size_t key_size) {
        gdbm_error e;

        /* gdbm_exists() answers 0 for "absent" and for "failed" alike; only
         * the error state, cleared first, tells them apart. */
        gdbm_clear_error(store->dbf);
        if (gdbm_exists(store->dbf, datum_of(key, key_size)))
                return 1;

        e = gdbm_last_errno(store->dbf);
        if (e == GDBM_NO_ERROR || e == GDBM_ITEM_NOT_FOUND)
                return 0;

        return errno_from_gdbm(store->dbf);
}

int store_put(Store *store, const void *key, size_t key_size, const void *value, size_t value_size) {
        if (gdbm_store(store->dbf, datum_of(key, key_size), datum_of(value, value_size), GDBM_REPLACE) != 0)
                return errno_from_gdbm(store->dbf);

        return 0;
}

int store_delete(Store *store, const void *key, size_t key_size) {
        if (gdbm_delete(store->dbf, datum_of(key, key_size)) != 0)
                return errno_from_gdbm(store->dbf);

        return 0;
}

int store_sync(Store *store) {
        if (gdbm_sync(store->dbf) != 0)
                return errno_from_gdbm(store->dbf);

        return 0;
}

int store_reorganize(Store *store) {
        if (gdbm_reorganize(store->dbf) != 0)
                return errno_from_gdbm(store->dbf);

        return 0;
}
