/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/creds.c: how the facts about a caller's process make
 * its identity (a host program, a Flatpak or Snap app, or unknown), on sample
 * facts, and how those facts are read from /proc, on a fake /proc directory
 * and on this test's own process.
 */

#include <errno.h>
#include <ftw.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "util.h"

#define SAMPLE_UID 1000
#define SAMPLE_PID 4242

#define HOST_CGROUP \
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-org.gnome.gedit-4242.scope\n"
#define FLATPAK_CGROUP \
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.gnome.Maps-123456.scope\n"
#define SNAP_CGROUP                                                                                 \
        "0::/user.slice/user-1000.slice/user@1000.service/app.slice/"                               \
        "snap.firefox.firefox-0c7ea0a1-47a7-4d3b-8f5b-2b9a8a6b0d1c.scope\n"
#define MAPS_FLATPAK_INFO                                      \
        "[Application]\n"                                      \
        "name=org.gnome.Maps\n"                                \
        "runtime=runtime/org.gnome.Platform/x86_64/45\n"       \
        "\n"                                                   \
        "[Instance]\n"                                         \
        "instance-id=123\n"

/* A sentinel an out-parameter holds before a call that must leave it alone. */
static char untouched[] = "untouched";

/* The facts of a program of the host: gedit, started from GNOME Shell, as
 * the bus and /proc give them. */
static CredsFacts host_facts(void) {
        return (CredsFacts) {
                .uid = SAMPLE_UID,
                .pid = SAMPLE_PID,
                .security_label = "unconfined",
                .proc_read = true,
                .proc_uid = SAMPLE_UID,
                .exe = "/usr/bin/gedit",
                .cgroup = HOST_CGROUP,
        };
}

/* Checks that facts make exactly that identity. */
static void assert_identity(const CredsFacts *facts, Sandbox sandbox, const char *app_id, const char *exe) {
        _cleanup_(identity_done) Identity identity = {};

        g_assert_cmpint(creds_classify(facts, &identity), ==, 0);
        g_assert_cmpstr(sandbox_to_string(identity.sandbox), ==, sandbox_to_string(sandbox));
        g_assert_cmpstr(identity.app_id, ==, app_id);
        g_assert_cmpstr(identity.exe, ==, exe);
        g_assert_cmpuint(identity.uid, ==, facts->uid);
        g_assert_cmpint(identity.pid, ==, facts->pid);
}

/* A host program's facts with one of them changed. */
static CredsFacts with_label(const char *label) {
        CredsFacts facts = host_facts();

        facts.security_label = label;
        return facts;
}

static CredsFacts with_cgroup(const char *cgroup) {
        CredsFacts facts = host_facts();

        facts.cgroup = cgroup;
        return facts;
}

static CredsFacts with_flatpak_info(const char *flatpak_info) {
        CredsFacts facts = host_facts();

        facts.has_flatpak_info = true;
        facts.flatpak_info = flatpak_info;
        return facts;
}

/* Checks that the facts made from each of values make that identity. */
static void assert_each_makes(CredsFacts (*make)(const char *value), const char *const *values, size_t n,
                              Sandbox sandbox, const char *app_id, const char *exe) {
        for (size_t i = 0; i < n; i++) {
                CredsFacts facts = make(values[i]);

                g_test_message("'%s'", values[i] ? values[i] : "(null)");
                assert_identity(&facts, sandbox, app_id, exe);
        }
}

static void test_classify_host_program(void) {
        CredsFacts facts = host_facts();

        g_test_summary("A process of the caller's uid with no .flatpak-info, no Snap label and no "
                       "sandbox's unit in its cgroup is a program of the host, known by its "
                       "executable; without a label or cgroup it is one all the same.");

        assert_identity(&facts, SANDBOX_NONE, NULL, "/usr/bin/gedit");

        facts.security_label = NULL;
        facts.cgroup = NULL;
        assert_identity(&facts, SANDBOX_NONE, NULL, "/usr/bin/gedit");

        facts.exe = NULL;
        assert_identity(&facts, SANDBOX_NONE, NULL, NULL);
}

