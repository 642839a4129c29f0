/* SPDX-License-Identifier: MIT */
/*
 * Storage faults, end to end: the service under a private bus, its store
 * made to fail through the fault-injection seam (store.h; this program is
 * built only with -Dfault_injection=true) and on a real, small, full file
 * system. A Send that cannot be stored gets org.durabus1.Error.StorageFailed
 * and leaves nothing behind, also across a crash; the service stays up,
 * answers reads and acks, other endpoints go on, and once the fault ends
 * Sends work again with nothing acknowledged before lost.
 *
 * The rules live in a file named by DURABUS_FAULTS_FILE, set before the
 * private bus starts so the activated service inherits it; each test
 * rewrites the file to start and end a fault while the service runs.
 */

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "fixture.h"

#define ENDPOINT "app.jobs"
#define OTHER "app.other"

/* Why the full-disk test cannot run here, or NULL when it can. */
static const char *no_small_disk;

typedef struct FaultFixture {
        Fixture f;
        char *rules;            /* the DURABUS_FAULTS_FILE */
        char *disk;             /* the mount point of the small file system, or NULL */
} FaultFixture;

static void set_faults(FaultFixture *ff, const char *rules) {
        g_autoptr(GError) error = NULL;

        /* g_file_set_contents() writes a new file and renames it over: the
         * service never reads half of the rules. */
        g_file_set_contents(ff->rules, rules, -1, &error);
        g_assert_no_error(error);
}

static void faults_setup(FaultFixture *ff, gconstpointer data) {
        ff->rules = g_build_filename(g_get_user_cache_dir(), "faults", NULL);
        g_assert_cmpint(g_mkdir_with_parents(g_get_user_cache_dir(), 0700), ==, 0);
        g_setenv("DURABUS_FAULTS_FILE", ff->rules, TRUE);
        fixture_setup(&ff->f, data);
}

static void faults_teardown(FaultFixture *ff, gconstpointer data) {
        fixture_teardown(&ff->f, data);
        g_unsetenv("DURABUS_FAULTS_FILE");
        g_clear_pointer(&ff->rules, g_free);
}

static GVariant *send_args(const char *id, const char *payload) {
        return g_variant_new("(ssa{sv})", id, payload, NULL);
}

static void assert_send_refused(GDBusConnection *c, const char *endpoint, const char *id) {
        g_autoptr(GError) error = fixture_endpoint_call_error(c, endpoint, "Send", send_args(id, "{\"n\": -1}"));

        fixture_assert_dbus_error(error, ERROR_STORAGE_FAILED, endpoint);
}

/* Subscribes c as subscriber and checks that the replay is exactly the
 * numbered messages [0, n) with seqs, in order, each delivered once. */
static void assert_replay(GDBusConnection *c, Collector *collector, const char *subscriber, GArray *seqs) {
        g_assert_cmpuint(fixture_subscribe(c, ENDPOINT, subscriber), ==, seqs->len);
        collector_wait(collector, seqs->len);
        collector_sync(collector);
        g_assert_cmpuint(collector->messages->len, ==, seqs->len);
        for (guint i = 0; i < seqs->len; i++)
                fixture_assert_delivered(collector_get(collector, i), ENDPOINT, subscriber, i,
                                         fixture_seq_at(seqs, i), 1);
}

static void test_write_fault(FaultFixture *ff, gconstpointer data) {
        Fixture *f = &ff->f;
        g_autoptr(GDBusConnection) reader = fixture_connect(f);
        g_autoptr(Collector) collector = collector_new(reader);
        g_autoptr(GArray) seqs = NULL;
        guint64 bytes, seq;

        g_test_summary("While the disk refuses to store messages of one endpoint, each Send to it "
                       "gets StorageFailed naming the endpoint and stores nothing (StoredMessages "
                       "and StoredBytes unchanged, no delivery); the other endpoint takes Sends; "
                       "properties, replay and acks are served. Once the fault ends the refused id "
                       "is stored with the next seq, and a kill -9 changes none of it.");

        seqs = fixture_send_numbered(f->conn, ENDPOINT, 0, 3);
        bytes = fixture_endpoint_u64_property(f->conn, ENDPOINT, "StoredBytes");

        set_faults(ff, "put:ENOSPC:key=m:path=/" ENDPOINT ".db");
        assert_send_refused(f->conn, ENDPOINT, "refused");
        assert_send_refused(f->conn, ENDPOINT, "refused");
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 3);
        g_assert_cmpuint(fixture_endpoint_u64_property(f->conn, ENDPOINT, "StoredBytes"), ==, bytes);
        g_assert_cmpuint(fixture_send(f->conn, OTHER, "elsewhere", "{}", NULL), ==, 1);

        assert_replay(reader, collector, "reader", seqs);
        g_assert_cmpuint(fixture_ack_collected(reader, ENDPOINT, "reader", collector, 0, 2), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 1);

        set_faults(ff, "");
        seq = fixture_send(f->conn, ENDPOINT, "refused", "{\"n\": 3}", NULL);
        g_assert_cmpuint(seq, ==, fixture_seq_at(seqs, 2) + 1);
        collector_wait(collector, 4);
        g_assert_cmpstr(collector_get(collector, 3)->id, ==, "refused");

        fixture_close_connection(f, reader);
        fixture_kill_service(f, SIGKILL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 2);
        g_assert_cmpuint(fixture_stored_messages(f->conn, OTHER), ==, 1);
}

