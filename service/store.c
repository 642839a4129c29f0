/* SPDX-License-Identifier: MIT */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <gdbm.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "journal.h"
#include "util.h"

/* GDBM grows its bucket cache with the file by default, so the service's
 * memory would grow with the backlog; a fixed cache of 64 buckets (one
 * file-system block each) keeps it flat. */
#define CACHE_BUCKETS 64

#define VERSION_KEY "\0durabus-format"
#define VERSION_KEY_SIZE (sizeof(VERSION_KEY) - 1)

struct Store {
        char *path;
        char *base_path;        /* PATH.base */
        char *journal_path;     /* PATH.journal */
        GDBM_FILE dbf;          /* NULL after a failure left the handle unusable, until reopened */
        Journal *journal;       /* NULL in a database without one (a replacement being built) */
        uint64_t checkpoint_at; /* the journal size that calls for the next checkpoint */
        bool restore;           /* the live file is to be restored before it is opened again */
        bool replacement;       /* from store_open_replacement(), not put in place yet */
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
        /* A replacement that was not put in place is of no use to anyone. */
        if (store->replacement)
                (void) unlink(store->path);
        journal_free(store->journal);
        free(store->path);
        free(store->base_path);
        free(store->journal_path);
        free(store);
        return NULL;
}

void store_freep(Store **store) {
        store_free(*store);
}

