/* SPDX-License-Identifier: MIT */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "util.h"

/* GDBM grows its bucket cache with the file by default, so the service's
 * memory would grow with the backlog; a fixed cache of 64 buckets (one
 * file-system block each) keeps it flat. */
#define CACHE_BUCKETS 64

#define VERSION_KEY "\0durabus-format"
#define VERSION_KEY_SIZE (sizeof(VERSION_KEY) - 1)

struct Store {
        char *path;
        GDBM_FILE dbf;          /* NULL after a failure left the handle unusable, until reopened */
};

/* ---- fault injection ---- */

#ifdef DURABUS_FAULT_INJECTION
#include <glib.h>

/* The rules last read and how often each matched since; a change of the
 * rules starts every count again. Process-wide, like the environment. */
#define FAULT_RULES_MAX 16
static struct {
        char *rules;
        unsigned matched[FAULT_RULES_MAX];
} faults;

static char *fault_rules_read(void) {
        const char *inline_rules = getenv("DURABUS_FAULTS"), *file = getenv("DURABUS_FAULTS_FILE");
        g_autofree char *contents = NULL;

        if (file)
                (void) g_file_get_contents(file, &contents, NULL, NULL);
        return g_strjoin("\n", inline_rules ? inline_rules : "", contents ? contents : "", NULL);
}

/* Whether one rule (OP:ERRNO[:after=N][:path=S][:key=C]) applies; *ret_error
 * is its errno. A malformed rule is reported and never applies. */
static bool fault_rule_applies(const char *rule, unsigned *matched, const char *op, const char *path,
                               const void *key, size_t key_size, int *ret_error) {
        g_auto(GStrv) fields = g_strsplit(rule, ":", -1);
        unsigned long after = 0;
        int error;

        if (g_strv_length(fields) < 2 || !STR_IN_SET(fields[0], "open", "put", "delete", "sync") ||
            !STR_IN_SET(fields[1], "EIO", "ENOSPC")) {
                log_error("Ignoring the fault rule '%s': expected OP:ERRNO with OP open, put, delete or sync "
                          "and ERRNO EIO or ENOSPC", rule);
                return false;
        }
        error = streq(fields[1], "EIO") ? EIO : ENOSPC;

        for (char **f = fields + 2; *f; f++) {
                if (g_str_has_prefix(*f, "after="))
                        after = strtoul(*f + strlen("after="), NULL, 10);
                else if (g_str_has_prefix(*f, "path=")) {
                        if (!strstr(path, *f + strlen("path=")))
                                return false;
                } else if (g_str_has_prefix(*f, "key=") && strlen(*f) == strlen("key=") + 1) {
                        if (key_size == 0 || ((const char *) key)[0] != (*f)[strlen("key=")])
                                return false;
                } else {
                        log_error("Ignoring the fault rule '%s': unknown field '%s'", rule, *f);
                        return false;
                }
        }

        if (!streq(fields[0], op))
                return false;
        if (*matched < after) {
                (*matched)++;
                return false;
        }
        *ret_error = error;
        return true;
}

/* The injected failure of this operation, or 0. */
static int fault_check(const char *op, const char *path, const void *key, size_t key_size) {
        g_autofree char *rules = NULL;
        g_auto(GStrv) list = NULL;
        unsigned n = 0;
        int error;

        if (!getenv("DURABUS_FAULTS") && !getenv("DURABUS_FAULTS_FILE"))
                return 0;

        rules = fault_rules_read();

        if (!faults.rules || !streq(faults.rules, rules)) {
                g_free(faults.rules);
                faults.rules = g_strdup(rules);
                memset(faults.matched, 0, sizeof(faults.matched));
        }

        list = g_strsplit_set(rules, " \t\n;", -1);
        for (char **rule = list; *rule && n < FAULT_RULES_MAX; rule++) {
                if (!**rule)
                        continue;
                if (fault_rule_applies(*rule, &faults.matched[n++], op, path, key, key_size, &error)) {
                        log_warning("Injected fault: %s of '%s' fails with %s", op, path, strerror(error));
                        return -error;
                }
        }

        return 0;
}

#define FAULT_CHECK(op, path, key, key_size)                                    \
        do {                                                                    \
                int _f_ = fault_check((op), (path), (key), (key_size));         \
                if (_f_ < 0)                                                    \
                        return _f_;                                             \
        } while (0)

#else
#define FAULT_CHECK(op, path, key, key_size) do {} while (0)
#endif

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
        free(store->path);
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

