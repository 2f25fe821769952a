/*
 * hello.c - the embedded C API in one page: open, write, read, scan, close.
 *
 *   build/nokv-example ./example-db
 */
#include <stdio.h>
#include <string.h>

#include "nokv/nokv.h"

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "./example-db";
    char err[NOKV_ERRMSG_SIZE];
    nokv *db = NULL;
    if (nokv_open(dir, NULL, &db, err) != NOKV_OK) {
        fprintf(stderr, "open %s: %s\n", dir, err);
        return 1;
    }

    /* Single writes are durable when they return (sync is the default). */
    if (nokv_put(db, "greeting", 8, "hello", 5, NULL, err) != NOKV_OK) {
        fprintf(stderr, "put: %s\n", err);
        nokv_close(db);
        return 1;
    }

    /* A batch applies atomically. */
    nokv_batch *b = nokv_batch_new();
    nokv_batch_put(b, "fruit:apple", 11, "red", 3);
    nokv_batch_put(b, "fruit:kiwi", 10, "green", 5);
    nokv_batch_delete(b, "fruit:none", 10);
    int rc = nokv_write(db, b, NULL, err);
    nokv_batch_free(b);
    if (rc != NOKV_OK) {
        fprintf(stderr, "write: %s\n", err);
        nokv_close(db);
        return 1;
    }

    char *val = NULL;
    size_t len = 0;
    if (nokv_get(db, "greeting", 8, &val, &len, NULL, err) == NOKV_OK) {
        printf("greeting = %.*s\n", (int)len, val);
        nokv_free(val);
    }

    /* Iterate the "fruit:" prefix: [fruit:, fruit;) */
    nokv_iter *it = nokv_iter_new(db, NULL, "fruit:", 6, "fruit;", 6);
    for (nokv_iter_first(it); nokv_iter_valid(it); nokv_iter_next(it)) {
        size_t kl, vl;
        const char *k = nokv_iter_key(it, &kl);
        const char *v = nokv_iter_value(it, &vl);
        printf("%.*s = %.*s\n", (int)kl, k, (int)vl, v);
    }
    if (nokv_iter_status(it, err) != NOKV_OK) {
        fprintf(stderr, "scan: %s\n", err);
    }
    nokv_iter_free(it);
    return nokv_close(db) == NOKV_OK ? 0 : 1;
}
