/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who a caller is: its identity made from the facts the bus and /proc give
 * about its process, and the classification that tells a sandboxed app
 * (Flatpak, Snap) from a program of the host. The bus layer gathers the
 * facts (uid, pid and security label from the bus, which took them from the
 * connection's socket; the rest from /proc); classification is a pure
 * function, so it is tested on sample data.
 *
 * Sources, strongest first. A Flatpak app's id is the name= of group
 * [Application] of the /.flatpak-info that Flatpak puts in the root of every
 * sandbox (the file portals use too). A Snap's id is the snap name from its
 * AppArmor label, "snap.NAME.APP (enforce)". A cgroup whose unit is a
 * Flatpak or Snap scope ("app-flatpak-ID-N.scope", "snap.NAME.APP-UUID.scope")
 * marks the process as sandboxed but never gives it an id: any process of
 * the user can name its own scope, so a cgroup may take trust away, never
 * grant it. Anything that could not be read, or /proc data of another user
 * than the bus's (the pid was reused by someone else), makes the sandbox
 * SANDBOX_UNKNOWN: never trusted, no app id, no exe.
 *
 * Limits, documented in README.md: a pid reused by a process of the same
 * user is not noticed (the bus of Debian 12 gives no process descriptor); a
 * host process that can make user and mount namespaces can give itself a
 * root with any /.flatpak-info, so an app id proves no more against hostile
 * code of the same user than the files of the state directory do; the exe
 * of a program whose file was replaced while it runs ends in " (deleted)"
 * and matches no exe= key until it is restarted.
 */

#include <stdbool.h>
#include <sys/types.h>

typedef enum Sandbox {
        SANDBOX_NONE,           /* a program of the host */
        SANDBOX_FLATPAK,
        SANDBOX_SNAP,
        SANDBOX_UNKNOWN,        /* could not tell: treated as sandboxed */
} Sandbox;

/* What is known of a caller's process before classification. Strings are
 * borrowed; NULL means not known. */
typedef struct CredsFacts {
        uid_t uid;                      /* from the bus */
        pid_t pid;                      /* from the bus */
        const char *security_label;     /* from the bus (LSM label, e.g. AppArmor), NULL: none */
        bool proc_read;                 /* the /proc facts below could be read */
        uid_t proc_uid;                 /* real uid of /proc/PID/status */
        const char *exe;                /* target of /proc/PID/exe */
        const char *cgroup;             /* contents of /proc/PID/cgroup */
        bool has_flatpak_info;          /* PID's root holds /.flatpak-info... */
        const char *flatpak_info;       /* ...with these contents */
} CredsFacts;

typedef struct Identity {
        uid_t uid;
        pid_t pid;
        Sandbox sandbox;
        char *app_id;           /* the sandboxed app's id, NULL when not known */
        char *exe;              /* the executable of a program of the host, NULL when sandboxed or unknown */
} Identity;

/*
 * Classifies facts into *ret (which owns copies of its strings; free them
 * with identity_done()). Returns 0 or -ENOMEM; *ret is untouched on failure.
 */
int creds_classify(const CredsFacts *facts, Identity *ret);

void identity_done(Identity *identity);

/* Copies from into *ret, which owns copies of the strings (free them with
 * identity_done()). 0 or -ENOMEM; *ret is untouched on failure. */
int identity_copy(const Identity *from, Identity *ret);

/* "none", "flatpak", "snap", "unknown": for log lines. */
const char *sandbox_to_string(Sandbox sandbox);

/*
 * The facts /proc holds about process pid, read below proc_dir ("/proc",
 * or a directory of sample files in tests): PID/status (Uid:), PID/exe,
 * PID/cgroup and PID/root/.flatpak-info. Sets facts->proc_read and the
 * fields it read; a missing /.flatpak-info is no error. Returns 0 when
 * everything needed could be read, or a negative errno (-ENOENT when the
 * process is gone, -EACCES, ...) with facts->proc_read false. The strings
 * are allocated and stored in *ret_storage, which the caller frees with
 * creds_storage_free() once it no longer uses facts.
 */
typedef struct CredsStorage CredsStorage;
int creds_read_proc(const char *proc_dir, pid_t pid, CredsFacts *facts, CredsStorage **ret_storage);
CredsStorage *creds_storage_free(CredsStorage *storage);
void creds_storage_freep(CredsStorage **storage);