static GDBM_FILE open_file(const char *path, bool create) {
        /* Locking is the caller's: the service holds one lock for the whole
         * state directory, so GDBM's own per-file lock would only add a way
         * to fail. */
        return gdbm_open(path, 0, (create ? GDBM_WRCREAT : GDBM_WRITER) | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
}

/* store_open(); with restore_version, a missing version record is written
 * rather than refused (for a file recovered from a durabus database). */
static int open_store(const char *path, bool create, bool restore_version, Store **ret_store) {
        _cleanup_(store_freep) Store *store = NULL;
        struct stat st;
        bool created;
        int r;

        FAULT_CHECK("open", path, NULL, 0);

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
        store->path = strdup(path);
        if (!store->path)
                return -ENOMEM;

        store->dbf = open_file(path, created);
        if (!store->dbf)
                return errno_from_gdbm(NULL);

        r = bound_memory(store->dbf);
        if (r < 0)
                return r;

        r = check_version(store, created || restore_version);
        if (r < 0)
                return r;

        *ret_store = TAKE_PTR(store);
        return 0;
}

int store_open(const char *path, bool create, Store **ret_store) {
        return open_store(path, create, false, ret_store);
}

/*
 * GDBM marks a handle that failed in the middle of writing (a full disk, an
 * I/O error) as needing recovery and refuses everything after, reads too.
 * Every change before that operation was written to the file when it
 * returned, so dropping the handle and opening the file again brings reads
 * and writes back, with the file as it stands: the failed operation's own
 * change may be in it in part, and its caller takes it back (endpoint.c).
 * When the file does not open, the next operation tries again.
 */
static int reopen(Store *store) {
        GDBM_FILE dbf;
        int r;

        dbf = open_file(store->path, false);
        if (!dbf)
                return errno_from_gdbm(NULL);

        r = bound_memory(dbf);
        if (r < 0) {
                (void) gdbm_close(dbf);
                return r;
        }

        store->dbf = dbf;
        return 0;
}

static int usable(Store *store) {
        return store->dbf ? 0 : reopen(store);
}

/* The errno of the failed operation; drops a handle GDBM gave up on. */
static int failed(Store *store) {
        int r = errno_from_gdbm(store->dbf);

        if (gdbm_needs_recovery(store->dbf)) {
                log_warning("Database '%s' failed in the middle of a write (%s), opening it again", store->path,
                            strerror(-r));
                (void) gdbm_close(store->dbf);
                store->dbf = NULL;
                (void) reopen(store);
        }

        return r;
}

int store_get(Store *store, const void *key, size_t key_size, void **ret_value, size_t *ret_size) {
        datum value;
        int r;

        r = usable(store);
        if (r < 0)
                return r;

        value = gdbm_fetch(store->dbf, datum_of(key, key_size));
        if (!value.dptr)
                return failed(store);

        *ret_value = value.dptr;
        *ret_size = (size_t) value.dsize;
        return 0;
}

int store_exists(Store *store, const void *key, size_t key_size) {
        gdbm_error e;
        int r;

        r = usable(store);
        if (r < 0)
                return r;

        /* gdbm_exists() answers 0 for "absent" and for "failed" alike; only
         * the error state, cleared first, tells them apart. */
        gdbm_clear_error(store->dbf);
        if (gdbm_exists(store->dbf, datum_of(key, key_size)))
                return 1;

        e = gdbm_last_errno(store->dbf);
        if (e == GDBM_NO_ERROR || e == GDBM_ITEM_NOT_FOUND)
                return 0;

        return failed(store);
}

int store_put(Store *store, const void *key, size_t key_size, const void *value, size_t value_size) {
        int r;

        FAULT_CHECK("put", store->path, key, key_size);

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_store(store->dbf, datum_of(key, key_size), datum_of(value, value_size), GDBM_REPLACE) != 0)
                return failed(store);

        return 0;
}

int store_delete(Store *store, const void *key, size_t key_size) {
        int r;

        FAULT_CHECK("delete", store->path, key, key_size);

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_delete(store->dbf, datum_of(key, key_size)) != 0)
                return failed(store);

        return 0;
}

int store_sync(Store *store) {
        int r;

        FAULT_CHECK("sync", store->path, NULL, 0);

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_sync(store->dbf) != 0)
                return failed(store);

        return 0;
}

int store_reorganize(Store *store) {
        int r;

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_reorganize(store->dbf) != 0)
                return failed(store);

        return 0;
}