static void test_classify_host_program_with_apparmor_profile(void) {
        const char *labels[] = {
                "/usr/bin/evince (enforce)",
                "firefox (enforce)",
                "snap-update-ns.firefox (enforce)",
                "unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023",
        };

        g_test_summary("A host program confined by a profile that is not a Snap's (Ubuntu's evince, "
                       "the deb Firefox, snapd's helpers, an SELinux context) is still a host program.");

        assert_each_makes(with_label, labels, ELEMENTSOF(labels), SANDBOX_NONE, NULL, "/usr/bin/gedit");
}

static void test_classify_flatpak(void) {
        CredsFacts facts = host_facts();

        g_test_summary("A process whose root holds a .flatpak-info is a Flatpak app, with the id of "
                       "name= in [Application], and no executable.");

        facts.exe = "/app/bin/gnome-maps";
        facts.cgroup = FLATPAK_CGROUP;
        facts.has_flatpak_info = true;
        facts.flatpak_info = MAPS_FLATPAK_INFO;
        assert_identity(&facts, SANDBOX_FLATPAK, "org.gnome.Maps", NULL);

        /* The proxy Flatpak puts between an app and the bus runs in a
         * sandbox of its own, with the same file but another cgroup. */
        facts.cgroup = HOST_CGROUP;
        assert_identity(&facts, SANDBOX_FLATPAK, "org.gnome.Maps", NULL);
}

static void test_classify_flatpak_scope_gives_no_id(void) {
        CredsFacts facts = with_cgroup(FLATPAK_CGROUP);

        g_test_summary("A process in a Flatpak app's scope without a .flatpak-info is sandboxed, "
                       "but has no app id: any process can name its own scope.");

        assert_identity(&facts, SANDBOX_FLATPAK, NULL, NULL);
}

static void test_classify_flatpak_info_without_id(void) {
        g_autofree char *long_name = g_strnfill(256, 'a');
        g_autofree char *long_info = g_strdup_printf("[Application]\nname=%s\n", long_name);
        g_autofree char *longest_name = g_strnfill(255, 'a');
        g_autofree char *longest_info = g_strdup_printf("[Application]\nname=%s\n", longest_name);
        CredsFacts facts;
        const char *infos[] = {
                NULL,
                "",
                "not a key file\n",
                "[Application\nname=org.gnome.Maps\n",
                "[Instance]\ninstance-id=123\n",
                "[Runtime]\nname=org.gnome.Platform\nruntime=runtime/org.gnome.Platform/x86_64/45\n",
                "[Application]\nruntime=runtime/org.gnome.Platform/x86_64/45\n",
                "[Application]\nname=\n",
                "[Application]\nname=org.gnome.Maps/../evil\n",
                "[Application]\nname=org gnome Maps\n",
                "[Application]\nname=org.gnome.Caf\xc3\xa9\n",
                "[Application]\nname=org.gnome\\nMaps\n",
                long_info,
        };

        g_test_summary("A .flatpak-info that is no key file, has no name= in [Application] (a "
                       "runtime's sandbox) or names an implausible id (characters outside "
                       "[A-Za-z0-9_.-], over 255 characters) marks a Flatpak app with no id; an id of exactly 255 characters is kept.");

        assert_each_makes(with_flatpak_info, infos, ELEMENTSOF(infos), SANDBOX_FLATPAK, NULL, NULL);

        facts = with_flatpak_info(longest_info);
        assert_identity(&facts, SANDBOX_FLATPAK, longest_name, NULL);
}

static void test_classify_snap_by_label(void) {
        static const struct {
                const char *label;
                const char *app_id;
        } cases[] = {
                { "snap.firefox.firefox (enforce)", "firefox" },
                { "snap.firefox.geckodriver (complain)", "firefox" },
                { "snap.firefox.firefox", "firefox" },
                { "snap.lxd.hook.configure (enforce)", "lxd" },
                { "snap.firefox_beta.firefox (enforce)", "firefox_beta" },
        };

        g_test_summary("A process with a Snap's AppArmor label 'snap.NAME.APP' (maybe followed by "
                       "its mode) is a Snap app with the id NAME; a hook's label counts too, and a "
                       "parallel install keeps its instance key.");

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                CredsFacts facts = with_label(cases[i].label);

                g_test_message("label '%s'", cases[i].label);
                facts.cgroup = SNAP_CGROUP;
                assert_identity(&facts, SANDBOX_SNAP, cases[i].app_id, NULL);
        }
}