static void test_sync_fault(FaultFixture *ff, gconstpointer data) {
        Fixture *f = &ff->f;
        g_autoptr(GError) batch_error = NULL;
        g_autoptr(GArray) seqs = NULL;
        g_autoptr(Collector) collector = collector_new(f->conn);

        g_test_summary("When the sync of a commit fails, the Sends and SendBatches it covered get StorageFailed and "
                       "are taken back although they were written: killed with SIGKILL while the "
                       "fault lasts, the service comes back with exactly the Sends that got a "
                       "reply, and takes Sends again.");

        seqs = fixture_send_numbered(f->conn, ENDPOINT, 0, 2);
        set_faults(ff, "sync:EIO:path=/" ENDPOINT ".db");
        for (guint i = 0; i < 3; i++) {
                g_autofree char *id = g_strdup_printf("refused-%u", i);

                assert_send_refused(f->conn, ENDPOINT, id);
        }
        batch_error = fixture_endpoint_call_error(
                f->conn, ENDPOINT, "SendBatch",
                g_variant_new_parsed("([('batch-0', '{}', @a{sv} {}), ('batch-1', '{}', {})],)"));
        fixture_assert_dbus_error(batch_error, ERROR_STORAGE_FAILED, ENDPOINT);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 2);
        g_assert_cmpuint(fixture_send(f->conn, OTHER, "elsewhere", "{}", NULL), ==, 1);

        fixture_kill_service(f, SIGKILL);
        set_faults(ff, "");

        assert_replay(f->conn, collector, "reader", seqs);
        g_assert_cmpuint(fixture_send(f->conn, ENDPOINT, "refused-0", "{}", NULL), >, fixture_seq_at(seqs, 1));
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, 3);
}

static void test_open_fault(FaultFixture *ff, gconstpointer data) {
        Fixture *f = &ff->f;
        g_autoptr(GError) error = NULL;

        g_test_summary("An endpoint whose database cannot be opened gets StorageFailed for "
                       "OpenEndpoint and Send, exists nowhere, and opens once the fault ends.");

        set_faults(ff, "open:EIO:path=/" ENDPOINT ".db");
        error = fixture_call_error(f->conn, BROKER_PATH, BROKER_IFACE, "OpenEndpoint",
                                   g_variant_new("(sa{sv})", ENDPOINT, NULL));
        fixture_assert_dbus_error(error, ERROR_STORAGE_FAILED, ENDPOINT);
        assert_send_refused(f->conn, ENDPOINT, "refused");
        g_assert_cmpuint(g_variant_n_children(fixture_list_endpoints(f->conn)), ==, 0);

        set_faults(ff, "");
        fixture_open_endpoint(f->conn, ENDPOINT, NULL);
        g_assert_cmpuint(fixture_send(f->conn, ENDPOINT, "m", "{}", NULL), ==, 1);
}

/* ---- a real full disk ---- */

#define DISK_SIZE "2M"
#define FILLER_SIZE (256 * 1024)
#define PAYLOAD_SIZE 2000

/* The file system is private to this process and its children (main()
 * unshared the mount namespace), so it vanishes with them. */
static void disk_setup(FaultFixture *ff, gconstpointer data) {
        g_autofree char *args = NULL;
        FixtureOptions options;

        if (no_small_disk) {
                faults_setup(ff, NULL);
                return;
        }

        ff->disk = g_build_filename(g_get_user_cache_dir(), "small-disk", NULL);
        g_assert_cmpint(g_mkdir_with_parents(ff->disk, 0700), ==, 0);
        if (mount("durabus-test", ff->disk, "tmpfs", 0, "size=" DISK_SIZE) < 0)
                g_error("Failed to mount a tmpfs on '%s': %s", ff->disk, g_strerror(errno));

        args = g_strdup_printf("--state-dir %s", ff->disk);
        options = (FixtureOptions) { .service_args = args };
        faults_setup(ff, &options);
}

static void disk_teardown(FaultFixture *ff, gconstpointer data) {
        faults_teardown(ff, data);
        if (ff->disk)
                g_assert_cmpint(umount2(ff->disk, MNT_DETACH), ==, 0);
        g_clear_pointer(&ff->disk, g_free);
}

static char *big_payload(guint i) {
        g_autofree char *fill = g_strnfill(PAYLOAD_SIZE, 'a' + (char) (i % 26));

        return g_strdup_printf("{\"n\": %u, \"fill\": \"%s\"}", i, fill);
}

