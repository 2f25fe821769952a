/*
 * mode.h - the workdir mode gate (MODE.json).
 *
 * A workdir is in one of four modes: standalone (no MODE.json), preparing
 * (`nokv migrate init` is running or was interrupted), seeded (promoted to a
 * single-store cluster seed), cluster (served through the distributed path).
 * Every open states which modes it accepts; anything else is refused with a
 * message that names the mode and what to run next. This is what keeps a
 * half-migrated directory from ever reopening as a plain standalone database.
 *
 * MODE.json (written temp + sync + rename + sync dir, so a crash leaves the
 * old or the new file, never a torn one):
 *     {"format":1,"mode":"seeded","peer_id":101,"region_id":1,"store_id":1,
 *      "xxh64":"<16 hex digits>"}
 * Keys are sorted; ids are omitted when 0; xxh64 is XXH64 (seed 0) of the
 * compact, key-sorted JSON of every other field. A file that does not parse,
 * has an unknown format or mode, or fails its checksum is reported as corrupt
 * (never guessed at).
 */
#ifndef NK_MIGRATE_MODE_H
#define NK_MIGRATE_MODE_H

#include <stdint.h>

#include "nokv/rt.h"

typedef enum nk_mode {
    NK_MODE_STANDALONE = 0,
    NK_MODE_PREPARING = 1,
    NK_MODE_SEEDED = 2,
    NK_MODE_CLUSTER = 3,
} nk_mode;

#define NK_MODE_BIT(m) (1u << (m))
#define NK_MODE_FILE "MODE.json"
#define NK_MODE_FORMAT 1

typedef struct nk_mode_state {
    nk_mode mode;
    uint64_t store_id;
    uint64_t region_id;
    uint64_t peer_id;
} nk_mode_state;

const char *nk_mode_name(nk_mode m);
/* "standalone" etc. -> mode; NK_EINVAL for anything else. */
int nk_mode_parse(const char *name, nk_mode *out);

/* Read <workdir>/MODE.json. Absent file = standalone with zero ids.
 * NK_ECORRUPT (eb says what is wrong) or a file error. */
int nk_mode_read(nk_rt *rt, const char *workdir, nk_mode_state *st, nk_errbuf *eb);

/* Write <workdir>/MODE.json durably (temp + sync + rename + sync dir). */
int nk_mode_write(nk_rt *rt, const char *workdir, const nk_mode_state *st, nk_errbuf *eb);

/* NK_OK when st->mode is in `allowed` (a mask of NK_MODE_BIT; 0 means
 * standalone only), else NK_EMODE with a message naming the mode and the
 * command to run next. */
int nk_mode_check(const nk_mode_state *st, unsigned allowed, const char *workdir, nk_errbuf *eb);

#endif /* NK_MIGRATE_MODE_H */