static void test_classify_snap_label_of_odd_shape(void) {
        const char *labels[] = {
                "snap.firefox",
                "snap.",
                "snap..firefox (enforce)",
                "snap.firefox. (enforce)",
                "snap.firefox.firefox (kill)",
                "snap.firefox.firefox (enforce) ",
                "snap.fire/fox.firefox (enforce)",
        };

        g_test_summary("A label that starts like a Snap's but has another shape marks a Snap app "
                       "(the profile confines it) whose id is not guessed.");

        assert_each_makes(with_label, labels, ELEMENTSOF(labels), SANDBOX_SNAP, NULL, NULL);
}

static void test_classify_snap_scope_gives_no_id(void) {
        CredsFacts facts = with_cgroup(SNAP_CGROUP);

        g_test_summary("A process in a Snap's scope or service without a Snap label is sandboxed, "
                       "but has no app id.");

        assert_identity(&facts, SANDBOX_SNAP, NULL, NULL);

        facts.security_label = NULL;
        assert_identity(&facts, SANDBOX_SNAP, NULL, NULL);

        facts.cgroup = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.syncthing.syncthing.service\n";
        assert_identity(&facts, SANDBOX_SNAP, NULL, NULL);
}

static void test_classify_unit_lookalikes(void) {
        const char *cgroups[] = {
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak.slice\n",
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-flatpak-org.gnome.Maps-1.slice\n",
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap-firefox-123.scope\n",
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/snap.firefox\n",
                "0::/system.slice/snap-core22-1122.mount\n",
                "0::/user.slice/user-1000.slice/user@1000.service/app.slice/my-app-flatpak-x.scope\n",
        };

        g_test_summary("Only a whole unit whose name starts with 'app-flatpak-' or 'snap.' and "
                       "ends in '.scope' or '.service' marks a sandbox.");

        assert_each_makes(with_cgroup, cgroups, ELEMENTSOF(cgroups), SANDBOX_NONE, NULL, "/usr/bin/gedit");
}

static void test_classify_cgroup_v1(void) {
        CredsFacts facts = host_facts();

        g_test_summary("With cgroup v1, whose file has a line per hierarchy, a sandbox's unit in "
                       "the path of any line marks the process.");

        facts.cgroup = "12:pids:/user.slice/user-1000.slice/user@1000.service\n"
                       "11:memory:/user.slice/user-1000.slice/user@1000.service\n"
                       "2:cpu,cpuacct:/user.slice\n"
                       "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/"
                       "app-flatpak-org.gnome.Maps-123456.scope\n"
                       "0::/\n";
        assert_identity(&facts, SANDBOX_FLATPAK, NULL, NULL);

        facts.cgroup = "12:pids:/user.slice/user-1000.slice/user@1000.service\n"
                       "1:name=systemd:/user.slice/user-1000.slice/user@1000.service/app.slice/"
                       "app-gnome-org.gnome.gedit-4242.scope\n";
        assert_identity(&facts, SANDBOX_NONE, NULL, "/usr/bin/gedit");
}

static void test_classify_flatpak_info_wins(void) {
        CredsFacts facts = with_flatpak_info(MAPS_FLATPAK_INFO);

        g_test_summary("A .flatpak-info is the strongest source: it wins over a Snap label and a "
                       "Snap's scope.");

        facts.security_label = "snap.firefox.firefox (enforce)";
        facts.cgroup = SNAP_CGROUP;
        assert_identity(&facts, SANDBOX_FLATPAK, "org.gnome.Maps", NULL);
}

static void test_classify_snap_label_wins_over_cgroup(void) {
        CredsFacts facts = with_label("snap.firefox.firefox (enforce)");

        g_test_summary("A Snap label wins over a Flatpak scope in the cgroup.");

        facts.cgroup = FLATPAK_CGROUP;
        assert_identity(&facts, SANDBOX_SNAP, "firefox", NULL);
}

static void test_classify_pid_reused(void) {
        CredsFacts facts = host_facts();

        g_test_summary("/proc facts of another uid than the bus's belong to another process (the "
                       "pid was reused): the sandbox is unknown, with no app id and no executable, "
                       "even when those facts name an app.");

        facts.proc_uid = SAMPLE_UID + 1;
        assert_identity(&facts, SANDBOX_UNKNOWN, NULL, NULL);

        facts.has_flatpak_info = true;
        facts.flatpak_info = MAPS_FLATPAK_INFO;
        facts.security_label = "snap.firefox.firefox (enforce)";
        assert_identity(&facts, SANDBOX_UNKNOWN, NULL, NULL);

        facts = host_facts();
        facts.uid = 0;
        assert_identity(&facts, SANDBOX_UNKNOWN, NULL, NULL);
}

