/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of service/store.c: opening and creating a database file, its
 * format-version record, the answer to files that are not durabus databases
 * (empty, garbage, truncated, scribbled on), the get/put/delete/exists
 * semantics the endpoint code builds on, and crash atomicity: the base and
 * the journal, checked on copies of the files taken at chosen moments (a
 * crash is a copy taken while the store is open, or a store freed without
 * store_close()).
 */

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"
#include "store.h"
#include "util.h"

/* The version record, as store.c writes it: the key starts with a NUL. */
#define VERSION_KEY "\0durabus-format"
#define VERSION_KEY_SIZE (sizeof(VERSION_KEY) - 1)

/* ---- helpers ---- */

/* A fresh directory for one test, removed with what the test left in it. */
static char *tmpdir_new(void) {
        g_autoptr(GError) error = NULL;
        char *dir;

        dir = g_dir_make_tmp("durabus-test-store-XXXXXX", &error);
        g_assert_no_error(error);
        return dir;
}

static void tmpdir_removep(char **dir) {
        g_autoptr(GDir) d = NULL;
        const char *name;

        if (!*dir)
                return;

        d = g_dir_open(*dir, 0, NULL);
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(*dir, name, NULL);
                (void) unlink(path);
        }
        (void) rmdir(*dir);
        g_free(*dir);
}

static void write_bytes(const char *path, const void *data, size_t size) {
        g_autoptr(GError) error = NULL;

        g_file_set_contents(path, data, (gssize) size, &error);
        g_assert_no_error(error);
}

static GBytes *read_bytes(const char *path) {
        g_autoptr(GError) error = NULL;
        char *data = NULL;
        size_t size = 0;

        g_file_get_contents(path, &data, &size, &error);
        g_assert_no_error(error);
        return g_bytes_new_take(data, size);
}

static off_t file_size(const char *path) {
        struct stat st;

        g_assert_cmpint(stat(path, &st), ==, 0);
        return st.st_size;
}

/* Opens path, which must succeed. */
static Store *open_ok(const char *path, bool create) {
        Store *store = NULL;

        g_assert_cmpint(store_open(path, create, &store), ==, 0);
        g_assert_nonnull(store);
        return store;
}

static void put_str(Store *store, const char *key, const char *value) {
        g_assert_cmpint(store_put(store, key, strlen(key), value, strlen(value)), ==, 0);
}

/* Checks that key holds exactly value. */
static void assert_value(Store *store, const char *key, const char *value) {
        _cleanup_(freep) void *got = NULL;
        size_t size = 0;

        g_assert_cmpint(store_get(store, key, strlen(key), &got, &size), ==, 0);
        g_assert_cmpmem(got, size, value, strlen(value));
}

static void assert_absent(Store *store, const char *key) {
        void *got = NULL;
        size_t size = 4242;

        g_assert_cmpint(store_get(store, key, strlen(key), &got, &size), ==, -ENOENT);
        g_assert_null(got);
        g_assert_cmpuint(size, ==, 4242);
        g_assert_cmpint(store_exists(store, key, strlen(key)), ==, 0);
}

/* Checks that opening path fails with expected, leaves *ret_store alone and
 * leaves the file as it was. */
static void assert_open_fails(const char *path, bool create, int expected) {
        g_autoptr(GBytes) before = read_bytes(path);
        g_autoptr(GBytes) after = NULL;
        Store *store = NULL;

        g_assert_cmpint(store_open(path, create, &store), ==, expected);
        g_assert_null(store);

        after = read_bytes(path);
        g_assert_true(g_bytes_equal(before, after));
}

/* A database with some records, closed. */
static void make_database(const char *path, unsigned n_keys) {
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        for (unsigned i = 0; i < n_keys; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);

                put_str(store, key, value);
        }
}

/* ---- crash simulation ---- */

/* The names of the checkpoint and the journal of path; the caller frees. */
static char *base_of(const char *path) {
        return g_strconcat(path, ".base", NULL);
}

static char *journal_of(const char *path) {
        return g_strconcat(path, ".journal", NULL);
}

/* The journal's framing (journal.h): length and CRC-32, then op and key
 * size; its head is OPEN with an empty key and the nonce. */
#define FRAME_SIZE 8
#define BODY_HEAD_SIZE 5
#define JOURNAL_HEAD_SIZE (FRAME_SIZE + BODY_HEAD_SIZE + JOURNAL_NONCE_SIZE)

/* Checks that the journal holds no change: its head alone. */
static void assert_journal_empty(const char *journal) {
        g_assert_cmpint(journal_read(journal, NULL, NULL), ==, 1);
        g_assert_cmpint(file_size(journal), ==, JOURNAL_HEAD_SIZE);
}

/* What a database made before the journal looks like. */
static void remove_checkpoint(const char *path) {
        g_autofree char *base = base_of(path), *journal = journal_of(path);

        g_assert_cmpint(unlink(base), ==, 0);
        (void) unlink(journal);
}

static void copy_if_there(const char *from, const char *to) {
        g_autoptr(GBytes) bytes = NULL;

        if (!g_file_test(from, G_FILE_TEST_EXISTS))
                return;
        bytes = read_bytes(from);
        write_bytes(to, g_bytes_get_data(bytes, NULL), g_bytes_get_size(bytes));
}

/* The files of the database at path as a crash at this moment would leave
 * them (what the kernel has, synced or not), copied to dir under the same
 * name; returns the copy's path. */
static char *crash_copy(const char *path, const char *dir) {
        g_autofree char *name = g_path_get_basename(path);
        char *copy = g_build_filename(dir, name, NULL);
        g_autofree char *base = base_of(path), *journal = journal_of(path);
        g_autofree char *copy_base = base_of(copy), *copy_journal = journal_of(copy);

        copy_if_there(path, copy);
        copy_if_there(base, copy_base);
        copy_if_there(journal, copy_journal);
        return copy;
}

/* Scribbles over the live file, as a crash in the middle of GDBM's writes
 * may: only the base and the journal can give the records back. */
static void scribble(const char *path) {
        g_autofree char *junk = g_strnfill(file_size(path), 'x');

        write_bytes(path, junk, strlen(junk));
}

/* Checks that the store holds key-first .. key-(last-1), each with its
 * value, and nothing else but the version record. */
static void assert_keys(Store *store, unsigned first, unsigned last) {
        for (unsigned i = 0; i < last + 10; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);

                if (i >= first && i < last)
                        assert_value(store, key, value);
                else
                        assert_absent(store, key);
        }
}

static void put_keys(Store *store, unsigned first, unsigned last) {
        for (unsigned i = first; i < last; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);

                put_str(store, key, value);
        }
}

static void delete_keys(Store *store, unsigned first, unsigned last) {
        for (unsigned i = first; i < last; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);

                g_assert_cmpint(store_delete(store, key, strlen(key)), ==, 0);
        }
}

/* ---- the journal's format (journal.h), written by hand ---- */

/* CLOSE: as the head, and its own offset. */
#define CLOSE_RECORD_SIZE (JOURNAL_HEAD_SIZE + 8)

