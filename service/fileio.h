/* SPDX-License-Identifier: MIT */
#pragma once

/* Small file operations that have to be durable: a rename or an unlink is on
 * disk only once the directory holding it is synced. */

/* fsync()s the directory that contains path. 0 or negative errno. */
int fsync_parent_directory(const char *path);

/* Replaces path with contents through a synced temporary file and a rename,
 * so readers see the old file or the new one, never a part. 0 or negative
 * errno, and path untouched on failure. */
int write_file_atomic(const char *path, const char *contents);

/* Copies the file from to a new file to (mode 0600; it must not exist), as a
 * reflink where the file system can (FICLONE), and syncs the
 * copy. 0 or negative errno, with no copy left behind. */
int copy_file(const char *from, const char *to);

/* Replaces the contents of the existing file to by a copy of from, in place
 * (it needs no room for a second copy), and syncs it. 0 or negative errno;
 * to may hold a part of the copy then. */
int copy_file_over(const char *from, const char *to);

/* Creates a directory and its parents with mode 0700 where missing.
 * 0 or negative errno. */
int mkdir_parents(const char *path);