static void test_classify_proc_not_read(void) {
        CredsFacts facts = host_facts();

        g_test_summary("When /proc could not be read, the sandbox is unknown, with no app id and "
                       "no executable, whatever the other fields say.");

        facts.proc_read = false;
        assert_identity(&facts, SANDBOX_UNKNOWN, NULL, NULL);

        facts.has_flatpak_info = true;
        facts.flatpak_info = MAPS_FLATPAK_INFO;
        assert_identity(&facts, SANDBOX_UNKNOWN, NULL, NULL);
}

static void test_classify_copies_strings(void) {
        g_autofree char *info = g_strdup(MAPS_FLATPAK_INFO);
        g_autofree char *exe = g_strdup("/usr/bin/gedit");
        _cleanup_(identity_done) Identity flatpak = {};
        _cleanup_(identity_done) Identity host = {};
        CredsFacts facts = host_facts();

        g_test_summary("The identity owns copies of its strings: it outlives the facts.");

        facts.exe = exe;
        g_assert_cmpint(creds_classify(&facts, &host), ==, 0);
        facts.has_flatpak_info = true;
        facts.flatpak_info = info;
        g_assert_cmpint(creds_classify(&facts, &flatpak), ==, 0);

        memset(exe, 'x', strlen(exe));
        memset(info, 'x', strlen(info));
        g_assert_cmpstr(host.exe, ==, "/usr/bin/gedit");
        g_assert_cmpstr(flatpak.app_id, ==, "org.gnome.Maps");
}

static void test_identity_done(void) {
        CredsFacts facts = with_label("snap.firefox.firefox (enforce)");
        Identity identity = {};

        g_test_summary("identity_done() frees the strings and leaves an identity that is never "
                       "trusted (unknown sandbox, no strings); a second call does no harm.");

        g_assert_cmpint(creds_classify(&facts, &identity), ==, 0);
        g_assert_nonnull(identity.app_id);

        identity_done(&identity);
        g_assert_cmpint(identity.sandbox, ==, SANDBOX_UNKNOWN);
        g_assert_null(identity.app_id);
        g_assert_null(identity.exe);

        identity_done(&identity);
        g_assert_cmpint(identity.sandbox, ==, SANDBOX_UNKNOWN);
}

static void test_identity_copy(void) {
        CredsFacts facts = with_label("snap.firefox.firefox (enforce)");
        Identity identity = {}, copy = {};

        g_test_summary("identity_copy() gives an equal identity with strings of its own, which outlive "
                       "the original.");

        g_assert_cmpint(creds_classify(&facts, &identity), ==, 0);
        g_assert_cmpint(identity_copy(&identity, &copy), ==, 0);
        g_assert_cmpint(copy.uid, ==, identity.uid);
        g_assert_cmpint(copy.pid, ==, identity.pid);
        g_assert_cmpint(copy.sandbox, ==, identity.sandbox);
        g_assert_cmpstr(copy.app_id, ==, identity.app_id);
        g_assert_true(copy.app_id != identity.app_id);
        g_assert_null(copy.exe);

        identity_done(&identity);
        g_assert_cmpstr(copy.app_id, ==, "firefox");
        identity_done(&copy);
}

static void test_sandbox_to_string(void) {
        g_test_summary("Each sandbox has a short name for log lines.");

        g_assert_cmpstr(sandbox_to_string(SANDBOX_NONE), ==, "none");
        g_assert_cmpstr(sandbox_to_string(SANDBOX_FLATPAK), ==, "flatpak");
        g_assert_cmpstr(sandbox_to_string(SANDBOX_SNAP), ==, "snap");
        g_assert_cmpstr(sandbox_to_string(SANDBOX_UNKNOWN), ==, "unknown");
}

/* A fake /proc with the entries of process SAMPLE_PID: status, exe, cgroup
 * and an empty root; tests add or take away from it. */
typedef struct ProcFixture {
        char *proc_dir;
        char *pid_dir;
} ProcFixture;

static void write_sample(const char *dir, const char *name, const char *contents) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        g_file_set_contents(path, contents, -1, &error);
        g_assert_no_error(error);
}

