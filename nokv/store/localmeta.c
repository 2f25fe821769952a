/* localmeta.c - the store's local truth, LOCALMETA (see localmeta.h). */
#include "nokv/store/localmeta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nokv/proto/wire.h"
#include "nokv/util/smallfile.h"
#include "nokv/util/testbug.h"

#define LM_MAGIC 0x4d4cu /* "LM" */
#define LM_VERSION 1u
/* Bounded by the region and event limits, so a damaged size field cannot
 * make load allocate without limit. */
#define LM_MAX_BYTES                                                                               \
    ((size_t)NK_LOCALMETA_MAX_REGIONS * (sizeof(nk_region) + 64) +                                 \
     (size_t)NK_LOCALMETA_MAX_EVENTS * (NK_LOCALMETA_MAX_EVENT_BYTES + 32) + 64)

void nk_localmeta_init(nk_localmeta *m)
{
    memset(m, 0, sizeof(*m));
    m->next_event_seq = 1;
}

void nk_localmeta_free(nk_localmeta *m)
{
    for (size_t i = 0; i < m->n_events; i++) {
        free(m->events[i].data);
    }
    free(m->events);
    free(m->regions);
    nk_localmeta_init(m);
}

/* ---------------------------------------------------------------- codec --- */

int nk_localmeta_encode(const nk_localmeta *m, nk_buf *out)
{
    int rc = nk_wire_begin(out, LM_MAGIC, LM_VERSION);
    rc = rc ? rc : nk_wire_put_uvar(out, m->store_id);
    rc = rc ? rc : nk_wire_put_uvar(out, m->cluster_id);
    rc = rc ? rc : nk_wire_put_uvar(out, m->n_regions);
    for (size_t i = 0; rc == NK_OK && i < m->n_regions; i++) {
        const nk_localmeta_region *r = &m->regions[i];
        rc = nk_region_put(out, &r->desc);
        /* TEST ONLY switches (testbug.h): NORMAL reaches the disk too early or too late. */
        bool as_normal = (r->state == NK_REGION_APPLYING && nk_testbug(NK_TESTBUG_PUBLISH_EARLY)) ||
                         (r->state == NK_REGION_TOMBSTONE && nk_testbug(NK_TESTBUG_FORGET_TOMB));
        rc = rc ? rc : nk_wire_put_u8(out, as_normal ? NK_REGION_NORMAL : r->state);
        rc = rc ? rc : nk_wire_put_uvar(out, r->tomb_term);
        rc = rc ? rc : nk_wire_put_uvar(out, r->tomb_vote);
        rc = rc ? rc : nk_wire_put_uvar(out, r->conf_index);
    }
    rc = rc ? rc : nk_wire_put_uvar(out, m->n_events);
    for (size_t i = 0; rc == NK_OK && i < m->n_events; i++) {
        rc = nk_wire_put_uvar(out, m->events[i].seq);
        rc = rc ? rc : nk_wire_put_bytes(out, m->events[i].data, m->events[i].len);
    }
    rc = rc ? rc : nk_wire_put_uvar(out, m->next_event_seq);
    return rc ? rc : nk_wire_end(out);
}

static bool state_valid(uint8_t s)
{
    return s == NK_REGION_NORMAL || s == NK_REGION_APPLYING || s == NK_REGION_TOMBSTONE;
}

