/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Endpoint patterns of the access rules (publish=, subscribe= of a [Client
 * NAME] group): an endpoint name in which an element may be "*", standing
 * for exactly one element, and the last element may be "**", standing for
 * any number of trailing elements, none included, so "org.example.Notes.**"
 * covers "org.example.Notes" and everything below it, and "**" alone every
 * endpoint. Pure functions; nothing here touches the bus or the disk.
 */

#include <stdbool.h>

/*
 * 0 when pattern is valid: 1 to ENDPOINT_NAME_MAX characters, elements
 * separated by single dots, each a valid endpoint name element, "*", or,
 * last only, "**". Otherwise -EINVAL and, when ret_problem is not NULL, a
 * newly allocated sentence fragment saying what is wrong ("element 2, '**',
 * is not the last"), which the caller frees; -ENOMEM when that sentence
 * cannot be allocated. The same conventions as names_check_endpoint().
 */
int pattern_check(const char *pattern, char **ret_problem);

/* Whether a valid pattern covers a valid endpoint name. */
bool pattern_match(const char *pattern, const char *endpoint);

/* Whether any pattern of the NULL-terminated list (NULL: none) covers the
 * endpoint. */
bool pattern_match_any(char *const *patterns, const char *endpoint);
