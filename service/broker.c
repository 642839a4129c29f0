/* SPDX-License-Identifier: MIT */
#include "broker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "names.h"
#include "util.h"

#define DB_SUFFIX ".db"
#define LOCK_POLL_NSEC (50 * 1000 * 1000)

static void endpoint_destroy(gpointer p) {
        endpoint_free(p);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/*
 * Only one service may use a state directory. The lock is polled rather
 * than waited for without bound: a service activated while the previous one
 * is still finishing its idle exit gets the directory a moment later, and a
 * directory held by a live service for good fails the start with a reason.
 */
static int take_lock(Broker *b, uint64_t timeout_usec) {
        _cleanup_(freep) char *path = NULL;
        struct timespec poll = { .tv_nsec = LOCK_POLL_NSEC };
        uint64_t waited = 0;

        if (asprintf(&path, "%s/lock", b->state_dir) < 0)
                return -ENOMEM;

        b->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (b->lock_fd < 0)
                return -errno;

        while (flock(b->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return -errno;
                if (waited >= timeout_usec)
                        return -EBUSY;
                (void) nanosleep(&poll, NULL);
                waited += LOCK_POLL_NSEC / 1000;
        }

        return 0;
}

static int load(Broker *b) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int r;

        d = opendir(b->endpoints_dir);
        if (!d)
                return -errno;

        while ((errno = 0, de = readdir(d))) {
                _cleanup_(endpoint_freep) Endpoint *e = NULL;
                _cleanup_(freep) char *name = NULL;
                size_t len = strlen(de->d_name);

                /* A NAME.db.new is what an interrupted ClearAll left before
                 * its rename: the old database is the valid one. */
                if (len > 4 && strcmp(de->d_name + len - 4, ".new") == 0) {
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        continue;
                }

                if (len <= strlen(DB_SUFFIX) || strcmp(de->d_name + len - strlen(DB_SUFFIX), DB_SUFFIX) != 0)
                        continue;

                name = strndup(de->d_name, len - strlen(DB_SUFFIX));
                if (!name)
                        return -ENOMEM;
                if (names_check_endpoint(name, NULL) < 0) {
                        log_warning("Ignoring '%s/%s': not the file of a valid endpoint name", b->endpoints_dir,
                                    de->d_name);
                        continue;
                }

                r = endpoint_new(name, b->endpoints_dir, &e);
                if (r < 0)
                        return r;

                g_hash_table_replace(b->endpoints, e->name, e);
                TAKE_PTR(e);
        }

        return errno > 0 ? -errno : 0;
}

int broker_new(const char *state_dir, uint64_t lock_timeout_usec, Broker **ret) {
        _cleanup_(broker_freep) Broker *b = NULL;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;

        b->lock_fd = -1;
        b->endpoints = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, endpoint_destroy);
        b->state_dir = strdup(state_dir);
        if (!b->state_dir || asprintf(&b->endpoints_dir, "%s/endpoints", state_dir) < 0)
                return -ENOMEM;

        r = mkdir_parents(b->endpoints_dir);
        if (r < 0)
                return r;

        r = take_lock(b, lock_timeout_usec);
        if (r < 0)
                return r;

        r = load(b);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(b);
        return 0;
}

Broker *broker_free(Broker *b) {
        if (!b)
                return NULL;

        if (b->endpoints)
                g_hash_table_destroy(b->endpoints);
        if (b->lock_fd >= 0)
                (void) close(b->lock_fd);
        free(b->state_dir);
        free(b->endpoints_dir);
        free(b);
        return NULL;
}

void broker_freep(Broker **b) {
        broker_free(*b);
}

Endpoint *broker_get(Broker *b, const char *name) {
        return g_hash_table_lookup(b->endpoints, name);
}

int broker_add(Broker *b, const char *name, Endpoint **ret) {
        _cleanup_(endpoint_freep) Endpoint *e = NULL;
        Endpoint *found;
        int r;

        found = broker_get(b, name);
        if (found) {
                *ret = found;
                return 0;
        }

        r = endpoint_new(name, b->endpoints_dir, &e);
        if (r < 0)
                return r;

        r = endpoint_open(e);
        /* The new file is on disk only once its directory entry is. */
        if (r >= 0)
                r = fsync_parent_directory(e->db_path);
        if (r < 0) {
                e->store = store_free(e->store);
                (void) store_remove(e->db_path);
                return r;
        }

        g_hash_table_replace(b->endpoints, e->name, e);
        *ret = TAKE_PTR(e);
        return 1;
}

int broker_remove(Broker *b, Endpoint *e) {
        int r;

        r = endpoint_remove_files(e);
        g_hash_table_remove(b->endpoints, e->name);
        return r;
}

static gint compare_names(gconstpointer a, gconstpointer b) {
        const Endpoint *x = *(Endpoint *const *) a, *y = *(Endpoint *const *) b;
        return strcmp(x->name, y->name);
}

GPtrArray *broker_list(Broker *b) {
        GPtrArray *list = g_ptr_array_sized_new(g_hash_table_size(b->endpoints));
        GHashTableIter i;
        gpointer e;

        g_hash_table_iter_init(&i, b->endpoints);
        while (g_hash_table_iter_next(&i, NULL, &e))
                g_ptr_array_add(list, e);

        g_ptr_array_sort(list, compare_names);
        return list;
}

int broker_close_all(Broker *b) {
        GHashTableIter i;
        Endpoint *e;
        int r = 0;

        g_hash_table_iter_init(&i, b->endpoints);
        while (g_hash_table_iter_next(&i, NULL, (gpointer *) &e)) {
                int k = endpoint_close(e);
                if (k < 0) {
                        log_error("Failed to close endpoint '%s': %s", e->name, strerror(-k));
                        if (r == 0)
                                r = k;
                }
        }

        return r;
}