static void put_le(uint8_t *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Appends a framed record to out, as journal.c writes one. */
static void frame_record(GByteArray *out, JournalOp op, const char *key, const void *value, size_t value_size) {
        size_t key_size = key ? strlen(key) : 0, body = BODY_HEAD_SIZE + key_size + value_size;
        g_autofree uint8_t *p = g_malloc(FRAME_SIZE + body);

        p[FRAME_SIZE] = (uint8_t) op;
        put_le(p + FRAME_SIZE + 1, key_size, 4);
        memcpy(p + FRAME_SIZE + BODY_HEAD_SIZE, key ? key : "", key_size);
        if (value_size > 0)
                memcpy(p + FRAME_SIZE + BODY_HEAD_SIZE + key_size, value, value_size);
        put_le(p, body, 4);
        put_le(p + 4, journal_crc32(0, p + FRAME_SIZE, body), 4);
        g_byte_array_append(out, p, (guint) (FRAME_SIZE + body));
}

/* The CLOSE record that journal_append_close() writes at offset in a
 * journal whose head has nonce. */
static GByteArray *close_record(const uint8_t *nonce, uint64_t offset) {
        GByteArray *record = g_byte_array_new();
        uint8_t value[JOURNAL_NONCE_SIZE + 8];

        memcpy(value, nonce, JOURNAL_NONCE_SIZE);
        put_le(value + JOURNAL_NONCE_SIZE, offset, 8);
        frame_record(record, JOURNAL_CLOSE, NULL, value, sizeof(value));
        g_assert_cmpuint(record->len, ==, CLOSE_RECORD_SIZE);
        return record;
}

/* The nonce of the journal's head, which a test may know and a client not. */
static void read_nonce(const char *journal, uint8_t nonce[static JOURNAL_NONCE_SIZE]) {
        g_autoptr(GBytes) bytes = read_bytes(journal);
        const uint8_t *data = g_bytes_get_data(bytes, NULL);

        g_assert_cmpuint(g_bytes_get_size(bytes), >=, JOURNAL_HEAD_SIZE);
        g_assert_cmpuint(data[FRAME_SIZE], ==, JOURNAL_OPEN);
        memcpy(nonce, data + FRAME_SIZE + BODY_HEAD_SIZE, JOURNAL_NONCE_SIZE);
}

/* The last size bytes of the file at path. */
static GBytes *read_tail(const char *path, size_t size) {
        g_autoptr(GBytes) bytes = read_bytes(path);

        g_assert_cmpuint(g_bytes_get_size(bytes), >=, size);
        return g_bytes_new_from_bytes(bytes, g_bytes_get_size(bytes) - size, size);
}

/* Flips a bit of the first record in the journal that holds value. */
static void corrupt_record(const char *journal, const char *value) {
        g_autoptr(GBytes) bytes = read_bytes(journal);
        size_t size = g_bytes_get_size(bytes);
        g_autofree uint8_t *data = g_memdup2(g_bytes_get_data(bytes, NULL), size);
        uint8_t *at = memmem(data, size, value, strlen(value));

        g_assert_nonnull(at);
        at[0] ^= 0x01;
        write_bytes(journal, data, size);
}

/* Puts "forged", whose value ends with forgery, and syncs; the forged bytes
 * end the journal, as a CLOSE would. */
static void put_forgery(Store *store, const GByteArray *forgery) {
        g_assert_cmpint(store_put(store, "forged", 6, forgery->data, forgery->len), ==, 0);
        g_assert_cmpint(store_sync(store), ==, 0);
}

/* Where the value of a PUT of key appended now to journal begins. */
static uint64_t value_offset(const char *journal, const char *key) {
        return (uint64_t) file_size(journal) + FRAME_SIZE + BODY_HEAD_SIZE + strlen(key);
}

/* A crash now: the copy of the database at path, its live file in ruins,
 * must open restored, with key-first .. key-(last-1) and "forged". */
static void assert_crash_restores(const char *path, unsigned first, unsigned last) {
        _cleanup_(tmpdir_removep) char *crash = tmpdir_new();
        g_autofree char *copy = crash_copy(path, crash);
        _cleanup_(store_freep) Store *restored = NULL;

        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, first, last);
        g_assert_cmpint(store_exists(restored, "forged", 6), ==, 1);
}

/* ---- opening ---- */

static void test_open_creates_missing_file(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "new.db", NULL);
        _cleanup_(store_freep) Store *store = NULL;
        _cleanup_(freep) void *version = NULL;
        size_t size = 0;

        g_test_summary("With create, a missing file is created, holding the format-version record.");

        store = open_ok(path, true);
        g_assert_true(g_file_test(path, G_FILE_TEST_IS_REGULAR));
        g_assert_cmpint(file_size(path), >, 0);

        g_assert_cmpint(store_get(store, VERSION_KEY, VERSION_KEY_SIZE, &version, &size), ==, 0);
        g_assert_cmpmem(version, size, "1", 1);
}

static void test_open_without_create_missing_is_enoent(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "missing.db", NULL);
        Store *store = NULL;

        g_test_summary("Without create, a missing file is -ENOENT, the store is not set and no file "
                       "appears.");

        g_assert_cmpint(store_open(path, false, &store), ==, -ENOENT);
        g_assert_null(store);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static void test_open_in_missing_directory(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "no-such-dir", "x.db", NULL);
        Store *store = NULL;

        g_test_summary("Creating a file in a directory that does not exist is the system's -ENOENT.");

        g_assert_cmpint(store_open(path, true, &store), ==, -ENOENT);
        g_assert_null(store);
}

static void test_open_reopens_own_database(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "own.db", NULL);

        g_test_summary("A database the store created opens again, with or without create, and "
                       "holds what was put in it.");

        make_database(path, 3);

        {
                _cleanup_(store_freep) Store *store = open_ok(path, false);

                assert_value(store, "key-0", "value-0");
                assert_value(store, "key-2", "value-2");
        }
        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);

                assert_value(store, "key-1", "value-1");
        }
}

static void test_open_refuses_other_version(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "v2.db", NULL);

        g_test_summary("A database whose format-version record says 2 is refused with "
                       "-EPROTONOSUPPORT, with or without create, and left as it is.");

        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);

                g_assert_cmpint(store_put(store, VERSION_KEY, VERSION_KEY_SIZE, "2", 1), ==, 0);
                put_str(store, "data", "kept");
        }

        assert_open_fails(path, false, -EPROTONOSUPPORT);
        assert_open_fails(path, true, -EPROTONOSUPPORT);
}

static void test_open_refuses_longer_version(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        const char *versions[] = { "10", "1\0", " 1" };

        g_test_summary("The version is compared whole: '10', '1\\0' and ' 1' are not version 1.");

        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                g_autofree char *name = g_strdup_printf("version-%zu.db", i);
                g_autofree char *path = g_build_filename(dir, name, NULL);

                {
                        _cleanup_(store_freep) Store *store = open_ok(path, true);

                        g_assert_cmpint(store_put(store, VERSION_KEY, VERSION_KEY_SIZE, versions[i], 2), ==, 0);
                }
                assert_open_fails(path, false, -EPROTONOSUPPORT);
        }
}

static void test_open_refuses_missing_version(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "noversion.db", NULL);

        g_test_summary("A GDBM database without the format-version record is not a durabus "
                       "database: -EBADMSG, also with create (no record is added to it).");

        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);

                g_assert_cmpint(store_delete(store, VERSION_KEY, VERSION_KEY_SIZE), ==, 0);
                put_str(store, "data", "kept");
        }

        assert_open_fails(path, false, -EBADMSG);
        assert_open_fails(path, true, -EBADMSG);
}

static void test_open_refuses_empty_file(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "empty.db", NULL);

        g_test_summary("An empty file is damage, not a new database: -EBADMSG with or without "
                       "create, and the file stays empty.");

        write_bytes(path, "", 0);

        assert_open_fails(path, false, -EBADMSG);
        assert_open_fails(path, true, -EBADMSG);
        g_assert_cmpint(file_size(path), ==, 0);
}

