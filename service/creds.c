/* SPDX-License-Identifier: MIT */
#include "creds.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"
#include "util.h"

/* /proc files have no size to ask for in advance, and a sandbox's root is
 * its app's to fill: nothing read here may be larger. */
#define CREDS_FILE_MAX (64 * 1024)

struct CredsStorage {
        char *exe;
        char *cgroup;
        char *flatpak_info;
};

/* A copy of the first len characters of s in *ret when they are a valid app
 * id, else NULL: an id goes into log lines and is compared with the
 * configuration, so anything odd is no id at all. */
static int app_id_dup(const char *s, size_t len, char **ret) {
        _cleanup_(freep) char *id = NULL;

        id = strndup(s, len);
        if (!id)
                return -ENOMEM;

        *ret = names_check_app_id(id, NULL) == 0 ? TAKE_PTR(id) : NULL;
        return 0;
}

/* name= of [Application], or NULL in *ret when the file gives no valid id
 * (a runtime's sandbox has [Runtime] instead). */
static int flatpak_app_id(const char *flatpak_info, char **ret) {
        g_autoptr(GKeyFile) file = g_key_file_new();
        g_autofree char *name = NULL;

        if (flatpak_info && g_key_file_load_from_data(file, flatpak_info, -1, G_KEY_FILE_NONE, NULL))
                name = g_key_file_get_string(file, "Application", "name", NULL);
        if (!name) {
                *ret = NULL;
                return 0;
        }

        return app_id_dup(name, strlen(name), ret);
}

/* Whether label is the AppArmor label of a Snap's profile. */
static bool label_is_snap(const char *label) {
        return label && strncmp(label, "snap.", strlen("snap.")) == 0;
}

/* NAME of "snap.NAME.APP", "snap.NAME.hook.HOOK", each maybe followed by
 * " (enforce)" or " (complain)", or NULL in *ret when the label has another
 * shape: then the process is confined by a Snap's profile all the same, but
 * which snap it belongs to is not to be guessed. */
static int snap_app_id(const char *label, char **ret) {
        const char *name = label + strlen("snap."), *app;
        size_t name_len, app_len;

        name_len = strcspn(name, ".");
        app = name + name_len + (name[name_len] == '.');
        app_len = strcspn(app, " ");

        if (name[name_len] != '.' || app_len == 0 || !STR_IN_SET(app + app_len, "", " (enforce)", " (complain)")) {
                *ret = NULL;
                return 0;
        }

        return app_id_dup(name, name_len, ret);
}

/* The sandbox a systemd unit of that name stands for. */
static Sandbox unit_sandbox(const char *unit, size_t len) {
        static const char *const suffixes[] = { ".scope", ".service" };

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t n = strlen(suffixes[i]);

                if (len <= n || memcmp(unit + len - n, suffixes[i], n) != 0)
                        continue;
                if (strncmp(unit, "app-flatpak-", strlen("app-flatpak-")) == 0)
                        return SANDBOX_FLATPAK;
                if (strncmp(unit, "snap.", strlen("snap.")) == 0)
                        return SANDBOX_SNAP;
        }

        return SANDBOX_NONE;
}

/* The sandbox named by a unit anywhere in the cgroup file. Every element
 * between slashes and line ends is looked at, so the path of every line
 * counts (v1 has a line per hierarchy); the "N:controllers:" before a path
 * never looks like a unit. */
static Sandbox cgroup_sandbox(const char *cgroup) {
        for (const char *s = cgroup; s && *s;) {
                size_t len = strcspn(s, "/\n");
                Sandbox sandbox = unit_sandbox(s, len);

                if (sandbox != SANDBOX_NONE)
                        return sandbox;
                s += len;
                if (*s != '\0')
                        s++;
        }

        return SANDBOX_NONE;
}

int creds_classify(const CredsFacts *facts, Identity *ret) {
        _cleanup_(freep) char *app_id = NULL;
        _cleanup_(freep) char *exe = NULL;
        Sandbox sandbox;
        int r = 0;

        if (!facts->proc_read || facts->proc_uid != facts->uid)
                sandbox = SANDBOX_UNKNOWN;
        else if (facts->has_flatpak_info) {
                sandbox = SANDBOX_FLATPAK;
                r = flatpak_app_id(facts->flatpak_info, &app_id);
        } else if (label_is_snap(facts->security_label)) {
                sandbox = SANDBOX_SNAP;
                r = snap_app_id(facts->security_label, &app_id);
        } else
                sandbox = cgroup_sandbox(facts->cgroup);
        if (r < 0)
                return r;

        if (sandbox == SANDBOX_NONE && facts->exe) {
                exe = strdup(facts->exe);
                if (!exe)
                        return -ENOMEM;
        }

        *ret = (Identity) {
                .uid = facts->uid,
                .pid = facts->pid,
                .sandbox = sandbox,
                .app_id = TAKE_PTR(app_id),
                .exe = TAKE_PTR(exe),
        };
        return 0;
}

void identity_done(Identity *identity) {
        free(identity->app_id);
        free(identity->exe);
        /* Unknown, not zero: a zeroed Identity would be a host program of
         * root. */
        *identity = (Identity) { .sandbox = SANDBOX_UNKNOWN };
}

