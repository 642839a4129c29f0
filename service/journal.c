/* SPDX-License-Identifier: MIT */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define FRAME_SIZE 8            /* length and checksum */
#define BODY_HEAD_SIZE 5        /* op and key size */
/* No record is this large (GDBM's sizes are ints); a length beyond it is
 * garbage, not a reason to allocate. */
#define BODY_MAX (1u << 30)
/* Room kept allocated beyond the end of the journal, and how much more to
 * take when less is left: so that when the disk is full, records that
 * free room (an Ack, a Subscribe, the takeback of a failed Send) can still
 * be written and synced. */
#define RESERVE_BYTES (64u << 10)
#define RESERVE_CHUNK (64u << 10)
/* The head (OPEN, nonce) and the closing record (CLOSE, nonce, offset), as
 * they are in the file. */
#define HEAD_SIZE (FRAME_SIZE + BODY_HEAD_SIZE + JOURNAL_NONCE_SIZE)
#define CLOSE_SIZE (HEAD_SIZE + 8)

struct Journal {
        char *path;
        int fd;
        uint64_t written;       /* bytes of whole records in the file */
        uint64_t reserved;      /* allocated up to here (FALLOC_FL_KEEP_SIZE) */
        uint8_t *pending;       /* records not written yet */
        size_t pending_size, pending_alloc;
        bool headed;            /* begins with its head, so a CLOSE can be told from the end */
        uint8_t nonce[JOURNAL_NONCE_SIZE];      /* of the head; zero without one */
};

/* CRC-32 a byte at a time, from a table built on first use: every record
 * is summed once as it is written, on the path of every Send. */