static void test_open_refuses_garbage(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "garbage.db", NULL);
        g_autoptr(GRand) rand = g_rand_new_with_seed(1123);
        const size_t sizes[] = { 1, 10, 512, 4096, 65536 };

        g_test_summary("A file of random bytes is not a GDBM database: GDBM reports a bad magic "
                       "number (or a header it cannot read), which the store maps to -EBADMSG; the "
                       "file is not touched.");

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                g_autofree uint8_t *garbage = g_malloc(sizes[i]);

                for (size_t j = 0; j < sizes[i]; j++)
                        garbage[j] = (uint8_t) g_rand_int_range(rand, 0, 256);
                write_bytes(path, garbage, sizes[i]);

                g_test_message("%zu bytes of garbage", sizes[i]);
                assert_open_fails(path, false, -EBADMSG);
                assert_open_fails(path, true, -EBADMSG);
        }
}

/* Checks the answers of a damaged database of keys "key-0".."key-<n_keys-1>":
 * opening it is 0 or -EBADMSG; once open, each get returns a value, -EBADMSG,
 * or -ENOENT where GDBM cannot tell damage from absence. With exact_values,
 * a value returned must be the one stored (GDBM keeps no checksum, so that
 * holds for a file cut short, not for one scribbled over). */
static void assert_damage_reported(const char *path, const char *damage, unsigned n_keys, bool exact_values) {
        _cleanup_(store_freep) Store *store = NULL;
        int r;

        r = store_open(path, false, &store);
        if (r < 0) {
                if (r != -EBADMSG)
                        g_test_message("%s: store_open() returned %d (%s)", damage, r, g_strerror(-r));
                g_assert_cmpint(r, ==, -EBADMSG);
                g_assert_null(store);
                return;
        }

        for (unsigned i = 0; i < n_keys; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);
                _cleanup_(freep) void *got = NULL;
                size_t got_size = 0;

                r = store_get(store, key, strlen(key), &got, &got_size);
                if (r < 0 && r != -ENOENT && r != -EBADMSG)
                        g_test_message("%s: store_get('%s') returned %d (%s)", damage, key, r, g_strerror(-r));
                if (r == 0 && exact_values)
                        g_assert_cmpmem(got, got_size, value, strlen(value));
                else if (r < 0 && r != -ENOENT)
                        g_assert_cmpint(r, ==, -EBADMSG);
        }
}

static void test_open_refuses_truncated_database(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "truncated.db", NULL);
        g_autofree char *whole = g_build_filename(dir, "whole.db", NULL);
        g_autoptr(GBytes) bytes = NULL;
        size_t size;

        g_test_summary("A database cut short inside its header is -EBADMSG at open. Cut anywhere "
                       "else (every multiple of 512 bytes is tried), it is -EBADMSG at open or at "
                       "get, never another error: the file is damaged, the disk did not fail.");

        make_database(whole, 500);
        bytes = read_bytes(whole);
        size = g_bytes_get_size(bytes);
        g_assert_cmpuint(size, >, 8192);

        {
                const size_t in_header[] = { 1, 100, 511 };

                for (size_t i = 0; i < ELEMENTSOF(in_header); i++) {
                        write_bytes(path, g_bytes_get_data(bytes, NULL), in_header[i]);
                        assert_open_fails(path, false, -EBADMSG);
                }
        }

        for (size_t len = 512; len < size; len += 512) {
                g_autofree char *damage = g_strdup_printf("cut at %zu of %zu bytes", len, size);

                write_bytes(path, g_bytes_get_data(bytes, NULL), len);
                assert_damage_reported(path, damage, 500, true);
        }
}

static void test_open_scribbled_database(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "scribbled.db", NULL);
        g_autofree char *whole = g_build_filename(dir, "whole.db", NULL);
        g_autoptr(GBytes) bytes = NULL;
        size_t size;

        g_test_summary("A database with 512 bytes scribbled over at any place never crashes the "
                       "store: a broken header is -EBADMSG at open; broken structure is -EBADMSG "
                       "at get or, where GDBM cannot tell, a key that reads as absent (-ENOENT). "
                       "Scribbled values come back as they are: GDBM keeps no checksum, checking "
                       "them is the record decoders' job.");

        make_database(whole, 200);
        bytes = read_bytes(whole);
        size = g_bytes_get_size(bytes);

        for (size_t offset = 0; offset < size; offset += 1024) {
                g_autofree uint8_t *copy = g_memdup2(g_bytes_get_data(bytes, NULL), size);

                for (size_t j = 0; j < 512 && offset + j < size; j++)
                        copy[offset + j] = (uint8_t) (j * 37 + offset / 1024);
                write_bytes(path, copy, size);

                if (offset == 0)
                        assert_open_fails(path, false, -EBADMSG);
                else {
                        g_autofree char *damage = g_strdup_printf("scribbled at %zu of %zu bytes", offset, size);
                        assert_damage_reported(path, damage, 200, false);
                }
        }
}

/* ---- recovery ---- */

/* The one PATH.damaged-* file next to path; fails the test unless there is
 * exactly one. The caller frees it. */
static char *damaged_file_of(const char *path) {
        g_autofree char *dir = g_path_get_dirname(path), *base = g_path_get_basename(path);
        g_autofree char *prefix = g_strconcat(base, ".damaged-", NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        char *found = NULL;
        const char *name;

        g_assert_nonnull(d);
        while ((name = g_dir_read_name(d)))
                if (g_str_has_prefix(name, prefix)) {
                        g_assert_null(found);
                        found = g_build_filename(dir, name, NULL);
                }
        g_assert_nonnull(found);
        return found;
}

static void test_recover_truncated(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(store_recovery_done) StoreRecovery recovery = {};
        g_autofree char *path = g_build_filename(dir, "cut.db", NULL);
        g_autofree char *damaged = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        g_autoptr(GBytes) before = NULL, kept = NULL;
        unsigned readable = 0;

        g_test_summary("store_recover() on a database without checkpoint (made before the journal), "
                       "cut short, keeps the damaged file, byte for byte, as PATH.damaged-TIMESTAMP "
                       "and puts at PATH a database holding every record GDBM could still read, all "
                       "with their right values.");

        make_database(path, 2000);
        remove_checkpoint(path);
        g_assert_cmpint(truncate(path, file_size(path) - 20000), ==, 0);
        before = read_bytes(path);

        g_assert_cmpint(store_recover(path, &recovery), ==, 0);
        g_assert_false(recovery.unreadable);
        g_assert_cmpuint(recovery.failed_records + recovery.failed_buckets, >, 0);
        g_assert_cmpuint(recovery.recovered_records, >, 1000);

        damaged = damaged_file_of(path);
        g_assert_cmpstr(recovery.damaged_path, ==, damaged);
        kept = read_bytes(damaged);
        g_assert_true(g_bytes_equal(before, kept));

        store = open_ok(path, false);
        for (unsigned i = 0; i < 2000; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);
                _cleanup_(freep) void *got = NULL;
                size_t size = 0;
                int r = store_get(store, key, strlen(key), &got, &size);

                g_assert_true(r == 0 || r == -ENOENT);
                if (r == 0) {
                        g_assert_cmpmem(got, size, value, strlen(value));
                        readable++;
                }
        }
        /* Version record aside, every record recovered reads back. */
        g_assert_cmpuint(readable, ==, recovery.recovered_records - 1);
}

static void test_recover_from_checkpoint(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(store_recovery_done) StoreRecovery recovery = {};
        g_autofree char *path = g_build_filename(dir, "cut.db", NULL);
        g_autofree char *damaged = NULL, *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        g_autoptr(GBytes) before = NULL, kept = NULL;

        g_test_summary("store_recover() of a damaged database with a checkpoint rebuilds it from the "
                       "base and the journal, every record included, keeps the damaged file, and "
                       "leaves a new base with an empty journal.");

        make_database(path, 2000);
        g_assert_cmpint(truncate(path, file_size(path) - 20000), ==, 0);
        before = read_bytes(path);

        g_assert_cmpint(store_recover(path, &recovery), ==, 0);
        g_assert_true(recovery.from_checkpoint);
        g_assert_false(recovery.unreadable);
        g_assert_cmpuint(recovery.recovered_records, ==, 2001);
        damaged = damaged_file_of(path);
        kept = read_bytes(damaged);
        g_assert_true(g_bytes_equal(before, kept));
        journal = journal_of(path);
        assert_journal_empty(journal);

        store = open_ok(path, false);
        assert_keys(store, 0, 2000);
}