static void test_full_disk(FaultFixture *ff, gconstpointer data) {
        Fixture *f = &ff->f;
        g_autoptr(GDBusConnection) reader = NULL;
        g_autoptr(Collector) collector = NULL;
        g_autofree char *filler = NULL;
        g_autofree char *zeros = NULL;
        g_autofree char *path = fixture_endpoint_path(ENDPOINT);
        g_autoptr(GError) error = NULL;
        guint replied = 0;

        g_test_summary("On a real " DISK_SIZE " tmpfs, Sends go on until the disk is full and then get "
                       "StorageFailed; every Send that got a reply is replayed, in order and "
                       "intact; acks are answered; once space is freed Sends work again, and a "
                       "kill -9 afterwards loses nothing that was acknowledged.");

        if (no_small_disk) {
                g_test_skip(no_small_disk);
                return;
        }

        /* Room to give back later, as a user deleting a file would. */
        filler = g_build_filename(ff->disk, "filler", NULL);
        zeros = g_malloc0(FILLER_SIZE);
        g_file_set_contents(filler, zeros, FILLER_SIZE, &error);
        g_assert_no_error(error);

        fixture_open_endpoint(f->conn, ENDPOINT, NULL);
        for (;; replied++) {
                g_autofree char *id = g_strdup_printf("big-%05u", replied);
                g_autofree char *payload = big_payload(replied);
                g_autoptr(GVariant) reply = NULL;

                g_assert_cmpuint(replied, <, 5000);
                g_clear_error(&error);
                reply = fixture_call(f->conn, path, ENDPOINT_IFACE, "Send",
                                     send_args(id, payload), "(st)", &error);
                if (!reply)
                        break;
        }
        fixture_assert_dbus_error(error, ERROR_STORAGE_FAILED, ENDPOINT);
        g_test_message("%u Sends stored before the disk was full", replied);
        g_assert_cmpuint(replied, >, 10);

        /* Up, and serving what it stored. */
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, replied);
        reader = fixture_connect(f);
        collector = collector_new(reader);
        g_assert_cmpuint(fixture_subscribe(reader, ENDPOINT, "reader"), ==, replied);
        collector_wait(collector, replied);
        for (guint i = 0; i < replied; i++) {
                const Delivered *d = collector_get(collector, i);
                g_autofree char *id = g_strdup_printf("big-%05u", i);
                g_autofree char *payload = big_payload(i);

                g_assert_cmpstr(d->id, ==, id);
                g_assert_cmpstr(d->payload, ==, payload);
                g_assert_cmpuint(d->seq, ==, i + 1);
        }
        g_assert_cmpuint(fixture_ack_collected(reader, ENDPOINT, "reader", collector, 0, 5), ==, 5);

        g_assert_cmpint(unlink(filler), ==, 0);
        {
                g_autofree char *payload = big_payload(replied);

                g_assert_cmpuint(fixture_send(f->conn, ENDPOINT, "after-full", payload, NULL), >, replied);
        }
        collector_wait(collector, replied + 1);
        g_assert_cmpstr(collector_get(collector, replied)->id, ==, "after-full");

        fixture_close_connection(f, reader);
        fixture_kill_service(f, SIGKILL);
        g_assert_cmpuint(fixture_stored_messages(f->conn, ENDPOINT), ==, replied + 1 - 5);
}

/* Gives this process a mount namespace of its own, so that the test can
 * mount a small file system that no one else sees; the private bus and the
 * service it starts inherit it. */
static void prepare_small_disk(void) {
        if (geteuid() != 0)
                no_small_disk = "mounting a small tmpfs needs root (CAP_SYS_ADMIN); not root here";
        else if (unshare(CLONE_NEWNS) < 0)
                no_small_disk = g_strdup_printf("unshare(CLONE_NEWNS) failed: %s", g_strerror(errno));
        else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                no_small_disk = g_strdup_printf("making mounts private failed: %s", g_strerror(errno));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
        g_test_dbus_unset();
        prepare_small_disk();

        g_test_add("/faults/write/refused-send-stores-nothing-and-the-rest-is-served", FaultFixture, NULL,
                   faults_setup, test_write_fault, faults_teardown);
        g_test_add("/faults/sync/refused-sends-are-taken-back-also-across-a-crash", FaultFixture, NULL,
                   faults_setup, test_sync_fault, faults_teardown);
        g_test_add("/faults/open/endpoint-that-cannot-be-opened-is-refused-until-the-fault-ends", FaultFixture,
                   NULL, faults_setup, test_open_fault, faults_teardown);
        g_test_add("/faults/full-disk/sends-fail-then-work-again-and-nothing-replied-is-lost", FaultFixture, NULL,
                   disk_setup, test_full_disk, disk_teardown);

        return g_test_run();
}