static int store_alloc(const char *path, Store **ret) {
        _cleanup_(store_freep) Store *store = NULL;

        store = calloc(1, sizeof(*store));
        if (!store)
                return -ENOMEM;
        store->path = strdup(path);
        if (!store->path || asprintf(&store->base_path, "%s.base", path) < 0 ||
            asprintf(&store->journal_path, "%s.journal", path) < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(store);
        return 0;
}

static int bound_memory(GDBM_FILE dbf) {
        size_t cache = CACHE_BUCKETS;
        int automatic = 0;

        if (gdbm_setopt(dbf, GDBM_SETCACHEAUTO, &automatic, sizeof(automatic)) != 0 ||
            gdbm_setopt(dbf, GDBM_SETCACHESIZE, &cache, sizeof(cache)) != 0)
                return errno_from_gdbm(dbf);
        return 0;
}

static GDBM_FILE open_file(const char *path, int mode) {
        /* Locking is the caller's: the service holds one lock for the whole
         * state directory, so GDBM's own per-file lock would only add a way
         * to fail. */
        return gdbm_open(path, 0, mode | GDBM_NOLOCK | GDBM_CLOEXEC, 0600, NULL);
}

/* Opens the GDBM file at path (mode GDBM_WRITER, GDBM_WRCREAT or
 * GDBM_NEWDB) with the store's bounded cache. */
static int open_gdbm(const char *path, int mode, GDBM_FILE *ret) {
        GDBM_FILE dbf;
        int r;

        dbf = open_file(path, mode);
        if (!dbf)
                return errno_from_gdbm(NULL);

        r = bound_memory(dbf);
        if (r < 0) {
                (void) gdbm_close(dbf);
                return r;
        }

        *ret = dbf;
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

/* ---- checkpoint and journal ---- */

/* The journal may grow to the size of the live file (so that the copying of
 * checkpoints costs about as much as the journal's own writes) but to this
 * much at least, so that a small database is not copied at every sync. */
#define CHECKPOINT_MIN_BYTES (4u << 20)

static void plan_checkpoint(Store *store) {
        struct stat st;
        uint64_t live = stat(store->path, &st) == 0 ? (uint64_t) st.st_size : 0;
        uint64_t threshold = MAX(CHECKPOINT_MIN_BYTES, live);

#ifdef DURABUS_FAULT_INJECTION
        /* Tests make checkpoints frequent, so that kills hit them. */
        const char *e = getenv("DURABUS_CHECKPOINT_BYTES");
        if (e)
                threshold = strtoull(e, NULL, 10);
#endif

        store->checkpoint_at = journal_size(store->journal) + threshold;
}

/* Makes base a synced copy of the file at path, through base.tmp and a
 * rename, so that base is always a whole database: the old one or the new. */
static int write_base(const char *path, const char *base) {
        _cleanup_(freep) char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s.tmp", base) < 0)
                return -ENOMEM;

        (void) unlink(tmp);
        r = copy_file(path, tmp);
        if (r >= 0 && rename(tmp, base) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        return fsync_parent_directory(base);
}

/* The file being rebuilt from the base and the journal. */
typedef struct Replay {
        const char *path;
        GDBM_FILE dbf;
} Replay;

static int replay_record(JournalOp op, const void *key, size_t key_size, const void *value, size_t value_size,
                         void *userdata) {
        Replay *replay = userdata;

        switch (op) {
        case JOURNAL_PUT:
                if (gdbm_store(replay->dbf, datum_of(key, key_size), datum_of(value, value_size), GDBM_REPLACE) != 0)
                        return errno_from_gdbm(replay->dbf);
                return 0;
        case JOURNAL_DELETE:
                /* Absent already when the base holds this change. */
                if (gdbm_delete(replay->dbf, datum_of(key, key_size)) != 0 &&
                    gdbm_last_errno(replay->dbf) != GDBM_ITEM_NOT_FOUND)
                        return errno_from_gdbm(replay->dbf);
                return 0;
        case JOURNAL_CLEAR:
                (void) gdbm_close(replay->dbf);
                replay->dbf = NULL;
                return open_gdbm(replay->path, GDBM_NEWDB, &replay->dbf);
        default:
                return 0;
        }
}

/* Makes target (synced) the database the base and the journal describe:
 * the base with every whole record of the journal applied in order. With
 * over, target is an existing file, overwritten in place; else a new one,
 * removed on failure. -EBADMSG when the base is damaged. The number of
 * records replayed or negative errno. */
static int rebuild(const char *base, const char *journal, const char *target, bool over) {
        Replay replay = { .path = target };
        int r, replayed;

        if (!over)
                (void) unlink(target);
        r = over ? copy_file_over(base, target) : copy_file(base, target);
        if (r < 0)
                return r;

        r = open_gdbm(target, GDBM_WRITER, &replay.dbf);
        if (r >= 0)
                r = replayed = journal_read(journal, replay_record, &replay);
        if (r >= 0 && gdbm_sync(replay.dbf) != 0)
                r = errno_from_gdbm(replay.dbf);
        if (replay.dbf)
                (void) gdbm_close(replay.dbf);
        if (r < 0) {
                if (!over)
                        (void) unlink(target);
                return r;
        }

        return replayed;
}

/*
 * Rebuilds the live file, which a crash may have left in any state, to what
 * the base and the journal say it held at the last sync that returned. In
 * place: a live file without CLOSE at the end of its journal is never
 * trusted, so a crash in the middle leaves nothing worse than a crash did,
 * and the next open restores again, to the same result; and a disk that
 * was full has room for it, as the old file's blocks are freed first.
 */
static int restore(Store *store) {
        int r;

        r = rebuild(store->base_path, store->journal_path, store->path, true);
        if (r < 0)
                return r;

        log_info("Database '%s' was not closed in order: restored from its checkpoint and %d journal records",
                 store->path, r);
        return 0;
}

/*
 * GDBM marks a handle that failed in the middle of writing (a full disk, an
 * I/O error) as needing recovery and refuses everything after, reads too.
 * Every change before that operation was written to the file when it
 * returned, so dropping the handle and opening the file again brings reads
 * and writes back, with the file as it stands: the failed operation's own
 * change may be in it in part, and its caller takes it back (endpoint.c).
 * When the file does not open, the next operation tries again. A store
 * whose live file is to be rebuilt (see store_replace()) restores it first.
 */
static int reopen(Store *store) {
        int r;

        if (store->restore) {
                r = restore(store);
                if (r < 0)
                        return r;
                store->restore = false;
        }

        return open_gdbm(store->path, GDBM_WRITER, &store->dbf);
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

/*
 * A checkpoint: the live file, synced, becomes the new base, and the journal
 * starts again empty. Crash scenarios: killed before the rename, the old
 * base and the whole journal are still there; killed after it and before
 * the journal is cut, the new base comes with a journal whose every record
 * it holds already. Replaying those again is harmless: each record says
 * what a key holds (PUT) or that it holds nothing (DELETE, CLEAR), whatever
 * it held before, so applying them twice gives what applying them once did.
 */
static int checkpoint(Store *store) {
        int r;

        if (gdbm_sync(store->dbf) != 0)
                return failed(store);

        r = write_base(store->path, store->base_path);
        if (r < 0)
                return r;

        r = journal_rewind(store->journal, 0);
        if (r < 0)
                return r;

        plan_checkpoint(store);
        return 0;
}

/* A new database, made at PATH.create (its version record, synced, then
 * its base and an empty journal) and renamed into place last, so that a
 * crash leaves either no database or a whole one; the base and journal a
 * crash leaves without it are removed when the name is created again. */
static int create(Store *store) {
        _cleanup_(freep) char *tmp = NULL;
        JournalOp last;
        int r;

        if (asprintf(&tmp, "%s.create", store->path) < 0)
                return -ENOMEM;

        (void) unlink(tmp);
        (void) unlink(store->base_path);
        (void) unlink(store->journal_path);

        r = open_gdbm(tmp, GDBM_NEWDB, &store->dbf);
        if (r >= 0)
                r = check_version(store, true);
        /* Reopened under its own name below: GDBM keeps the name it was
         * opened with, and gdbm_reorganize() renames over it. */
        if (store->dbf)
                (void) gdbm_close(store->dbf);
        store->dbf = NULL;
        if (r >= 0)
                r = write_base(tmp, store->base_path);
        if (r >= 0)
                r = journal_open(store->journal_path, &store->journal, &last);
        if (r >= 0 && rename(tmp, store->path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        r = fsync_parent_directory(store->path);
        if (r < 0)
                return r;

        return open_gdbm(store->path, GDBM_WRITER, &store->dbf);
}

/* An existing database. With a base, the journal tells whether the live
 * file is whole: its last record is CLOSE after an orderly close, and the
 * file is then opened as it is, once an OPEN record is synced after the
 * CLOSE (from here on, a crash must not find CLOSE last); anything else
 * means the process died with the file open, and it is restored. Without a
 * base, the database was made by the version before the journal: opened as
 * it stands (endpoint.c repairs one not closed in order), it gets its first
 * checkpoint at once. A journal of the format before heads, which every
 * open would read whole, is checkpointed at once too, which begins it again
 * with a head; should that fail, it is only slower. */
static int open_existing(Store *store, bool empty) {
        bool migrate;
        JournalOp last;
        int r;

        migrate = access(store->base_path, F_OK) < 0;
        if (migrate && errno != ENOENT)
                return -errno;

        r = journal_open(store->journal_path, &store->journal, &last);
        if (r < 0)
                return r;

        /* GDBM would treat an empty file as new and write a fresh database
         * into it: an empty file that is to be used as it is is damage to
         * report. One that is to be restored is not (a restore killed
         * right after truncating it leaves one). */
        if (empty && (migrate || last == JOURNAL_CLOSE))
                return -EBADMSG;

        if (migrate) {
                /* Emptied first: a journal without its base belongs to no
                 * base that can exist. */
                r = journal_rewind(store->journal, 0);
                if (r < 0)
                        return r;
        } else if (last == JOURNAL_CLOSE) {
                r = journal_append(store->journal, JOURNAL_OPEN, NULL, 0, NULL, 0);
                if (r >= 0)
                        r = journal_sync(store->journal);
                if (r < 0)
                        return r;
        } else {
                r = restore(store);
                if (r < 0)
                        return r;
        }

        r = open_gdbm(store->path, GDBM_WRITER, &store->dbf);
        if (r < 0)
                return r;

        r = check_version(store, false);
        if (r < 0)
                return r;

        if (migrate) {
                log_info("Database '%s' has no checkpoint yet, making its first one", store->path);
                r = checkpoint(store);
                if (r < 0)
                        return r;
        } else if (!journal_has_head(store->journal)) {
                log_info("Journal of '%s' is of the format before heads, checkpointing it", store->path);
                r = checkpoint(store);
                if (r < 0)
                        log_warning("Failed to checkpoint '%s', its journal is read whole at every open: %s",
                                    store->path, strerror(-r));
        }

        return 0;
}

int store_open(const char *path, bool create_missing, Store **ret_store) {
        _cleanup_(store_freep) Store *store = NULL;
        struct stat st;
        bool created;
        int r;

        FAULT_CHECK("open", path, NULL, 0);

        created = stat(path, &st) < 0;
        if (created && errno != ENOENT)
                return -errno;
        if (created && !create_missing)
                return -ENOENT;

        r = store_alloc(path, &store);
        if (r < 0)
                return r;

        r = created ? create(store) : open_existing(store, st.st_size == 0);
        if (r < 0)
                return r;

        plan_checkpoint(store);
        *ret_store = TAKE_PTR(store);
        return 0;
}

/* A database of its own at path, without base or journal: a replacement
 * being built, or a recovered file. With restore_version, a missing version
 * record is written rather than refused (for a file recovered from a
 * durabus database). */
static int open_unjournaled(const char *path, bool create_missing, bool restore_version, Store **ret_store) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        FAULT_CHECK("open", path, NULL, 0);

        r = store_alloc(path, &store);
        if (r < 0)
                return r;

        r = open_gdbm(path, create_missing ? GDBM_WRCREAT : GDBM_WRITER, &store->dbf);
        if (r < 0)
                return r;

        r = check_version(store, create_missing || restore_version);
        if (r < 0)
                return r;

        *ret_store = TAKE_PTR(store);
        return 0;
}

int store_open_replacement(Store *store, Store **ret_fresh) {
        _cleanup_(store_freep) Store *fresh = NULL;
        _cleanup_(freep) char *tmp = NULL;
        int r;

        if (asprintf(&tmp, "%s.new", store->path) < 0)
                return -ENOMEM;

        /* What an interrupted replacement left. */
        (void) unlink(tmp);
        r = open_unjournaled(tmp, true, false, &fresh);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        fresh->replacement = true;
        *ret_fresh = TAKE_PTR(fresh);
        return 0;
}

static int journal_record(const void *key, size_t key_size, void *userdata) {
        Store **stores = userdata;
        _cleanup_(freep) void *value = NULL;
        size_t size;
        int r;

        r = store_get(stores[1], key, key_size, &value, &size);
        if (r < 0)
                return r;

        return journal_append(stores[0]->journal, JOURNAL_PUT, key, key_size, value, size);
}

/*
 * The journal's CLEAR and a PUT of every record of fresh, synced, are the
 * point where the replacement happens: before it, the database is the old
 * one, after, the new one, whatever the files look like. Then the fresh file
 * is renamed over the live one and checkpointed, which only saves replaying
 * those records. Crash scenarios: killed before the sync, the old database
 * is restored (the fresh file, PATH.new, is removed by the next
 * replacement or the broker); after it, a restore replays CLEAR and the new
 * records onto the old base, whether or not the rename happened. A rename
 * that fails after the sync leaves the store to restore its file on its
 * next use, which gives the new database too.
 */
int store_replace(Store *store, Store **fresh) {
        Store *stores[2] = { store, *fresh };
        uint64_t mark;
        int r, k;

        r = store_sync(*fresh);
        if (r < 0)
                return r;

        r = usable(store);
        if (r < 0)
                return r;

        mark = journal_mark(store->journal);
        r = journal_append(store->journal, JOURNAL_CLEAR, NULL, 0, NULL, 0);
        if (r >= 0)
                r = store_foreach_key(*fresh, journal_record, stores);
        if (r >= 0)
                r = journal_sync(store->journal);
        if (r < 0) {
                k = journal_rewind(store->journal, mark);
                if (k < 0)
                        log_error("Failed to take the replacement of '%s' back out of its journal: %s",
                                  store->path, strerror(-k));
                return r;
        }

        (void) gdbm_close(store->dbf);
        store->dbf = NULL;
        (void) gdbm_close((*fresh)->dbf);
        (*fresh)->dbf = NULL;

        if (rename((*fresh)->path, store->path) < 0) {
                log_warning("Failed to rename '%s' over '%s', restoring it from its journal instead: %m",
                            (*fresh)->path, store->path);
                store->restore = true;
        } else {
                (*fresh)->replacement = false;
                k = fsync_parent_directory(store->path);
                if (k < 0)
                        log_warning("Failed to sync the directory of '%s': %s", store->path, strerror(-k));
        }
        *fresh = store_free(*fresh);

        r = usable(store);
        if (r >= 0)
                r = checkpoint(store);
        if (r < 0)
                log_warning("Failed to checkpoint '%s' after its replacement, its journal keeps it: %s",
                            store->path, strerror(-r));
        return 0;
}

int store_close(Store *store) {
        _cleanup_(store_freep) Store *s = store;
        int r;

        r = store_sync(s);
        if (r < 0 || !s->journal)
                return r;

        /* The live file on stable storage before the record that says it
         * is whole. */
        if (gdbm_sync(s->dbf) != 0)
                return failed(s);

        r = journal_append_close(s->journal);
        if (r < 0)
                return r;

        return journal_sync(s->journal);
}

int store_remove(const char *path) {
        _cleanup_(freep) char *base = NULL, *journal = NULL;

        if (asprintf(&base, "%s.base", path) < 0 || asprintf(&journal, "%s.journal", path) < 0)
                return -ENOMEM;

        /* The live file first: without it, what remains is never opened
         * (creating the database again removes it). */
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        if (unlink(base) < 0 && errno != ENOENT)
                return -errno;
        if (unlink(journal) < 0 && errno != ENOENT)
                return -errno;

        return fsync_parent_directory(path);
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

/* Only a change GDBM made is journaled: one it refused is not in the file,
 * and one that failed half-way is taken back by the caller, whose undoing
 * is journaled in turn. */
int store_put(Store *store, const void *key, size_t key_size, const void *value, size_t value_size) {
        int r;

        FAULT_CHECK("put", store->path, key, key_size);

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_store(store->dbf, datum_of(key, key_size), datum_of(value, value_size), GDBM_REPLACE) != 0)
                return failed(store);

        return store->journal ? journal_append(store->journal, JOURNAL_PUT, key, key_size, value, value_size) : 0;
}

int store_delete(Store *store, const void *key, size_t key_size) {
        int r;

        FAULT_CHECK("delete", store->path, key, key_size);

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_delete(store->dbf, datum_of(key, key_size)) != 0)
                return failed(store);

        return store->journal ? journal_append(store->journal, JOURNAL_DELETE, key, key_size, NULL, 0) : 0;
}

/* The journal is the durable copy of the changes, so the live file itself
 * is synced only by a checkpoint and an orderly close. A checkpoint that
 * fails changes nothing that was promised: the journal still holds
 * everything, and the next try waits for as much journal again, so a full
 * disk does not cost a copy at every sync. */
int store_sync(Store *store) {
        int r;

        FAULT_CHECK("sync", store->path, NULL, 0);

        r = usable(store);
        if (r < 0)
                return r;

        if (!store->journal)
                return gdbm_sync(store->dbf) != 0 ? failed(store) : 0;

        r = journal_sync(store->journal);
        if (r < 0)
                return r;

        if (journal_size(store->journal) >= store->checkpoint_at) {
                r = checkpoint(store);
                if (r < 0) {
                        log_warning("Failed to checkpoint '%s', its journal keeps growing: %s", store->path,
                                    strerror(-r));
                        plan_checkpoint(store);
                }
        }

        return 0;
}

/* gdbm_reorganize() writes a new file and renames it over the live one; the
 * journal describes the same records either way. The checkpoint after it
 * gives the room back in the base too. */
int store_reorganize(Store *store) {
        int r;

        r = usable(store);
        if (r < 0)
                return r;

        if (gdbm_reorganize(store->dbf) != 0)
                return failed(store);

        if (store->journal) {
                r = checkpoint(store);
                if (r < 0)
                        log_warning("Failed to checkpoint '%s' after reorganizing it: %s", store->path,
                                    strerror(-r));
        }

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

        dbf = open_file(tmp, GDBM_WRITER);
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

/*
 * The damaged file is replaced by the best database there is to read: the
 * base with the journal replayed, when the base opens, for the base is the
 * file written last in one piece and synced; otherwise what gdbm_recover()
 * reads from a copy of the live file. The result becomes the new base, with
 * an empty journal (a damaged base is replaced then; the damaged live file
 * is kept). Crash scenarios: killed before the rename, the damaged database
 * is still in place and recovered again at the next open; after the rename
 * and before the new base, the old base and journal are there: replayed
 * again, to the same records, or, when the base is the damaged one, found
 * damaged again and the (now sound) live file recovered once more.
 */
int store_recover(const char *path, StoreRecovery *ret) {
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(freep) char *tmp = NULL, *damaged = NULL, *base = NULL, *journal = NULL;
        _cleanup_(journal_freep) Journal *emptied = NULL;
        StoreRecovery result = {};
        gdbm_count_t count;
        JournalOp last;
        int r = -ENOENT;

        if (asprintf(&tmp, "%s.recover", path) < 0 || asprintf(&base, "%s.base", path) < 0 ||
            asprintf(&journal, "%s.journal", path) < 0)
                return -ENOMEM;

        if (access(path, F_OK) < 0)
                return -errno;

        if (access(base, F_OK) == 0) {
                r = rebuild(base, journal, tmp, false);
                if (r >= 0) {
                        log_warning("Recovering '%s' from its checkpoint and %d journal records", path, r);
                        result.from_checkpoint = true;
                } else if (r != -EBADMSG)
                        return r;
                else
                        log_error("The checkpoint of '%s' is damaged too", path);
        }

        /* Recovery works on a copy: gdbm_recover() replaces the file it
         * recovers, and the damaged original is to be kept as it is. */
        if (!result.from_checkpoint) {
                (void) unlink(tmp);
                r = copy_file(path, tmp);
                if (r >= 0) {
                        r = recover_copy(path, tmp, &result);
                        if (r == -EBADMSG) {
                                /* Nothing GDBM can read: the endpoint starts
                                 * again empty, its old file kept for whoever
                                 * can do more. */
                                log_error("Database '%s' cannot be opened even for recovery; starting it empty",
                                          path);
                                result.unreadable = true;
                                (void) unlink(tmp);
                                r = 0;
                        }
                }
        }
        if (r >= 0)
                r = open_unjournaled(tmp, true, true, &store);
        if (r >= 0 && result.from_checkpoint)
                r = gdbm_count(store->dbf, &count) != 0 ? errno_from_gdbm(store->dbf) : 0;
        if (r >= 0 && result.from_checkpoint)
                result.recovered_records = (size_t) count;
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

        r = write_base(path, base);
        if (r >= 0)
                r = journal_open(journal, &emptied, &last);
        if (r >= 0)
                r = journal_rewind(emptied, 0);
        if (r < 0)
                log_warning("Failed to checkpoint the recovered '%s', its next open recovers it again: %s", path,
                            strerror(-r));

        result.damaged_path = TAKE_PTR(damaged);
        *ret = result;
        return 0;
}

void store_recovery_done(StoreRecovery *recovery) {
        free(recovery->damaged_path);
        recovery->damaged_path = NULL;
}