static void test_recover_unreadable(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        _cleanup_(store_recovery_done) StoreRecovery recovery = {};
        g_autofree char *path = g_build_filename(dir, "garbage.db", NULL);
        g_autofree char *damaged = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        g_autoptr(GBytes) kept = NULL;
        char garbage[8192];

        g_test_summary("A file GDBM cannot open at all is kept as PATH.damaged-TIMESTAMP and "
                       "replaced by an empty durabus database; recovering twice keeps both "
                       "damaged files.");

        memset(garbage, 'x', sizeof(garbage));
        write_bytes(path, garbage, sizeof(garbage));

        g_assert_cmpint(store_recover(path, &recovery), ==, 0);
        g_assert_true(recovery.unreadable);
        g_assert_cmpuint(recovery.recovered_records, ==, 0);
        damaged = damaged_file_of(path);
        kept = read_bytes(damaged);
        g_assert_cmpmem(g_bytes_get_data(kept, NULL), g_bytes_get_size(kept), garbage, sizeof(garbage));

        store = open_ok(path, false);
        assert_absent(store, "key-0");
        store = store_free(store);

        /* Once more, in the same second: the first damaged file stays. */
        write_bytes(path, garbage, sizeof(garbage));
        store_recovery_done(&recovery);
        g_assert_cmpint(store_recover(path, &recovery), ==, 0);
        g_assert_cmpstr(recovery.damaged_path, !=, damaged);
        g_assert_true(g_file_test(damaged, G_FILE_TEST_EXISTS));
        g_assert_true(g_file_test(recovery.damaged_path, G_FILE_TEST_EXISTS));
}

static void test_recover_missing_is_enoent(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        StoreRecovery recovery = {};
        g_autofree char *path = g_build_filename(dir, "none.db", NULL);

        g_test_summary("store_recover() of a file that does not exist is -ENOENT and creates nothing.");

        g_assert_cmpint(store_recover(path, &recovery), ==, -ENOENT);
        g_assert_null(recovery.damaged_path);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

#ifdef DURABUS_FAULT_INJECTION

/* ---- fault injection ---- */

static void test_fault_put_after(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "faults.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("DURABUS_FAULTS=put:ENOSPC:after=2 lets two puts through and fails every "
                       "later one with -ENOSPC without writing; reads go on; once the rule is gone "
                       "puts work again.");

        g_setenv("DURABUS_FAULTS", "put:ENOSPC:after=2", TRUE);
        put_str(store, "a", "1");
        put_str(store, "b", "2");
        g_assert_cmpint(store_put(store, "c", 1, "3", 1), ==, -ENOSPC);
        g_assert_cmpint(store_put(store, "a", 1, "changed", 7), ==, -ENOSPC);
        assert_value(store, "a", "1");
        assert_absent(store, "c");
        g_assert_cmpint(store_delete(store, "b", 1), ==, 0);
        g_assert_cmpint(store_sync(store), ==, 0);

        g_unsetenv("DURABUS_FAULTS");
        put_str(store, "c", "3");
        assert_value(store, "c", "3");
}

static void test_fault_filters(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "one.db", NULL);
        g_autofree char *other = g_build_filename(dir, "two.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);
        _cleanup_(store_freep) Store *store2 = open_ok(other, true);
        Store *none = NULL;

        g_test_summary("A rule's path and key fields narrow it to one database and one kind of "
                       "record; sync, delete and open rules fail those operations with their "
                       "errno; a malformed rule is ignored.");

        g_setenv("DURABUS_FAULTS", "put:EIO:path=/one.db:key=m bogus:EIO put:EPERM sync:EIO:path=two", TRUE);
        g_assert_cmpint(store_put(store, "m1", 2, "x", 1), ==, -EIO);
        put_str(store, "i1", "x");
        put_str(store2, "m1", "x");
        g_assert_cmpint(store_sync(store), ==, 0);
        g_assert_cmpint(store_sync(store2), ==, -EIO);

        g_setenv("DURABUS_FAULTS", "delete:ENOSPC;open:EIO:path=three", TRUE);
        g_assert_cmpint(store_delete(store, "i1", 2), ==, -ENOSPC);
        assert_value(store, "i1", "x");
        {
                g_autofree char *third = g_build_filename(dir, "three.db", NULL);

                g_assert_cmpint(store_open(third, true, &none), ==, -EIO);
                g_assert_null(none);
                g_assert_false(g_file_test(third, G_FILE_TEST_EXISTS));
        }
        g_unsetenv("DURABUS_FAULTS");
}

static void test_fault_file_reread(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "file.db", NULL);
        g_autofree char *rules = g_build_filename(dir, "rules", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("The rules file named by DURABUS_FAULTS_FILE is read before every "
                       "operation: a fault starts and ends while the store stays open, and a "
                       "missing file means no fault.");

        g_setenv("DURABUS_FAULTS_FILE", rules, TRUE);
        put_str(store, "a", "1");
        write_bytes(rules, "sync:EIO\n", 9);
        g_assert_cmpint(store_sync(store), ==, -EIO);
        write_bytes(rules, "", 0);
        g_assert_cmpint(store_sync(store), ==, 0);
        g_unsetenv("DURABUS_FAULTS_FILE");
}

#endif

static void test_free_accepts_null(void) {
        Store *store = NULL;

        g_test_summary("store_free(NULL) does nothing and returns NULL; store_freep on NULL too.");

        g_assert_null(store_free(NULL));
        store_freep(&store);
}

/* ---- records ---- */

static void test_get_returns_a_copy(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "get.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);
        _cleanup_(freep) void *value = NULL;
        size_t size = 0;

        g_test_summary("get returns a newly allocated copy of the value with its size; changing "
                       "the copy does not change the database.");

        put_str(store, "k", "hello");
        g_assert_cmpint(store_get(store, "k", 1, &value, &size), ==, 0);
        g_assert_cmpmem(value, size, "hello", 5);

        memset(value, 'X', size);
        assert_value(store, "k", "hello");
}

static void test_get_missing_is_enoent(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "missing-key.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("get of an absent key is -ENOENT and leaves the out-parameters alone.");

        assert_absent(store, "nothing-here");
        put_str(store, "a", "1");
        /* A key that is a prefix or an extension of a stored one is another key. */
        assert_absent(store, "ab");
}

static void test_put_replaces(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "replace.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("put over an existing key replaces its value, with a longer and a shorter one.");

        put_str(store, "k", "first");
        put_str(store, "k", "a much longer second value");
        assert_value(store, "k", "a much longer second value");
        put_str(store, "k", "3");
        assert_value(store, "k", "3");
}

static void test_put_binary(void) {
        static const uint8_t key_a[] = { 'm', 0, 0, 0, 1 };
        static const uint8_t key_b[] = { 'm', 0, 0, 0, 2 };
        static const uint8_t value[] = { 0, 1, 2, 0, 255, 0 };
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "binary.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);
        _cleanup_(freep) void *got = NULL;
        size_t size = 0;

        g_test_summary("Keys and values are byte strings: NUL bytes inside them count, and a key "
                       "is not confused with a prefix of itself.");

        g_assert_cmpint(store_put(store, key_a, sizeof(key_a), value, sizeof(value)), ==, 0);
        g_assert_cmpint(store_put(store, key_b, sizeof(key_b), "b", 1), ==, 0);
        g_assert_cmpint(store_put(store, key_a, 1, "prefix", 6), ==, 0);

        g_assert_cmpint(store_get(store, key_a, sizeof(key_a), &got, &size), ==, 0);
        g_assert_cmpmem(got, size, value, sizeof(value));
        g_assert_cmpint(store_exists(store, key_b, sizeof(key_b)), ==, 1);
        g_assert_cmpint(store_exists(store, key_a, 1), ==, 1);
        g_assert_cmpint(store_exists(store, key_a, 2), ==, 0);
}

