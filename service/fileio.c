/* SPDX-License-Identifier: MIT */
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

int fsync_parent_directory(const char *path) {
        _cleanup_(freep) char *dir = NULL;
        _cleanup_(closep) int fd = -1;
        char *slash;

        dir = strdup(path);
        if (!dir)
                return -ENOMEM;

        slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else if (slash == dir)
                dir[1] = '\0';
        else
                *slash = '\0';

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;

        return fsync(fd) < 0 ? -errno : 0;
}

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int write_file_atomic(const char *path, const char *contents) {
        _cleanup_(freep) char *tmp = NULL;
        _cleanup_(closep) int fd = -1;
        int r;

        if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
                return -ENOMEM;

        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;

        r = write_all(fd, contents, strlen(contents));
        if (r >= 0 && fchmod(fd, 0644) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        return fsync_parent_directory(path);
}

static int copy_data(int in, int out) {
        char buffer[64 * 1024];

        for (;;) {
                ssize_t n = read(in, buffer, sizeof(buffer));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : 0;

                int r = write_all(out, buffer, (size_t) n);
                if (r < 0)
                        return r;
        }
}

/* Copies in into out, which is empty, and syncs out. */
static int copy_contents(int in, int out) {
        int r = 0;

        /* A reflink where the file system has them (Btrfs, XFS): the copy
         * shares the blocks until either file changes, so it costs neither
         * the time nor the room of the data. Anything else copies. */
        if (ioctl(out, FICLONE, in) < 0)
                r = copy_data(in, out);

        if (r >= 0 && fsync(out) < 0)
                r = -errno;
        return r;
}

int copy_file(const char *from, const char *to) {
        _cleanup_(closep) int in = -1, out = -1;
        int r;

        in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;

        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0)
                return -errno;

        r = copy_contents(in, out);
        if (r < 0)
                (void) unlink(to);
        return r;
}

int copy_file_over(const char *from, const char *to) {
        _cleanup_(closep) int in = -1, out = -1;

        in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -errno;

        out = open(to, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (out < 0)
                return -errno;

        return copy_contents(in, out);
}

int mkdir_parents(const char *path) {
        _cleanup_(freep) char *p = NULL;

        p = strdup(path);
        if (!p)
                return -ENOMEM;

        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != '\0')
                        continue;

                char c = *s;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (c == '\0')
                        return 0;
        }
}