static void proc_fixture_set_up(ProcFixture *f, gconstpointer data) {
        g_autoptr(GError) error = NULL;
        g_autofree char *exe = NULL;
        g_autofree char *root = NULL;

        f->proc_dir = g_dir_make_tmp("test-creds-XXXXXX", &error);
        g_assert_no_error(error);
        f->pid_dir = g_strdup_printf("%s/%d", f->proc_dir, SAMPLE_PID);
        g_assert_cmpint(g_mkdir(f->pid_dir, 0700), ==, 0);

        write_sample(f->pid_dir, "status",
                     "Name:\tgedit\n"
                     "Umask:\t0002\n"
                     "State:\tS (sleeping)\n"
                     "Tgid:\t4242\n"
                     "Pid:\t4242\n"
                     "PPid:\t1723\n"
                     "Uid:\t1000\t1001\t1002\t1003\n"
                     "Gid:\t1000\t1000\t1000\t1000\n");
        write_sample(f->pid_dir, "cgroup", HOST_CGROUP);

        exe = g_build_filename(f->pid_dir, "exe", NULL);
        g_assert_cmpint(symlink("/usr/bin/gedit", exe), ==, 0);

        root = g_build_filename(f->pid_dir, "root", NULL);
        g_assert_cmpint(g_mkdir(root, 0700), ==, 0);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        return remove(path);
}