static void test_put_empty_value(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "empty-value.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);
        _cleanup_(freep) void *got = NULL;
        size_t size = 4242;

        g_test_summary("An empty value is a value: get returns 0 with size 0, exists says 1.");

        g_assert_cmpint(store_put(store, "k", 1, "", 0), ==, 0);
        g_assert_cmpint(store_get(store, "k", 1, &got, &size), ==, 0);
        g_assert_cmpuint(size, ==, 0);
        g_assert_cmpint(store_exists(store, "k", 1), ==, 1);
}

static void test_exists(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "exists.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("exists is 1 for a stored key and 0 for an absent or deleted one, also right "
                       "after a failed lookup.");

        g_assert_cmpint(store_exists(store, "k", 1), ==, 0);
        put_str(store, "k", "v");
        g_assert_cmpint(store_exists(store, "k", 1), ==, 1);

        /* A lookup that failed before must not turn the next answer into an error. */
        g_assert_cmpint(store_delete(store, "absent", 6), ==, -ENOENT);
        g_assert_cmpint(store_exists(store, "k", 1), ==, 1);
        g_assert_cmpint(store_exists(store, "absent", 6), ==, 0);

        g_assert_cmpint(store_delete(store, "k", 1), ==, 0);
        g_assert_cmpint(store_exists(store, "k", 1), ==, 0);
}

static void test_delete(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "delete.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("delete removes a key (0) and only that key; deleting an absent key is -ENOENT.");

        put_str(store, "a", "1");
        put_str(store, "b", "2");

        g_assert_cmpint(store_delete(store, "a", 1), ==, 0);
        assert_absent(store, "a");
        assert_value(store, "b", "2");

        g_assert_cmpint(store_delete(store, "a", 1), ==, -ENOENT);
        g_assert_cmpint(store_delete(store, "never", 5), ==, -ENOENT);

        /* The key can be stored again. */
        put_str(store, "a", "again");
        assert_value(store, "a", "again");
}

static void test_changes_persist_across_reopen(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "persist.db", NULL);

        g_test_summary("Puts, replacements and deletes are all there after closing and reopening.");

        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);

                put_str(store, "kept", "1");
                put_str(store, "replaced", "old");
                put_str(store, "replaced", "new");
                put_str(store, "deleted", "x");
                g_assert_cmpint(store_delete(store, "deleted", 7), ==, 0);
                g_assert_cmpint(store_sync(store), ==, 0);
        }
        {
                _cleanup_(store_freep) Store *store = open_ok(path, false);

                assert_value(store, "kept", "1");
                assert_value(store, "replaced", "new");
                assert_absent(store, "deleted");
        }
}

/* Runs in a subprocess: stores records in the database at $DURABUS_TEST_DB,
 * says so, and dies as under kill -9. */
static void store_then_die(void) {
        Store *store = NULL;
        const char *path = g_getenv("DURABUS_TEST_DB");

        g_assert_nonnull(path);
        g_assert_cmpint(store_open(path, true, &store), ==, 0);
        for (unsigned i = 0; i < 300; i++) {
                char key[32];
                int n = snprintf(key, sizeof(key), "key-%u", i);

                g_assert_cmpint(store_put(store, key, (size_t) n, "v", 1), ==, 0);
        }
        g_assert_cmpint(store_delete(store, "key-7", 5), ==, 0);

        printf("stored\n");
        fflush(stdout);
        /* No store_free(), no sync, no exit handler. */
        (void) raise(SIGKILL);
}

static void test_changes_survive_process_death(void) {
        _cleanup_(tmpdir_removep) char *dir = NULL;
        g_autofree char *path = NULL;
        _cleanup_(store_freep) Store *store = NULL;

        if (g_test_subprocess()) {
                store_then_die();
                return;
        }

        g_test_summary("What a put or delete returned from is in the file even when the process "
                       "is then killed (SIGKILL) without closing or syncing the store, as the "
                       "header promises.");

        dir = tmpdir_new();
        path = g_build_filename(dir, "killed.db", NULL);
        g_setenv("DURABUS_TEST_DB", path, TRUE);
        g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
        g_unsetenv("DURABUS_TEST_DB");
        g_test_trap_assert_failed();
        g_test_trap_assert_stdout("stored\n");

        store = open_ok(path, false);
        for (unsigned i = 0; i < 300; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);

                g_assert_cmpint(store_exists(store, key, strlen(key)), ==, i == 7 ? 0 : 1);
        }
}

static void test_sync(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "sync.db", NULL);
        _cleanup_(store_freep) Store *store = open_ok(path, true);

        g_test_summary("sync returns 0, also with nothing to flush, and changes nothing.");

        g_assert_cmpint(store_sync(store), ==, 0);
        put_str(store, "k", "v");
        g_assert_cmpint(store_sync(store), ==, 0);
        g_assert_cmpint(store_sync(store), ==, 0);
        assert_value(store, "k", "v");
}

static void test_reorganize_keeps_data(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "reorganize.db", NULL);
        g_autofree char *big = g_strnfill(200, 'p');
        const unsigned n = 2000;

        g_test_summary("reorganize keeps every record that was not deleted (the version record "
                       "included), none that was, and the store stays usable; the file does not grow.");

        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);
                off_t before;

                for (unsigned i = 0; i < n; i++) {
                        g_autofree char *key = g_strdup_printf("key-%u", i);
                        put_str(store, key, big);
                }
                for (unsigned i = 0; i < n; i += 2) {
                        g_autofree char *key = g_strdup_printf("key-%u", i);
                        g_assert_cmpint(store_delete(store, key, strlen(key)), ==, 0);
                }
                g_assert_cmpint(store_sync(store), ==, 0);
                before = file_size(path);

                g_assert_cmpint(store_reorganize(store), ==, 0);
                g_assert_cmpint(file_size(path), <=, before);

                for (unsigned i = 0; i < n; i++) {
                        g_autofree char *key = g_strdup_printf("key-%u", i);

                        if (i % 2 == 0)
                                assert_absent(store, key);
                        else
                                assert_value(store, key, big);
                }

                put_str(store, "after", "reorganize");
                assert_value(store, "after", "reorganize");
        }
        {
                /* Reopens: the version record survived the rewrite. */
                _cleanup_(store_freep) Store *store = open_ok(path, false);

                assert_value(store, "after", "reorganize");
                assert_value(store, "key-1", big);
                assert_absent(store, "key-0");
        }
}

/* ---- crash atomicity ---- */

static void test_crash_restores_what_was_synced(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "crash.db", NULL), *copy = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;

        g_test_summary("Killed after a sync, with the live file in ruins, the database opens with "
                       "exactly what was synced: the base and the journal's records replayed.");

        store = open_ok(path, true);
        put_keys(store, 0, 300);
        delete_keys(store, 0, 100);
        g_assert_cmpint(store_sync(store), ==, 0);

        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 100, 300);

        /* Restored once, the copy goes on like any database. */
        put_str(restored, "key-300", "value-300");
        g_assert_cmpint(store_close(TAKE_PTR(restored)), ==, 0);
        restored = open_ok(copy, false);
        assert_keys(restored, 100, 301);
}

