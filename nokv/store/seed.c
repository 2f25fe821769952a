/* seed.c - the raft replay pointer file (see seed.h). */
#include "nokv/store/seed.h"

#include <string.h>

#include "nokv/util/jsonfile.h"
#include "nokv/util/smallfile.h"

int nk_replay_pointer_write(nk_rt *rt, const char *workdir, const nk_replay_pointer *p,
                            nk_errbuf *eb)
{
    json_t *o = json_pack("{s:i,s:I,s:I,s:I}", "format", NK_REPLAY_FORMAT, "region_id",
                          (json_int_t)p->region_id, "applied_index", (json_int_t)p->applied_index,
                          "applied_term", (json_int_t)p->applied_term);
    if (o == NULL) {
        return NK_ENOMEM;
    }
    int rc = nk_jsonfile_write(rt, workdir, NK_REPLAY_FILE, o, "replay.write", eb);
    json_decref(o);
    return rc;
}

int nk_replay_pointer_read(nk_rt *rt, const char *workdir, nk_replay_pointer *p, nk_errbuf *eb)
{
    memset(p, 0, sizeof(*p));
    char path[1024];
    if (nk_path_fmt(path, sizeof(path), workdir, NK_REPLAY_FILE) != NK_OK) {
        return NK_ERANGE;
    }
    json_t *o = NULL;
    int rc = nk_jsonfile_read(rt, path, 4096, &o, eb);
    if (rc != NK_OK) {
        return rc;
    }
    uint64_t fmt = 0;
    if (!nk_json_u64(o, "format", &fmt) || fmt != NK_REPLAY_FORMAT ||
        !nk_json_u64(o, "region_id", &p->region_id) || p->region_id == 0 ||
        !nk_json_u64(o, "applied_index", &p->applied_index) ||
        !nk_json_u64(o, "applied_term", &p->applied_term) || json_object_size(o) != 4) {
        nk_errbuf_set(eb, "%s: unexpected fields or format (this build reads format %d)", path,
                      NK_REPLAY_FORMAT);
        rc = NK_ECORRUPT;
        memset(p, 0, sizeof(*p));
    }
    json_decref(o);
    return rc;
}