static void proc_fixture_tear_down(ProcFixture *f, gconstpointer data) {
        g_assert_cmpint(nftw(f->proc_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
        g_free(f->pid_dir);
        g_free(f->proc_dir);
}

/* Checks that reading the fake /proc fails with expected, leaving
 * proc_read false and the storage alone. */
static void assert_read_fails(ProcFixture *f, pid_t pid, int expected) {
        CredsStorage *storage = (CredsStorage *) untouched;
        CredsFacts facts = host_facts();

        g_assert_cmpint(creds_read_proc(f->proc_dir, pid, &facts, &storage), ==, expected);
        g_assert_false(facts.proc_read);
        g_assert_true(storage == (CredsStorage *) untouched);
}

static void test_read_host_process(ProcFixture *f, gconstpointer data) {
        _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
        CredsFacts facts = { .uid = SAMPLE_UID, .pid = SAMPLE_PID };

        g_test_summary("The facts of a process without .flatpak-info: the real uid (the first of "
                       "the Uid: line), the target of the exe link and the cgroup file.");

        g_assert_cmpint(creds_read_proc(f->proc_dir, SAMPLE_PID, &facts, &storage), ==, 0);
        g_assert_nonnull(storage);
        g_assert_true(facts.proc_read);
        g_assert_cmpuint(facts.proc_uid, ==, 1000);
        g_assert_cmpstr(facts.exe, ==, "/usr/bin/gedit");
        g_assert_cmpstr(facts.cgroup, ==, HOST_CGROUP);
        g_assert_false(facts.has_flatpak_info);
        g_assert_null(facts.flatpak_info);

        assert_identity(&facts, SANDBOX_NONE, NULL, "/usr/bin/gedit");
}

static void test_read_flatpak_info(ProcFixture *f, gconstpointer data) {
        _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
        g_autofree char *root = g_build_filename(f->pid_dir, "root", NULL);
        CredsFacts facts = { .uid = SAMPLE_UID, .pid = SAMPLE_PID };

        g_test_summary("A .flatpak-info in the process's root is read with its contents.");

        write_sample(root, ".flatpak-info", MAPS_FLATPAK_INFO);
        g_assert_cmpint(creds_read_proc(f->proc_dir, SAMPLE_PID, &facts, &storage), ==, 0);
        g_assert_true(facts.proc_read);
        g_assert_true(facts.has_flatpak_info);
        g_assert_cmpstr(facts.flatpak_info, ==, MAPS_FLATPAK_INFO);

        assert_identity(&facts, SANDBOX_FLATPAK, "org.gnome.Maps", NULL);
}

static void test_read_missing_process(ProcFixture *f, gconstpointer data) {
        g_test_summary("A process that is gone is -ENOENT, and a pid that cannot be one -EINVAL.");

        assert_read_fails(f, SAMPLE_PID + 1, -ENOENT);
        assert_read_fails(f, 0, -EINVAL);
        assert_read_fails(f, -1, -EINVAL);
}

static void test_read_missing_exe(ProcFixture *f, gconstpointer data) {
        g_autofree char *exe = g_build_filename(f->pid_dir, "exe", NULL);

        g_test_summary("A process without an exe link (a kernel thread, a zombie) cannot be told "
                       "apart: -ENOENT.");

        g_assert_cmpint(g_unlink(exe), ==, 0);
        assert_read_fails(f, SAMPLE_PID, -ENOENT);
}

static void test_read_missing_root(ProcFixture *f, gconstpointer data) {
        g_autofree char *root = g_build_filename(f->pid_dir, "root", NULL);

        g_test_summary("A root that cannot be opened (the process died meanwhile) is a failure, "
                       "not a process without .flatpak-info.");

        g_assert_cmpint(g_rmdir(root), ==, 0);
        assert_read_fails(f, SAMPLE_PID, -ENOENT);
}

static void test_read_odd_flatpak_info(ProcFixture *f, gconstpointer data) {
        g_autofree char *root = g_build_filename(f->pid_dir, "root", NULL);
        g_autofree char *info = g_build_filename(root, ".flatpak-info", NULL);

        g_test_summary("A .flatpak-info that is there but cannot be read as a file (a directory, a "
                       "symbolic link) is a failure: whether the process is sandboxed is unknown.");

        g_assert_cmpint(g_mkdir(info, 0700), ==, 0);
        assert_read_fails(f, SAMPLE_PID, -EBADFD);
        g_assert_cmpint(g_rmdir(info), ==, 0);

        g_assert_cmpint(symlink("/etc/os-release", info), ==, 0);
        assert_read_fails(f, SAMPLE_PID, -ELOOP);
}

static void test_read_status_without_uid(ProcFixture *f, gconstpointer data) {
        const char *statuses[] = {
                "Name:\tgedit\nPid:\t4242\n",
                "Name:\tgedit\nUid:\n",
                "Name:\tgedit\nUid:\t-1\t1000\t1000\t1000\n",
                "Name:\tgedit\nUid:\t1000x\t1000\t1000\t1000\n",
                "Name:\tgedit\nUid:\t4294967295\t1000\t1000\t1000\n",
                "Name:\tgedit\nUid:\t99999999999999999999\t1000\t1000\t1000\n",
                "Name:\tgedit Uid:\t1000\n",
        };

        g_test_summary("A status without a Uid: line that starts with a valid uid is -EBADMSG.");

        for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
                g_test_message("status '%s'", statuses[i]);
                write_sample(f->pid_dir, "status", statuses[i]);
                assert_read_fails(f, SAMPLE_PID, -EBADMSG);
        }
}

static void test_read_is_bounded(ProcFixture *f, gconstpointer data) {
        g_autofree char *largest = g_strnfill(64 * 1024, '/');
        g_autofree char *too_large = g_strnfill(64 * 1024 + 1, '/');
        g_autofree char *root = g_build_filename(f->pid_dir, "root", NULL);

        g_test_summary("Files of up to 64 KiB are read, larger ones are -EFBIG, so a process cannot "
                       "make the service read without end; a NUL byte is -EBADMSG.");

        write_sample(f->pid_dir, "cgroup", largest);
        {
                _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
                CredsFacts facts = {};

                g_assert_cmpint(creds_read_proc(f->proc_dir, SAMPLE_PID, &facts, &storage), ==, 0);
                g_assert_cmpuint(strlen(facts.cgroup), ==, 64 * 1024);
        }

        write_sample(f->pid_dir, "cgroup", too_large);
        assert_read_fails(f, SAMPLE_PID, -EFBIG);
        write_sample(f->pid_dir, "cgroup", HOST_CGROUP);

        write_sample(root, ".flatpak-info", too_large);
        assert_read_fails(f, SAMPLE_PID, -EFBIG);

        {
                static const char with_nul[] = "[Application]\0\nname=org.gnome.Maps\n";
                g_autofree char *path = g_build_filename(root, ".flatpak-info", NULL);
                g_autoptr(GError) error = NULL;

                g_file_set_contents(path, with_nul, sizeof(with_nul) - 1, &error);
                g_assert_no_error(error);
                assert_read_fails(f, SAMPLE_PID, -EBADMSG);
        }
}

static void test_read_own_process(void) {
        _cleanup_(creds_storage_freep) CredsStorage *storage = NULL;
        CredsFacts facts = { .uid = getuid(), .pid = getpid() };
        struct stat exe, self;

        g_test_summary("Reading the real /proc about this test's own process gives its uid and "
                       "executable.");

        g_assert_cmpint(creds_read_proc("/proc", getpid(), &facts, &storage), ==, 0);
        g_assert_true(facts.proc_read);
        g_assert_cmpuint(facts.proc_uid, ==, getuid());
        g_assert_nonnull(facts.cgroup);
        g_assert_cmpint(facts.has_flatpak_info, ==, g_file_test("/.flatpak-info", G_FILE_TEST_EXISTS));

        /* The same file, rather than the same string as readlink() of
         * /proc/self/exe: under valgrind, that readlink() answers with the
         * program valgrind runs, not with valgrind, which is what runs. */
        g_assert_nonnull(facts.exe);
        g_test_message("exe '%s'", facts.exe);
        g_assert_true(facts.exe[0] == '/');
        g_assert_cmpint(stat(facts.exe, &exe), ==, 0);
        g_assert_cmpint(stat("/proc/self/exe", &self), ==, 0);
        g_assert_cmpuint(exe.st_dev, ==, self.st_dev);
        g_assert_cmpuint(exe.st_ino, ==, self.st_ino);
}

#define add_proc_test(path, func) \
        g_test_add(path, ProcFixture, NULL, proc_fixture_set_up, func, proc_fixture_tear_down)

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/creds/classify/host-program-is-known-by-its-exe", test_classify_host_program);
        g_test_add_func("/creds/classify/apparmor-profile-of-a-host-program-is-no-sandbox",
                        test_classify_host_program_with_apparmor_profile);
        g_test_add_func("/creds/classify/flatpak-id-comes-from-flatpak-info", test_classify_flatpak);
        g_test_add_func("/creds/classify/flatpak-scope-gives-no-id", test_classify_flatpak_scope_gives_no_id);
        g_test_add_func("/creds/classify/flatpak-info-without-plausible-name-gives-no-id",
                        test_classify_flatpak_info_without_id);
        g_test_add_func("/creds/classify/snap-id-comes-from-apparmor-label", test_classify_snap_by_label);
        g_test_add_func("/creds/classify/snap-label-of-odd-shape-gives-no-id", test_classify_snap_label_of_odd_shape);
        g_test_add_func("/creds/classify/snap-scope-gives-no-id", test_classify_snap_scope_gives_no_id);
        g_test_add_func("/creds/classify/unit-lookalikes-mark-no-sandbox", test_classify_unit_lookalikes);
        g_test_add_func("/creds/classify/cgroup-v1-any-line-counts", test_classify_cgroup_v1);
        g_test_add_func("/creds/classify/flatpak-info-wins-over-snap", test_classify_flatpak_info_wins);
        g_test_add_func("/creds/classify/snap-label-wins-over-cgroup", test_classify_snap_label_wins_over_cgroup);
        g_test_add_func("/creds/classify/reused-pid-is-unknown", test_classify_pid_reused);
        g_test_add_func("/creds/classify/unread-proc-is-unknown", test_classify_proc_not_read);
        g_test_add_func("/creds/classify/identity-owns-its-strings", test_classify_copies_strings);
        g_test_add_func("/creds/identity/done-leaves-it-untrusted", test_identity_done);
        g_test_add_func("/creds/identity/copy-owns-its-strings", test_identity_copy);
        g_test_add_func("/creds/sandbox/has-a-name-for-logs", test_sandbox_to_string);
        add_proc_test("/creds/read-proc/host-process", test_read_host_process);
        add_proc_test("/creds/read-proc/flatpak-info-is-read", test_read_flatpak_info);
        add_proc_test("/creds/read-proc/missing-process-fails", test_read_missing_process);
        add_proc_test("/creds/read-proc/missing-exe-fails", test_read_missing_exe);
        add_proc_test("/creds/read-proc/missing-root-fails", test_read_missing_root);
        add_proc_test("/creds/read-proc/odd-flatpak-info-fails", test_read_odd_flatpak_info);
        add_proc_test("/creds/read-proc/status-without-uid-fails", test_read_status_without_uid);
        add_proc_test("/creds/read-proc/reads-are-bounded", test_read_is_bounded);
        g_test_add_func("/creds/read-proc/own-process", test_read_own_process);

        return g_test_run();
}