static void test_crash_ignores_torn_tail(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "torn.db", NULL), *copy = NULL, *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;
        g_autoptr(GBytes) synced = NULL, torn = NULL;
        off_t size;

        g_test_summary("A journal whose last record is cut short (a crash in the middle of its "
                       "write) replays every whole record before it, and the tail is cut off so that "
                       "what is appended next is read back.");

        store = open_ok(path, true);
        put_keys(store, 0, 50);
        g_assert_cmpint(store_sync(store), ==, 0);
        journal = journal_of(path);
        synced = read_bytes(journal);
        put_keys(store, 50, 51);

        copy = crash_copy(path, crash);
        g_free(journal);
        journal = journal_of(copy);
        size = file_size(journal);
        g_assert_cmpint(size, >, (off_t) g_bytes_get_size(synced));
        /* The last record, unsynced, cut short by the crash. */
        g_assert_cmpint(truncate(journal, size - 5), ==, 0);
        restored = open_ok(copy, false);
        assert_keys(restored, 0, 50);
        torn = read_bytes(journal);
        g_assert_true(g_bytes_equal(torn, synced));

        put_keys(restored, 60, 61);
        g_assert_cmpint(store_sync(restored), ==, 0);
        restored = store_free(restored);
        restored = open_ok(copy, false);
        assert_value(restored, "key-60", "value-60");
}

static void test_crash_checksum_catches_a_changed_byte(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "flip.db", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        g_autoptr(GBytes) bytes = NULL;
        g_autofree uint8_t *data = NULL;
        size_t size;

        g_test_summary("A record whose bytes do not match its CRC-32 ends the journal there: what "
                       "follows it is not replayed.");

        store = open_ok(path, true);
        put_keys(store, 0, 10);
        g_assert_cmpint(store_sync(store), ==, 0);
        store = store_free(store);

        journal = journal_of(path);
        bytes = read_bytes(journal);
        data = g_memdup2(g_bytes_get_data(bytes, &size), g_bytes_get_size(bytes));
        /* In the value of the last record: "value-9" ends the file. */
        data[size - 1] ^= 0x01;
        write_bytes(journal, data, size);
        scribble(path);

        store = open_ok(path, false);
        assert_keys(store, 0, 9);
}

static void test_crash_in_a_restore_restores_again(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "again.db", NULL);
        _cleanup_(store_freep) Store *store = NULL;

        g_test_summary("A restore killed half-way (the live file truncated, or cut anywhere) leaves "
                       "the base and the journal as they were: the next open restores again, and an "
                       "empty live file is not taken for damage.");

        store = open_ok(path, true);
        put_keys(store, 0, 100);
        g_assert_cmpint(store_sync(store), ==, 0);
        store = store_free(store);

        g_assert_cmpint(truncate(path, 0), ==, 0);
        store = open_ok(path, false);
        assert_keys(store, 0, 100);
        store = store_free(store);

        g_assert_cmpint(truncate(path, 4096), ==, 0);
        store = open_ok(path, false);
        assert_keys(store, 0, 100);
}

static void test_crash_in_a_creation_leaves_no_database(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "born.db", NULL), *tmp = NULL;
        g_autofree char *base = NULL, *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        Store *none = NULL;

        g_test_summary("A creation killed before its rename leaves no database (what it wrote aside "
                       "does not count), and the name is created again, empty.");

        make_database(path, 3);
        tmp = g_strconcat(path, ".create", NULL);
        g_assert_cmpint(rename(path, tmp), ==, 0);

        g_assert_cmpint(store_open(path, false, &none), ==, -ENOENT);
        store = open_ok(path, true);
        assert_keys(store, 0, 0);
        base = base_of(path);
        journal = journal_of(path);
        g_assert_true(g_file_test(base, G_FILE_TEST_IS_REGULAR));
        g_assert_true(g_file_test(journal, G_FILE_TEST_IS_REGULAR));
        g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
}

static void test_close_is_not_replayed(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "closed.db", NULL), *base = NULL;
        _cleanup_(store_freep) Store *store = NULL;

        g_test_summary("After store_close() the journal ends with CLOSE and the next open uses the "
                       "live file as it is: even a base turned to garbage is not read.");

        store = open_ok(path, true);
        put_keys(store, 0, 20);
        g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);

        base = base_of(path);
        scribble(base);
        store = open_ok(path, false);
        assert_keys(store, 0, 20);
}

static void test_close_forged_in_a_payload(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "forged.db", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        uint8_t zero[JOURNAL_NONCE_SIZE] = {}, earlier[JOURNAL_NONCE_SIZE];
        g_autoptr(GByteArray) plain = g_byte_array_new();

        g_test_summary("A payload that ends the journal with the bytes of a CLOSE, at the right "
                       "offset, does not make a crashed journal pass for closed in order: not with a "
                       "nonce it guessed, nor with the nonce of the journal before the last "
                       "checkpoint, nor as a CLOSE of the format before heads.");

        store = open_ok(path, true);
        journal = journal_of(path);
        put_keys(store, 0, 20);
        read_nonce(journal, earlier);
        /* A checkpoint begins the journal again, with a new nonce. */
        g_assert_cmpint(store_reorganize(store), ==, 0);

        for (unsigned i = 0; i < 2; i++) {
                g_autoptr(GByteArray) forged = close_record(i == 0 ? zero : earlier, value_offset(journal, "forged"));

                put_forgery(store, forged);
                assert_crash_restores(path, 0, 20);
        }

        frame_record(plain, JOURNAL_CLOSE, NULL, NULL, 0);
        put_forgery(store, plain);
        assert_crash_restores(path, 0, 20);
}

static void test_close_copied_away_from_its_offset(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "copied.db", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;
        g_autoptr(GBytes) genuine = NULL;
        g_autoptr(GByteArray) forged = g_byte_array_new();

        g_test_summary("The very bytes of the journal's own CLOSE, with its nonce, found at the end "
                       "of the file but not at the offset they name, do not pass for an orderly "
                       "close: a crash after them still restores.");

        store = open_ok(path, true);
        journal = journal_of(path);
        put_keys(store, 0, 20);
        g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);
        genuine = read_tail(journal, CLOSE_RECORD_SIZE);

        store = open_ok(path, false);
        g_byte_array_append(forged, g_bytes_get_data(genuine, NULL), (guint) g_bytes_get_size(genuine));
        put_forgery(store, forged);
        assert_crash_restores(path, 0, 20);
}

static void test_close_opens_without_reading_the_journal(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "quick.db", NULL), *journal = NULL, *copy = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;
        g_autoptr(GBytes) tail = NULL;
        g_autoptr(GByteArray) expected = NULL;
        uint8_t nonce[JOURNAL_NONCE_SIZE];
        off_t size;

        g_test_summary("After store_close() the journal ends with a CLOSE carrying the head's nonce "
                       "and its own offset, and the next open reads nothing between: a record damaged "
                       "in the middle changes nothing then, and the journal is kept whole. A crash "
                       "after that open reads the journal again, and stops at the damage.");

        store = open_ok(path, true);
        journal = journal_of(path);
        put_keys(store, 0, 50);
        g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);

        size = file_size(journal);
        read_nonce(journal, nonce);
        tail = read_tail(journal, CLOSE_RECORD_SIZE);
        expected = close_record(nonce, (uint64_t) size - CLOSE_RECORD_SIZE);
        g_assert_cmpmem(g_bytes_get_data(tail, NULL), g_bytes_get_size(tail), expected->data, expected->len);

        corrupt_record(journal, "value-10");
        store = open_ok(path, false);
        assert_keys(store, 0, 50);
        /* Kept whole, and the OPEN after the CLOSE. */
        g_assert_cmpint(file_size(journal), ==, size + FRAME_SIZE + BODY_HEAD_SIZE);

        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 0, 10);
}

