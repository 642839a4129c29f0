/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Names of durabus: validation of endpoint names, subscriber names and
 * message ids, and the mapping endpoint name <-> object path <-> bus name.
 * Pure functions; nothing here touches the bus or the disk.
 */

#include <stddef.h>

#define DURABUS_BUS_NAME "org.durabus1"
#define DURABUS_BROKER_PATH "/org/durabus1"
#define DURABUS_ENDPOINT_PATH_PREFIX "/org/durabus1/endpoint"
#define DURABUS_ENDPOINT_BUS_NAME_PREFIX "org.durabus1.endpoint."
#define DURABUS_BROKER_INTERFACE "org.durabus1.Broker"
#define DURABUS_ENDPOINT_INTERFACE "org.durabus1.Endpoint"

#define ENDPOINT_NAME_MAX 200
#define SUBSCRIBER_NAME_MAX 200
#define MESSAGE_ID_MAX 255
/* Flatpak app ids (reverse DNS) and snap names both fit. */
#define APP_ID_MAX 255

/*
 * Each check returns 0 when the value is valid. Otherwise it returns -EINVAL
 * and, when ret_problem is not NULL, stores a newly allocated sentence fragment
 * saying what is wrong ("element 2 starts with a digit"), which the caller
 * frees. -ENOMEM when that sentence cannot be allocated.
 */
int names_check_endpoint(const char *name, char **ret_problem);
int names_check_subscriber(const char *subscriber, char **ret_problem);
int names_check_message_id(const char *id, char **ret_problem);
/* The id of a sandboxed app: 1 to APP_ID_MAX characters of [A-Za-z0-9_.-]. */
int names_check_app_id(const char *id, char **ret_problem);

/* "app.jobs" -> "/org/durabus1/endpoint/app/jobs". The name must be valid.
 * Returns 0 and a newly allocated path, or -ENOMEM. */
int names_endpoint_to_path(const char *name, char **ret_path);

/* The inverse: -EINVAL when path is not the path of a valid endpoint name
 * (the prefix itself, an intermediate node with an invalid element, ...). */
int names_path_to_endpoint(const char *path, char **ret_name);

/* "app.jobs" -> "org.durabus1.endpoint.app.jobs". The name must be valid. */
int names_endpoint_to_bus_name(const char *name, char **ret_bus_name);
