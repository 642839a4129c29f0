/* SPDX-License-Identifier: MIT */
#include "activation.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

static char *file_path(const char *dir, const char *bus_name) {
        char *path;

        if (asprintf(&path, "%s/%s.service", dir, bus_name) < 0)
                return NULL;
        return path;
}

int activation_write(const char *dir, const char *bus_name, const char *exec_line) {
        _cleanup_(freep) char *path = NULL, *contents = NULL;
        int r;

        r = mkdir_parents(dir);
        if (r < 0)
                return r;

        path = file_path(dir, bus_name);
        if (!path)
                return -ENOMEM;

        if (asprintf(&contents,
                     "# Written by durabusd for an endpoint of durabus; removed with the endpoint.\n"
                     "[D-BUS Service]\n"
                     "Name=%s\n"
                     "Exec=%s\n"
                     "SystemdService=durabus.service\n",
                     bus_name, exec_line) < 0)
                return -ENOMEM;

        return write_file_atomic(path, contents);
}

int activation_remove(const char *dir, const char *bus_name) {
        _cleanup_(freep) char *path = file_path(dir, bus_name);

        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static void append_quoted(char **p, const char *s) {
        *(*p)++ = '\'';
        for (; *s; s++) {
                if (*s == '\'') {
                        memcpy(*p, "'\\''", 4);
                        *p += 4;
                } else
                        *(*p)++ = *s;
        }
        *(*p)++ = '\'';
}

char *activation_exec_line(const char *exe, char *const *args) {
        size_t size = 4 * strlen(exe) + 3;
        char *line, *p;

        for (char *const *a = args; *a; a++)
                size += 4 * strlen(*a) + 3;

        line = malloc(size + 1);
        if (!line)
                return NULL;

        p = line;
        append_quoted(&p, exe);
        for (char *const *a = args; *a; a++) {
                *p++ = ' ';
                append_quoted(&p, *a);
        }
        *p = '\0';
        return line;
}