static void test_close_torn_is_restored(void) {
        static const unsigned cuts[] = { 1, 8, CLOSE_RECORD_SIZE - 1 };
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "torn-close.db", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;

        g_test_summary("A CLOSE cut short (killed while writing it) is no orderly close: the open "
                       "restores, from every record before it.");

        journal = journal_of(path);
        for (unsigned i = 0; i < ELEMENTSOF(cuts); i++) {
                store = open_ok(path, !g_file_test(path, G_FILE_TEST_EXISTS));
                put_keys(store, 0, 20 + i);
                g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);

                g_assert_cmpint(truncate(journal, file_size(journal) - cuts[i]), ==, 0);
                scribble(path);
                store = open_ok(path, false);
                assert_keys(store, 0, 20 + i);
                store = store_free(store);
        }
}

/* Rewrites the journal of the database at path, made with keys
 * key-0 .. key-(n-1) since its base, as the format before heads had it:
 * a PUT of each, then CLOSE when closed. */
static void write_old_journal(const char *path, unsigned n, bool closed) {
        g_autofree char *journal = journal_of(path);
        g_autoptr(GByteArray) records = g_byte_array_new();

        for (unsigned i = 0; i < n; i++) {
                g_autofree char *key = g_strdup_printf("key-%u", i);
                g_autofree char *value = g_strdup_printf("value-%u", i);

                frame_record(records, JOURNAL_PUT, key, value, strlen(value));
        }
        if (closed)
                frame_record(records, JOURNAL_CLOSE, NULL, NULL, 0);
        write_bytes(journal, records->data, records->len);
}

static void test_old_journal_opens_and_gets_a_head(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "old-journal.db", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL;

        g_test_summary("A journal of the format before heads (no head, CLOSE without a nonce) is "
                       "read whole: closed in order, the live file is used; crashed, it is restored "
                       "from the base and those records. Either way the open checkpoints, so that "
                       "the journal begins with a head and the next orderly open is quick.");

        journal = journal_of(path);
        for (unsigned closed = 0; closed < 2; closed++) {
                store = open_ok(path, !g_file_test(path, G_FILE_TEST_EXISTS));
                g_assert_cmpint(store_put(store, "forged", 6, "", 0), ==, 0);
                g_assert_cmpint(store_reorganize(store), ==, 0);
                put_keys(store, 0, 30);
                g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);

                write_old_journal(path, 30, closed);
                if (!closed)
                        scribble(path);
                store = open_ok(path, false);
                assert_keys(store, 0, 30);
                assert_journal_empty(journal);
                store = store_free(store);
                assert_crash_restores(path, 0, 30);

                /* With its head, an orderly close is found from the end. */
                store = open_ok(path, false);
                put_keys(store, 30, 40);
                g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);
                corrupt_record(journal, "value-35");
                store = open_ok(path, false);
                assert_keys(store, 0, 40);
                g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);
                g_assert_cmpint(store_remove(path), ==, 0);
        }
}

static void test_crash_after_a_clean_open_restores(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "reopened.db", NULL), *copy = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;

        g_test_summary("A database opened after an orderly close and then killed is restored, not "
                       "trusted: the open wrote an OPEN record after the CLOSE, so even a crash "
                       "before the first change is journaled (GDBM writes the live file first) "
                       "does not find the CLOSE at the end.");

        store = open_ok(path, true);
        put_keys(store, 0, 20);
        g_assert_cmpint(store_close(TAKE_PTR(store)), ==, 0);

        store = open_ok(path, false);
        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 0, 20);
        restored = store_free(restored);
        g_free(copy);

        delete_keys(store, 0, 5);
        g_assert_cmpint(store_sync(store), ==, 0);
        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 5, 20);
}

static void test_checkpoint_after_rename_before_truncate(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "checkpoint.db", NULL), *copy = NULL;
        g_autofree char *journal = NULL, *copy_journal = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;
        g_autoptr(GBytes) records = NULL;

        g_test_summary("A checkpoint (here the one after a reorganize) empties the journal; a crash "
                       "after its new base is in place and before the journal is emptied replays "
                       "records the base holds already, puts and deletes alike, to the same result.");

        store = open_ok(path, true);
        put_keys(store, 0, 100);
        delete_keys(store, 0, 30);
        put_str(store, "key-5", "overwritten");
        g_assert_cmpint(store_delete(store, "key-5", 5), ==, 0);
        g_assert_cmpint(store_sync(store), ==, 0);
        journal = journal_of(path);
        records = read_bytes(journal);
        g_assert_cmpuint(g_bytes_get_size(records), >, 0);

        g_assert_cmpint(store_reorganize(store), ==, 0);
        assert_journal_empty(journal);

        copy = crash_copy(path, crash);
        copy_journal = journal_of(copy);
        write_bytes(copy_journal, g_bytes_get_data(records, NULL), g_bytes_get_size(records));
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 30, 100);
}

#ifdef DURABUS_FAULT_INJECTION
static void test_checkpoint_when_journal_grows(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "grow.db", NULL), *copy = NULL, *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;
        unsigned n;

        g_test_summary("Once the journal has grown past the threshold (DURABUS_CHECKPOINT_BYTES in "
                       "test builds), a sync checkpoints: the journal is emptied, and the base alone "
                       "restores the database.");

        g_setenv("DURABUS_CHECKPOINT_BYTES", "4096", TRUE);
        store = open_ok(path, true);
        journal = journal_of(path);
        for (n = 0; n < 10000; n += 100) {
                off_t before = file_size(journal);

                put_keys(store, n, n + 100);
                g_assert_cmpint(store_sync(store), ==, 0);
                if (file_size(journal) < before)
                        break;
        }
        g_unsetenv("DURABUS_CHECKPOINT_BYTES");
        g_assert_cmpuint(n, <, 10000);
        assert_journal_empty(journal);

        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 0, n + 100);
}
#endif

static void test_migration_makes_first_checkpoint(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "old.db", NULL), *copy = NULL, *base = NULL;
        _cleanup_(store_freep) Store *store = NULL, *restored = NULL;

        g_test_summary("A database without base (made before the journal) opens as it is and gets "
                       "its first checkpoint at once: a crash right after the open restores it.");

        make_database(path, 40);
        remove_checkpoint(path);

        store = open_ok(path, false);
        base = base_of(path);
        g_assert_true(g_file_test(base, G_FILE_TEST_IS_REGULAR));
        assert_keys(store, 0, 40);

        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 0, 40);
}

static void test_replace_is_atomic(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new(), *crash = tmpdir_new(), *crash2 = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "clear.db", NULL), *copy = NULL, *copy2 = NULL;
        g_autofree char *fresh_path = g_strconcat(path, ".new", NULL), *journal = NULL;
        _cleanup_(store_freep) Store *store = NULL, *fresh = NULL, *restored = NULL;
        _cleanup_(journal_freep) Journal *j = NULL;
        JournalOp last;

        g_test_summary("store_replace() (ClearAll) swaps the whole content at once: before it the old "
                       "records survive a crash, after it only the new ones, and its journal records "
                       "(CLEAR, then the new records) give the new content when replayed onto the old "
                       "base; a replacement dropped without store_replace() leaves no file.");

        store = open_ok(path, true);
        put_keys(store, 0, 200);
        g_assert_cmpint(store_sync(store), ==, 0);

        g_assert_cmpint(store_open_replacement(store, &fresh), ==, 0);
        put_str(fresh, "key-500", "value-500");
        fresh = store_free(fresh);
        g_assert_false(g_file_test(fresh_path, G_FILE_TEST_EXISTS));

        /* Just before the replacement's journal records: the old base, and
         * its journal with them appended by hand. */
        copy2 = crash_copy(path, crash2);
        journal = journal_of(copy2);
        g_assert_cmpint(journal_open(journal, &j, &last), ==, 0);
        g_assert_cmpint(journal_append(j, JOURNAL_CLEAR, NULL, 0, NULL, 0), ==, 0);
        g_assert_cmpint(journal_append(j, JOURNAL_PUT, VERSION_KEY, VERSION_KEY_SIZE, "1", 1), ==, 0);
        g_assert_cmpint(journal_append(j, JOURNAL_PUT, "key-7", 5, "value-7", 7), ==, 0);
        g_assert_cmpint(journal_sync(j), ==, 0);
        scribble(copy2);
        restored = open_ok(copy2, false);
        assert_keys(restored, 7, 8);
        restored = store_free(restored);

        g_assert_cmpint(store_open_replacement(store, &fresh), ==, 0);
        put_str(fresh, "key-7", "value-7");
        g_assert_cmpint(store_replace(store, &fresh), ==, 0);
        g_assert_null(fresh);
        g_assert_false(g_file_test(fresh_path, G_FILE_TEST_EXISTS));
        assert_keys(store, 7, 8);

        copy = crash_copy(path, crash);
        scribble(copy);
        restored = open_ok(copy, false);
        assert_keys(restored, 7, 8);
}