int store_foreach_key(Store *store, int (*f)(const void *key, size_t key_size, void *userdata), void *userdata) {
        datum key;
        int r;

        r = usable(store);
        if (r < 0)
                return r;

        gdbm_clear_error(store->dbf);
        key = gdbm_firstkey(store->dbf);
        while (key.dptr) {
                _cleanup_(freep) char *current = key.dptr;

                r = f(current, (size_t) key.dsize, userdata);
                if (r < 0)
                        return r;
                key = gdbm_nextkey(store->dbf, datum_of(current, (size_t) key.dsize));
        }

        if (gdbm_last_errno(store->dbf) != GDBM_ITEM_NOT_FOUND && gdbm_last_errno(store->dbf) != GDBM_NO_ERROR)
                return failed(store);
        return 0;
}

/* ---- recovery ---- */

_printf_(2, 3) static void log_recovery_problem(void *data, const char *fmt, ...) {
        _cleanup_(freep) char *problem = NULL;
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&problem, fmt, ap);
        va_end(ap);
        log_warning("Recovering '%s': %s", (const char *) data, k >= 0 ? problem : fmt);
}

/* Rebuilds the database copy at tmp with gdbm_recover(), which reads every
 * bucket it can and writes what it read into a new file renamed over tmp.
 * -EBADMSG when GDBM cannot open the copy at all (its header is gone). */
static int recover_copy(const char *path, const char *tmp, StoreRecovery *ret) {
        gdbm_recovery rcvr = { .errfun = log_recovery_problem, .data = (void *) path };
        GDBM_FILE dbf;
        int r = 0;

        dbf = open_file(tmp, false);
        if (!dbf)
                return errno_from_gdbm(NULL);

        /* Forced: a file that passes GDBM's own check may still hold what
         * made the open fail above it (a record we cannot read). */
        if (gdbm_recover(dbf, &rcvr, GDBM_RCVR_FORCE | GDBM_RCVR_ERRFUN) != 0)
                r = errno_from_gdbm(dbf);
        (void) gdbm_close(dbf);
        if (r < 0)
                return r;

        ret->recovered_records = rcvr.recovered_keys;
        ret->failed_records = rcvr.failed_keys;
        ret->failed_buckets = rcvr.failed_buckets;
        return 0;
}

/* Gives the damaged file a second name, PATH.damaged-TIMESTAMP, that no
 * later step touches. A hard link: the file itself stays where it is until
 * the recovered one is renamed over path, so a crash in between leaves the
 * damaged database in place, to be recovered again at the next start. */
static int keep_damaged(const char *path, char **ret_damaged) {
        char stamp[32];
        struct tm tm;
        time_t now = time(NULL);

        if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
                return -EINVAL;

        for (unsigned n = 1; n < 1000; n++) {
                _cleanup_(freep) char *damaged = NULL;
                int k = n == 1 ? asprintf(&damaged, "%s.damaged-%s", path, stamp) :
                                 asprintf(&damaged, "%s.damaged-%s-%u", path, stamp, n);

                if (k < 0)
                        return -ENOMEM;
                if (link(path, damaged) == 0) {
                        *ret_damaged = TAKE_PTR(damaged);
                        return 0;
                }
                if (errno != EEXIST)
                        return -errno;
        }

        return -EEXIST;
}

int store_recover(const char *path, StoreRecovery *ret) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(freep) char *tmp = NULL, *damaged = NULL;
        StoreRecovery result = {};
        int r;

        if (asprintf(&tmp, "%s.recover", path) < 0)
                return -ENOMEM;

        /* Recovery works on a copy: gdbm_recover() replaces the file it
         * recovers, and the damaged original is to be kept as it is. */
        (void) unlink(tmp);
        r = copy_file(path, tmp);
        if (r >= 0) {
                r = recover_copy(path, tmp, &result);
                if (r == -EBADMSG) {
                        /* Nothing GDBM can read: the endpoint starts again
                         * empty, its old file kept for whoever can do more. */
                        log_error("Database '%s' cannot be opened even for recovery; starting it empty", path);
                        result.unreadable = true;
                        (void) unlink(tmp);
                        r = 0;
                }
        }
        if (r >= 0)
                r = open_store(tmp, true, true, &store);
        if (r >= 0)
                r = store_sync(store);
        store = store_free(store);
        if (r >= 0)
                r = keep_damaged(path, &damaged);
        if (r >= 0)
                r = rename(tmp, path) < 0 ? -errno : 0;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        r = fsync_parent_directory(path);
        if (r < 0)
                log_warning("Failed to sync the directory of '%s': %s", path, strerror(-r));

        result.damaged_path = TAKE_PTR(damaged);
        *ret = result;
        return 0;
}

void store_recovery_done(StoreRecovery *recovery) {
        free(recovery->damaged_path);
        recovery->damaged_path = NULL;
}
