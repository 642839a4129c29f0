/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Every D-Bus error name durabus replies with, defined once. Only the *-dbus.c
 * files use them: the rest of the service speaks negative errno values.
 */

#define DURABUS_ERROR_INVALID_NAME "org.durabus1.Error.InvalidName"
#define DURABUS_ERROR_NOT_SUBSCRIBED "org.durabus1.Error.NotSubscribed"
#define DURABUS_ERROR_SUBSCRIBER_BUSY "org.durabus1.Error.SubscriberBusy"
#define DURABUS_ERROR_STORAGE_FAILED "org.durabus1.Error.StorageFailed"
#define DURABUS_ERROR_NO_SUCH_ENDPOINT "org.durabus1.Error.NoSuchEndpoint"