int identity_copy(const Identity *from, Identity *ret) {
        _cleanup_(freep) char *app_id = NULL;
        _cleanup_(freep) char *exe = NULL;

        if (from->app_id && !(app_id = strdup(from->app_id)))
                return -ENOMEM;
        if (from->exe && !(exe = strdup(from->exe)))
                return -ENOMEM;

        *ret = *from;
        ret->app_id = TAKE_PTR(app_id);
        ret->exe = TAKE_PTR(exe);
        return 0;
}

const char *sandbox_to_string(Sandbox sandbox) {
        switch (sandbox) {
        case SANDBOX_NONE:
                return "none";
        case SANDBOX_FLATPAK:
                return "flatpak";
        case SANDBOX_SNAP:
                return "snap";
        case SANDBOX_UNKNOWN:
                return "unknown";
        }
        return NULL;    /* not a Sandbox */
}

CredsStorage *creds_storage_free(CredsStorage *storage) {
        if (!storage)
                return NULL;

        free(storage->exe);
        free(storage->cgroup);
        free(storage->flatpak_info);
        free(storage);
        return NULL;
}

void creds_storage_freep(CredsStorage **storage) {
        creds_storage_free(*storage);
}

/* The regular file path below dir_fd as a string, refused when it is larger
 * than CREDS_FILE_MAX or holds a NUL. The last element is not followed: a
 * link in a sandbox's root would be resolved against ours. */
static int read_file_at(int dir_fd, const char *path, char **ret) {
        _cleanup_(closep) int fd = -1;
        char buffer[CREDS_FILE_MAX + 1];
        struct stat st;
        size_t n = 0;
        char *s;

        /* O_NONBLOCK: a FIFO put there must not hang the service. */
        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;

        for (;;) {
                ssize_t k = read(fd, buffer + n, sizeof(buffer) - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == sizeof(buffer))
                        return -EFBIG;
        }

        if (memchr(buffer, '\0', n))
                return -EBADMSG;

        s = strndup(buffer, n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* The real uid: the first of the four numbers of the "Uid:" line. The name
 * on the line before is escaped by the kernel, so no process can forge a
 * line of its own. */
static int parse_status_uid(const char *status, uid_t *ret) {
        const char *p;
        unsigned long v;
        char *end;

        if (strncmp(status, "Uid:", strlen("Uid:")) == 0)
                p = status;
        else {
                p = strstr(status, "\nUid:");
                if (!p)
                        return -EBADMSG;
                p++;
        }
        p += strlen("Uid:");
        p += strspn(p, " \t");

        if (!isdigit((unsigned char) *p))
                return -EBADMSG;
        errno = 0;
        v = strtoul(p, &end, 10);
        if (errno != 0 || (*end != '\0' && !isspace((unsigned char) *end)) || v >= (uid_t) -1)
                return -EBADMSG;

        *ret = (uid_t) v;
        return 0;
}

static int read_link_at(int dir_fd, const char *path, char **ret) {
        char buffer[PATH_MAX];
        ssize_t n;
        char *s;

        n = readlinkat(dir_fd, path, buffer, sizeof(buffer));
        if (n < 0)
                return -errno;
        if ((size_t) n == sizeof(buffer))
                return -ENAMETOOLONG;

        s = strndup(buffer, (size_t) n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* 1 and the contents of the process's /.flatpak-info, or 0 when it has none. */
static int read_flatpak_info(int dir_fd, char **ret) {
        _cleanup_(closep) int root_fd = -1;
        int r;

        /* The root is opened first and on its own, so that ENOENT below
         * means the file is missing, never that the process is gone (the
         * root of a dead process cannot be opened). */
        root_fd = openat(dir_fd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return -errno;

        r = read_file_at(root_fd, ".flatpak-info", ret);
        if (r == -ENOENT)
                return 0;
        return r < 0 ? r : 1;
}

int creds_read_proc(const char *proc_dir, pid_t pid, CredsFacts *facts, CredsStorage **ret_storage) {
        _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
        _cleanup_(freep) char *path = NULL;
        _cleanup_(freep) char *status = NULL;
        _cleanup_(closep) int dir_fd = -1;
        uid_t uid;
        int r;

        facts->proc_read = false;

        if (pid <= 0)
                return -EINVAL;
        if (asprintf(&path, "%s/%d", proc_dir, (int) pid) < 0)
                return -ENOMEM;
        storage = calloc(1, sizeof(*storage));
        if (!storage)
                return -ENOMEM;

        /* Everything is read through this one directory: should the process
         * die and its pid be reused meanwhile, the directory answers for the
         * dead process (with errors), never for the new one. */
        dir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd < 0)
                return -errno;

        r = read_file_at(dir_fd, "status", &status);
        if (r < 0)
                return r;
        r = parse_status_uid(status, &uid);
        if (r < 0)
                return r;
        r = read_link_at(dir_fd, "exe", &storage->exe);
        if (r < 0)
                return r;
        r = read_file_at(dir_fd, "cgroup", &storage->cgroup);
        if (r < 0)
                return r;
        r = read_flatpak_info(dir_fd, &storage->flatpak_info);
        if (r < 0)
                return r;

        facts->proc_read = true;
        facts->proc_uid = uid;
        facts->exe = storage->exe;
        facts->cgroup = storage->cgroup;
        facts->has_flatpak_info = r > 0;
        facts->flatpak_info = storage->flatpak_info;
        *ret_storage = TAKE_PTR(storage);
        return 0;
}