static void test_remove_takes_every_file(void) {
        _cleanup_(tmpdir_removep) char *dir = tmpdir_new();
        g_autofree char *path = g_build_filename(dir, "gone.db", NULL), *base = NULL, *journal = NULL;

        g_test_summary("store_remove() removes the live file, the base and the journal; the name "
                       "can be created again, empty.");

        make_database(path, 5);
        g_assert_cmpint(store_remove(path), ==, 0);
        base = base_of(path);
        journal = journal_of(path);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(base, G_FILE_TEST_EXISTS));
        g_assert_false(g_file_test(journal, G_FILE_TEST_EXISTS));

        {
                _cleanup_(store_freep) Store *store = open_ok(path, true);
                assert_keys(store, 0, 0);
        }
}

static void test_journal_crc32(void) {
        g_test_summary("The journal's checksum is the standard CRC-32: '123456789' gives 0xcbf43926.");

        g_assert_cmphex(journal_crc32(0, "123456789", 9), ==, 0xcbf43926);
        g_assert_cmphex(journal_crc32(journal_crc32(0, "1234", 4), "56789", 5), ==, 0xcbf43926);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/store/open/creates-a-missing-file-when-asked", test_open_creates_missing_file);
        g_test_add_func("/store/open/without-create-a-missing-file-is-enoent",
                        test_open_without_create_missing_is_enoent);
        g_test_add_func("/store/open/in-a-missing-directory-is-enoent", test_open_in_missing_directory);
        g_test_add_func("/store/open/reopens-a-database-it-created", test_open_reopens_own_database);
        g_test_add_func("/store/open/refuses-another-format-version", test_open_refuses_other_version);
        g_test_add_func("/store/open/compares-the-whole-version", test_open_refuses_longer_version);
        g_test_add_func("/store/open/refuses-a-database-without-version-record", test_open_refuses_missing_version);
        g_test_add_func("/store/free/accepts-null", test_free_accepts_null);
        g_test_add_func("/store/get/returns-a-copy", test_get_returns_a_copy);
        g_test_add_func("/store/get/of-a-missing-key-is-enoent", test_get_missing_is_enoent);
        g_test_add_func("/store/put/replaces-the-value", test_put_replaces);
        g_test_add_func("/store/put/keeps-binary-keys-and-values", test_put_binary);
        g_test_add_func("/store/put/stores-an-empty-value", test_put_empty_value);
        g_test_add_func("/store/exists/answers-1-or-0", test_exists);
        g_test_add_func("/store/delete/removes-only-that-key", test_delete);
        g_test_add_func("/store/changes/persist-across-reopen", test_changes_persist_across_reopen);
        g_test_add_func("/store/changes/survive-kill-9-without-close-or-sync", test_changes_survive_process_death);
        g_test_add_func("/store/sync/returns-0", test_sync);
        g_test_add_func("/store/reorganize/keeps-the-data", test_reorganize_keeps_data);
        g_test_add_func("/store/damage/empty-file-is-ebadmsg", test_open_refuses_empty_file);
        g_test_add_func("/store/damage/garbage-is-ebadmsg", test_open_refuses_garbage);
        g_test_add_func("/store/damage/scribbled-database-never-crashes-the-store", test_open_scribbled_database);
        g_test_add_func("/store/damage/truncated-database-is-ebadmsg", test_open_refuses_truncated_database);
        g_test_add_func("/store/recover/keeps-a-truncated-file-and-serves-what-gdbm-reads", test_recover_truncated);
        g_test_add_func("/store/recover/rebuilds-from-the-checkpoint-and-the-journal", test_recover_from_checkpoint);
        g_test_add_func("/store/crash/restores-exactly-what-was-synced", test_crash_restores_what_was_synced);
        g_test_add_func("/store/crash/ignores-and-cuts-a-torn-journal-tail", test_crash_ignores_torn_tail);
        g_test_add_func("/store/crash/stops-at-a-record-whose-checksum-fails", test_crash_checksum_catches_a_changed_byte);
        g_test_add_func("/store/crash/after-a-clean-open-restores", test_crash_after_a_clean_open_restores);
        g_test_add_func("/store/crash/in-a-restore-restores-again", test_crash_in_a_restore_restores_again);
        g_test_add_func("/store/crash/in-a-creation-leaves-no-database", test_crash_in_a_creation_leaves_no_database);
        g_test_add_func("/store/close/journal-ending-in-close-is-not-replayed", test_close_is_not_replayed);
        g_test_add_func("/store/close/an-orderly-open-reads-nothing-between-the-head-and-the-close",
                        test_close_opens_without_reading_the_journal);
        g_test_add_func("/store/close/a-close-forged-in-a-payload-is-no-orderly-close", test_close_forged_in_a_payload);
        g_test_add_func("/store/close/a-close-away-from-its-own-offset-is-no-orderly-close",
                        test_close_copied_away_from_its_offset);
        g_test_add_func("/store/close/a-torn-close-is-restored", test_close_torn_is_restored);
        g_test_add_func("/store/journal/of-the-format-before-heads-opens-and-gets-a-head",
                        test_old_journal_opens_and_gets_a_head);
        g_test_add_func("/store/checkpoint/crash-between-rename-and-truncate-replays-harmlessly",
                        test_checkpoint_after_rename_before_truncate);
        g_test_add_func("/store/migration/database-without-base-gets-its-first-checkpoint",
                        test_migration_makes_first_checkpoint);
        g_test_add_func("/store/replace/is-atomic-across-a-crash", test_replace_is_atomic);
        g_test_add_func("/store/remove/takes-the-base-and-the-journal-too", test_remove_takes_every_file);
        g_test_add_func("/store/journal/crc32-is-the-standard-one", test_journal_crc32);
        g_test_add_func("/store/recover/replaces-an-unreadable-file-by-an-empty-database", test_recover_unreadable);
        g_test_add_func("/store/recover/of-a-missing-file-is-enoent", test_recover_missing_is_enoent);
#ifdef DURABUS_FAULT_INJECTION
        g_test_add_func("/store/faults/put-fails-after-n-and-recovers", test_fault_put_after);
        g_test_add_func("/store/checkpoint/a-sync-past-the-threshold-empties-the-journal",
                        test_checkpoint_when_journal_grows);
        g_test_add_func("/store/faults/rules-narrow-by-path-key-and-operation", test_fault_filters);
        g_test_add_func("/store/faults/rules-file-is-read-again-each-time", test_fault_file_reread);
#endif

        return g_test_run();
}