int nk_localmeta_decode(const uint8_t *buf, size_t len, nk_localmeta *m, nk_errbuf *eb)
{
    nk_localmeta_init(m);
    nk_wire_rd rd;
    int rc = nk_wire_open(&rd, buf, len, LM_MAGIC, LM_VERSION, NULL);
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s",
                      rc == NK_ECORRUPT ? "checksum mismatch"
                                        : "not a LOCALMETA envelope (magic, version "
                                          "or length)");
        return NK_ECORRUPT;
    }
    m->store_id = nk_wire_get_uvar(&rd);
    m->cluster_id = nk_wire_get_uvar(&rd);
    uint64_t nr = nk_wire_get_uvar(&rd);
    if (rd.bad || nr > NK_LOCALMETA_MAX_REGIONS) {
        nk_errbuf_set(eb, "bad region count");
        goto bad;
    }
    if (nr > 0) {
        m->regions = calloc((size_t)nr, sizeof(*m->regions));
        if (m->regions == NULL) {
            nk_localmeta_free(m);
            return NK_ENOMEM;
        }
    }
    for (uint64_t i = 0; i < nr; i++) {
        nk_localmeta_region *r = &m->regions[i];
        if (nk_region_get(&rd, &r->desc) != NK_OK) {
            nk_errbuf_set(eb, "region #%llu does not decode", (unsigned long long)i);
            goto bad;
        }
        r->state = nk_wire_get_u8(&rd);
        r->tomb_term = nk_wire_get_uvar(&rd);
        r->tomb_vote = nk_wire_get_uvar(&rd);
        r->conf_index = nk_wire_get_uvar(&rd);
        m->n_regions = (size_t)i + 1;
        if (rd.bad || !state_valid(r->state)) {
            nk_errbuf_set(eb, "region %llu: unknown state", (unsigned long long)r->desc.id);
            goto bad;
        }
        if (i > 0 && m->regions[i - 1].desc.id >= r->desc.id) {
            nk_errbuf_set(eb, "regions not sorted by id at region %llu",
                          (unsigned long long)r->desc.id);
            goto bad;
        }
    }
    uint64_t ne = nk_wire_get_uvar(&rd);
    if (rd.bad || ne > NK_LOCALMETA_MAX_EVENTS) {
        nk_errbuf_set(eb, "bad pending event count");
        goto bad;
    }
    if (ne > 0) {
        m->events = calloc((size_t)ne, sizeof(*m->events));
        if (m->events == NULL) {
            nk_localmeta_free(m);
            return NK_ENOMEM;
        }
    }
    for (uint64_t i = 0; i < ne; i++) {
        nk_localmeta_event *e = &m->events[i];
        e->seq = nk_wire_get_uvar(&rd);
        nk_slice s = nk_wire_get_bytes(&rd, NK_LOCALMETA_MAX_EVENT_BYTES);
        if (rd.bad || e->seq == 0 || (i > 0 && m->events[i - 1].seq >= e->seq)) {
            nk_errbuf_set(eb, "pending event #%llu is malformed or out of order",
                          (unsigned long long)i);
            goto bad;
        }
        e->data = malloc(s.len ? s.len : 1);
        if (e->data == NULL) {
            nk_localmeta_free(m);
            return NK_ENOMEM;
        }
        memcpy(e->data, s.data, s.len);
        e->len = s.len;
        m->n_events = (size_t)i + 1;
    }
    m->next_event_seq = nk_wire_get_uvar(&rd);
    if (nk_wire_close(&rd) != NK_OK) {
        nk_errbuf_set(eb, "truncated or has trailing bytes");
        goto bad;
    }
    if (m->next_event_seq == 0 ||
        (m->n_events > 0 && m->next_event_seq <= m->events[m->n_events - 1].seq)) {
        nk_errbuf_set(eb, "next event sequence %llu is not above the pending events",
                      (unsigned long long)m->next_event_seq);
        goto bad;
    }
    return NK_OK;
bad:
    nk_localmeta_free(m);
    return NK_ECORRUPT;
}

/* ----------------------------------------------------------------- file --- */

int nk_localmeta_load(nk_rt *rt, const char *workdir, nk_localmeta *m, nk_errbuf *eb)
{
    nk_localmeta_init(m);
    char path[1024];
    if (nk_path_fmt(path, sizeof(path), workdir, NK_LOCALMETA_FILE) != NK_OK) {
        nk_errbuf_set(eb, "%s: path too long", workdir);
        return NK_ERANGE;
    }
    nk_buf b = {0};
    int rc = nk_smallfile_read(rt, path, LM_MAX_BYTES, &b, eb);
    if (rc == NK_ETOOBIG) {
        rc = NK_ECORRUPT;
    }
    if (rc == NK_OK) {
        nk_errbuf inner;
        memset(&inner, 0, sizeof(inner));
        rc = nk_localmeta_decode(b.data, b.len, m, &inner);
        if (rc == NK_ECORRUPT) {
            nk_errbuf_set(eb,
                          "%s: corrupt: %s. It is this store's region truth and is never "
                          "guessed at: restore it from a backup, or rebuild the store",
                          path, inner.msg);
        }
    }
    nk_buf_free(&b);
    return rc;
}

int nk_localmeta_save(nk_rt *rt, const char *workdir, const nk_localmeta *m, nk_errbuf *eb)
{
    nk_buf b = {0};
    int rc = nk_localmeta_encode(m, &b);
    if (rc == NK_OK && b.len > LM_MAX_BYTES) {
        rc = NK_ETOOBIG;
    }
    if (rc != NK_OK) {
        nk_errbuf_set(eb, "%s/%s: cannot encode: %s", workdir, NK_LOCALMETA_FILE, nk_strerror(rc));
    } else {
        rc = nk_smallfile_replace(rt, workdir, NK_LOCALMETA_FILE, b.data, b.len, "localmeta.save",
                                  eb);
    }
    nk_buf_free(&b);
    return rc;
}