uint32_t journal_crc32(uint32_t crc, const void *data, size_t size) {
        static uint32_t table[256];
        static bool built;
        const uint8_t *p = data;

        if (!built) {
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;

                        for (int k = 0; k < 8; k++)
                                c = c & 1 ? 0xedb88320 ^ (c >> 1) : c >> 1;
                        table[i] = c;
                }
                built = true;
        }

        crc = ~crc;
        for (size_t i = 0; i < size; i++)
                crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
        return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v) {
        for (unsigned i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

static uint64_t get_le64(const uint8_t *p) {
        return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}

/* Frames a record into p, which has room for FRAME_SIZE + BODY_HEAD_SIZE +
 * key_size + value_size bytes. */
static void encode_record(uint8_t *p, JournalOp op, const void *key, size_t key_size, const void *value,
                          size_t value_size) {
        size_t body = BODY_HEAD_SIZE + key_size + value_size;

        p[FRAME_SIZE] = (uint8_t) op;
        put_le32(p + FRAME_SIZE + 1, (uint32_t) key_size);
        if (key_size > 0)
                memcpy(p + FRAME_SIZE + BODY_HEAD_SIZE, key, key_size);
        if (value_size > 0)
                memcpy(p + FRAME_SIZE + BODY_HEAD_SIZE + key_size, value, value_size);
        put_le32(p, (uint32_t) body);
        put_le32(p + 4, journal_crc32(0, p + FRAME_SIZE, body));
}

/* The value of the record of size bytes at p when it is a whole record of
 * op with an empty key, else NULL: the head and the closing record, which
 * have fixed sizes, are checked where they are expected, without reading
 * what lies between. */
static const uint8_t *fixed_record_value(const uint8_t *p, size_t size, JournalOp op) {
        uint32_t body = (uint32_t) (size - FRAME_SIZE);

        if (get_le32(p) != body || journal_crc32(0, p + FRAME_SIZE, body) != get_le32(p + 4) ||
            p[FRAME_SIZE] != op || get_le32(p + FRAME_SIZE + 1) != 0)
                return NULL;
        return p + FRAME_SIZE + BODY_HEAD_SIZE;
}

/* Reads whole records from f until the end or the first one that does not
 * hold; *ret_valid is the size of what was read, *ret_last its last op. */
static int read_records(FILE *f, journal_record_fn fn, void *userdata, uint64_t *ret_valid, JournalOp *ret_last) {
        uint64_t valid = 0;
        JournalOp last = 0;
        int count = 0, r;

        for (;;) {
                _cleanup_(freep) uint8_t *body = NULL;
                uint8_t frame[FRAME_SIZE];
                uint32_t size, key_size;
                JournalOp op;

                if (fread(frame, 1, sizeof(frame), f) != sizeof(frame))
                        break;
                size = get_le32(frame);
                if (size < BODY_HEAD_SIZE || size > BODY_MAX)
                        break;
                body = malloc(size);
                if (!body)
                        return -ENOMEM;
                if (fread(body, 1, size, f) != size || journal_crc32(0, body, size) != get_le32(frame + 4))
                        break;

                op = body[0];
                key_size = get_le32(body + 1);
                if (op < JOURNAL_PUT || op > JOURNAL_CLOSE || key_size > size - BODY_HEAD_SIZE)
                        break;

                if (fn) {
                        r = fn(op, body + BODY_HEAD_SIZE, key_size, body + BODY_HEAD_SIZE + key_size,
                               size - BODY_HEAD_SIZE - key_size, userdata);
                        if (r < 0)
                                return r;
                }
                valid += FRAME_SIZE + size;
                last = op;
                count++;
        }

        if (ferror(f))
                return -EIO;

        if (ret_valid)
                *ret_valid = valid;
        if (ret_last)
                *ret_last = last;
        return count;
}

int journal_read(const char *path, journal_record_fn f, void *userdata) {
        _cleanup_(fclosep) FILE *file = NULL;

        file = fopen(path, "re");
        if (!file)
                return errno == ENOENT ? 0 : -errno;

        return read_records(file, f, userdata, NULL, NULL);
}

Journal *journal_free(Journal *j) {
        if (!j)
                return NULL;

        if (j->fd >= 0)
                (void) close(j->fd);
        free(j->pending);
        free(j->path);
        free(j);
        return NULL;
}

void journal_freep(Journal **j) {
        journal_free(*j);
}

/* Reads the head, if the journal begins with one: its nonce is what the
 * closing record must carry. 0 or negative errno. */
static int read_head(Journal *j) {
        uint8_t head[HEAD_SIZE];
        const uint8_t *nonce;
        ssize_t k;

        k = pread(j->fd, head, sizeof(head), 0);
        if (k < 0)
                return -errno;
        nonce = (size_t) k == sizeof(head) ? fixed_record_value(head, sizeof(head), JOURNAL_OPEN) : NULL;
        if (nonce) {
                memcpy(j->nonce, nonce, sizeof(j->nonce));
                j->headed = true;
        }
        return 0;
}

/*
 * Whether the file, of size bytes, ends with the record that
 * journal_append_close() wrote last in it: a CLOSE whose nonce is the
 * head's and whose offset is where it lies. Bytes that a PUT's payload
 * brings cannot pass for it, as they cannot know the nonce, drawn at random
 * when the journal began, nor can a CLOSE left from another journal, as the
 * nonce changes with every beginning (journal_rewind() to 0). A torn or
 * missing CLOSE does not hold, and the caller reads the whole journal.
 * 1, 0 or negative errno.
 */
static int ends_with_close(Journal *j, uint64_t size) {
        uint8_t record[CLOSE_SIZE];
        const uint8_t *value;
        uint64_t offset;
        ssize_t k;

        if (!j->headed || size < HEAD_SIZE + CLOSE_SIZE)
                return 0;
        offset = size - CLOSE_SIZE;
        k = pread(j->fd, record, sizeof(record), (off_t) offset);
        if (k < 0)
                return -errno;
        if ((size_t) k != sizeof(record))
                return 0;

        value = fixed_record_value(record, sizeof(record), JOURNAL_CLOSE);
        return value && memcmp(value, j->nonce, sizeof(j->nonce)) == 0 &&
               get_le64(value + JOURNAL_NONCE_SIZE) == offset;
}

/* Reads every record to find the end of the whole ones and the last op,
 * and cuts off a torn tail: a crash left it of records never synced, so of
 * changes never promised; cut off, it cannot hide what comes next. */
static int scan(Journal *j, uint64_t size, JournalOp *ret_last) {
        _cleanup_(fclosep) FILE *file = NULL;
        int fd, r;

        fd = dup(j->fd);
        if (fd < 0)
                return -errno;
        file = fdopen(fd, "r");
        if (!file) {
                (void) close(fd);
                return -errno;
        }
        r = read_records(file, NULL, NULL, &j->written, ret_last);
        if (r < 0)
                return r;

        if (size > j->written) {
                if (ftruncate(j->fd, (off_t) j->written) < 0 || fdatasync(j->fd) < 0)
                        return -errno;
        }
        return 0;
}

/* Writes the head of the empty journal, with a new nonce, and syncs. */
static int write_head(Journal *j) {
        uint8_t head[HEAD_SIZE];
        ssize_t k;

        k = getrandom(j->nonce, sizeof(j->nonce), 0);
        if (k < 0)
                return -errno;
        if ((size_t) k != sizeof(j->nonce))
                return -EIO;

        encode_record(head, JOURNAL_OPEN, NULL, 0, j->nonce, sizeof(j->nonce));
        k = pwrite(j->fd, head, sizeof(head), 0);
        if (k < 0)
                return -errno;
        if ((size_t) k != sizeof(head))
                return -ENOSPC;
        if (fdatasync(j->fd) < 0)
                return -errno;

        j->written = sizeof(head);
        j->headed = true;
        return 0;
}

/* Begins the empty journal with its head. A failure (a full disk) is no
 * failure of the journal, which is whole without a head: it goes on
 * without one, and its next open reads it whole. A part of the head that
 * was written lies where the next record goes, and is overwritten. */
static void begin(Journal *j) {
        int r;

        j->headed = false;
        r = write_head(j);
        if (r < 0)
                log_warning("Failed to begin the journal '%s' with its head, its next open reads it whole: %s",
                            j->path, strerror(-r));
}

int journal_open(const char *path, Journal **ret, JournalOp *ret_last) {
        _cleanup_(journal_freep) Journal *j = NULL;
        struct stat st;
        JournalOp last;
        bool created;
        int r;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->fd = -1;
        j->path = strdup(path);
        if (!j->path)
                return -ENOMEM;

        created = access(path, F_OK) < 0;
        j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (j->fd < 0)
                return -errno;
        /* Records synced into a file whose name is lost with a power cut
         * would be lost with it. */
        if (created) {
                r = fsync_parent_directory(path);
                if (r < 0)
                        return r;
        }

        if (fstat(j->fd, &st) < 0)
                return -errno;
        r = read_head(j);
        if (r >= 0)
                r = ends_with_close(j, (uint64_t) st.st_size);
        if (r < 0)
                return r;

        /* After an orderly close, the ends of the file say all there is to
         * know, however long the journal; anything else is read whole. */
        if (r > 0) {
                j->written = (uint64_t) st.st_size;
                last = JOURNAL_CLOSE;
        } else {
                r = scan(j, (uint64_t) st.st_size, &last);
                if (r < 0)
                        return r;
        }

        /* A journal without a whole record (new, or torn from its first
         * byte) is begun again; one written before heads existed is left as
         * it is, as a restore may need its records (journal_has_head()). */
        if (j->written == 0)
                begin(j);

        *ret_last = last;
        *ret = TAKE_PTR(j);
        return 0;
}

/* Writes the pending records at their place: a write that failed in part is
 * done again from the same offset, so the file holds no gap and no stale
 * tail (the pending records only grow until they are written). */
static int write_pending(Journal *j) {
        uint64_t end = j->written + j->pending_size;
        size_t done = 0;

        /* Failing on a full disk, it leaves what is left of the reserve. */
        if (end + RESERVE_BYTES > j->reserved &&
            fallocate(j->fd, FALLOC_FL_KEEP_SIZE, (off_t) end, RESERVE_BYTES + RESERVE_CHUNK) == 0)
                j->reserved = end + RESERVE_BYTES + RESERVE_CHUNK;

        while (done < j->pending_size) {
                ssize_t k = pwrite(j->fd, j->pending + done, j->pending_size - done, (off_t) (j->written + done));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                done += (size_t) k;
        }

        j->written += j->pending_size;
        j->pending_size = 0;
        return 0;
}

int journal_append(Journal *j, JournalOp op, const void *key, size_t key_size, const void *value,
                   size_t value_size) {
        size_t body = BODY_HEAD_SIZE + key_size + value_size, need = j->pending_size + FRAME_SIZE + body;
        uint8_t *p;

        if (body > BODY_MAX)
                return -EFBIG;

        if (need > j->pending_alloc) {
                size_t alloc = MAX(need, 2 * j->pending_alloc);
                uint8_t *grown = realloc(j->pending, alloc);

                if (!grown)
                        return -ENOMEM;
                j->pending = grown;
                j->pending_alloc = alloc;
        }

        p = j->pending + j->pending_size;
        encode_record(p, op, key, key_size, value, value_size);
        j->pending_size = need;

        /* Written now, so that the record survives the death of the process
         * as GDBM's own write did; a failure waits for journal_sync(). */
        (void) write_pending(j);
        return 0;
}

int journal_append_close(Journal *j) {
        uint8_t value[JOURNAL_NONCE_SIZE + 8];

        /* Where it goes: the file holds no gap (write_pending()). */
        memcpy(value, j->nonce, sizeof(j->nonce));
        put_le64(value + JOURNAL_NONCE_SIZE, journal_size(j));
        return journal_append(j, JOURNAL_CLOSE, NULL, 0, value, sizeof(value));
}

bool journal_has_head(Journal *j) {
        return j->headed;
}

int journal_sync(Journal *j) {
        int r;

        r = write_pending(j);
        if (r < 0)
                return r;

        return fdatasync(j->fd) < 0 ? -errno : 0;
}

uint64_t journal_size(Journal *j) {
        return j->written + j->pending_size;
}

uint64_t journal_mark(Journal *j) {
        return journal_size(j);
}

int journal_rewind(Journal *j, uint64_t mark) {
        /* Truncated also when only pending records are taken back: a write
         * of them that failed may have left some in the file, where records
         * appended later, if shorter, would not cover them. */
        if (ftruncate(j->fd, (off_t) MIN(mark, j->written)) < 0 || fdatasync(j->fd) < 0)
                return -errno;

        /* The truncation freed the reserve beyond mark. */
        j->reserved = MIN(j->reserved, MIN(mark, j->written));
        if (mark >= j->written)
                j->pending_size = MIN(j->pending_size, (size_t) (mark - j->written));
        else {
                j->written = mark;
                j->pending_size = 0;
        }

        /* A new nonce: no CLOSE of what was cut off, should the file system
         * bring its bytes back after a crash, can pass for this journal's. */
        if (mark == 0)
                begin(j);
        return 0;
}
