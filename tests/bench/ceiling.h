/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * durabus-ceiling (ceiling.c), the zero-storage peer that the benchmark
 * (bench.c) measures durabus against: the bus name both agree on. Its objects
 * are those of durabus's endpoints, at DURABUS_ENDPOINT_PATH_PREFIX/....
 */

#define CEILING_BUS_NAME "org.durabus1.bench.Ceiling"