bool nk_localmeta_exists(nk_rt *rt, const char *workdir)
{
    char path[1024], tmp[1040];
    if (nk_path_fmt(path, sizeof(path), workdir, NK_LOCALMETA_FILE) != NK_OK) {
        return false;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    nk_stat st;
    return nk_rt_stat(rt, path, &st) == NK_OK || nk_rt_stat(rt, tmp, &st) == NK_OK;
}

/* ---------------------------------------------------------------- edits --- */

static size_t region_pos(const nk_localmeta *m, uint64_t id, bool *found)
{
    size_t lo = 0, hi = m->n_regions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->regions[mid].desc.id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < m->n_regions && m->regions[lo].desc.id == id;
    return lo;
}

int nk_localmeta_put(nk_localmeta *m, const nk_region *desc, uint8_t state)
{
    if (!state_valid(state) || nk_region_validate(desc, NULL) != NK_OK) {
        return NK_EINVAL;
    }
    bool found;
    size_t i = region_pos(m, desc->id, &found);
    if (!found) {
        if (m->n_regions >= NK_LOCALMETA_MAX_REGIONS) {
            return NK_ERANGE;
        }
        nk_localmeta_region *nr = realloc(m->regions, (m->n_regions + 1) * sizeof(*nr));
        if (nr == NULL) {
            return NK_ENOMEM;
        }
        m->regions = nr;
        memmove(&m->regions[i + 1], &m->regions[i], (m->n_regions - i) * sizeof(*nr));
        m->n_regions++;
    }
    /* A put replaces the descriptor and state; the tombstone's term and vote
     * stay with the region id (the caller sets them on the returned entry). */
    m->regions[i].desc = *desc;
    m->regions[i].state = state;
    if (!found) {
        m->regions[i].tomb_term = 0;
        m->regions[i].tomb_vote = 0;
        m->regions[i].conf_index = 0;
    }
    return NK_OK;
}

nk_localmeta_region *nk_localmeta_find(nk_localmeta *m, uint64_t region_id)
{
    bool found;
    size_t i = region_pos(m, region_id, &found);
    return found ? &m->regions[i] : NULL;
}

int nk_localmeta_remove(nk_localmeta *m, uint64_t region_id)
{
    bool found;
    size_t i = region_pos(m, region_id, &found);
    if (!found) {
        return NK_ENOENT;
    }
    memmove(&m->regions[i], &m->regions[i + 1], (m->n_regions - i - 1) * sizeof(*m->regions));
    m->n_regions--;
    return NK_OK;
}

int nk_localmeta_event_add(nk_localmeta *m, const void *data, size_t len, uint64_t *seq)
{
    if (len > NK_LOCALMETA_MAX_EVENT_BYTES) {
        return NK_ETOOBIG;
    }
    if (m->n_events >= NK_LOCALMETA_MAX_EVENTS) {
        return NK_ERANGE;
    }
    uint8_t *copy = malloc(len ? len : 1);
    nk_localmeta_event *ne = realloc(m->events, (m->n_events + 1) * sizeof(*ne));
    if (copy == NULL || ne == NULL) {
        free(copy);
        if (ne != NULL) {
            m->events = ne;
        }
        return NK_ENOMEM;
    }
    m->events = ne;
    if (len > 0) {
        memcpy(copy, data, len);
    }
    if (m->next_event_seq == 0) {
        m->next_event_seq = 1;
    }
    nk_localmeta_event *e = &m->events[m->n_events++];
    e->seq = m->next_event_seq++;
    e->data = copy;
    e->len = len;
    if (seq != NULL) {
        *seq = e->seq;
    }
    return NK_OK;
}

void nk_localmeta_event_ack(nk_localmeta *m, uint64_t upto)
{
    size_t k = 0;
    while (k < m->n_events && m->events[k].seq <= upto) {
        free(m->events[k].data);
        k++;
    }
    memmove(m->events, m->events + k, (m->n_events - k) * sizeof(*m->events));
    m->n_events -= k;
}

int nk_localmeta_event_remove(nk_localmeta *m, uint64_t seq)
{
    for (size_t k = 0; k < m->n_events; k++) {
        if (m->events[k].seq == seq) {
            free(m->events[k].data);
            memmove(m->events + k, m->events + k + 1, (m->n_events - k - 1) * sizeof(*m->events));
            m->n_events--;
            return NK_OK;
        }
    }
    return NK_ENOENT;
}
