/*
 * standalone.h - the standalone server: the storage engine behind the RESP
 * protocol, as one app on a runtime.
 *
 * `nokv serve` runs it on the real runtime; the simulator boots the very same
 * app on simulated nodes. Lifecycle:
 *   start     own the workdir (nokv/store/workdir.h: lock, mode gate), open
 *             the engine (recovery), start listening;
 *   shutdown  (SIGTERM/SIGINT, or a simulated graceful stop) stop accepting,
 *             close client connections, close the engine (wait for the
 *             running background job, fsync the WAL), then nk_rt_stop();
 *   free      release memory after the loop returned;
 *   abandon   free without I/O after a simulated crash.
 */
#ifndef NK_SERVER_STANDALONE_H
#define NK_SERVER_STANDALONE_H

#include "nokv/engine/db.h"
#include "nokv/resp/server.h"
#include "nokv/server/db_backend.h"

typedef struct nk_standalone_config {
    const char *workdir;
    const char *addr;          /* "127.0.0.1:6380" */
    nk_sync_policy sync;
    uint64_t group_interval_ns; /* --sync group; 0 = 10 ms */
    unsigned allowed_modes;    /* NK_MODE_BIT mask; 0 = standalone only */
    nk_db_options db;          /* engine options */
    const char *version;       /* for INFO */
    const char *metrics_addr;  /* NULL: no HTTP status endpoint (metrics.h) */
} nk_standalone_config;

typedef struct nk_standalone nk_standalone;

/* Open and listen. On error nothing is left open; eb explains. */
int nk_standalone_start(nk_rt *rt, const nk_standalone_config *cfg, nk_standalone **out,
                        nk_errbuf *eb);

/* The address actually bound. */
int nk_standalone_addr(nk_standalone *s, char *buf, size_t len);

/* The status endpoint's bound address; NK_ENOENT without --metrics-addr. */
int nk_standalone_metrics_addr(nk_standalone *s, char *buf, size_t len);

/* Begin the graceful shutdown (what SIGTERM does). */
void nk_standalone_shutdown(nk_standalone *s);

/* NK_OK when the shutdown completed cleanly, or the first error met. */
int nk_standalone_exit_status(const nk_standalone *s);

void nk_standalone_free(nk_standalone *s);
void nk_standalone_abandon(nk_standalone *s);

#endif /* NK_SERVER_STANDALONE_H */
