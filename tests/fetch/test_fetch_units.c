/* Unit tests for fetch/: listing parser (hostile input), retry policy,
 * manifest round trip and malformed manifests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "fetch/dir_lock.h"
#include "fetch/gcs_listing.h"
#include "fetch/manifest.h"
#include "fetch/retry.h"

static int parse(const char *json, gcs_object_list *l, char **tok, pg_error *err)
{
    memset(l, 0, sizeof *l);
    return gcs_parse_listing_page(json, strlen(json), "page", l, tok, err);
}

static void test_listing_good(void **state)
{
    (void)state;
    gcs_object_list l;
    char *tok;
    pg_error err;
    const char *json =
        "{\"kind\":\"storage#objects\",\"nextPageToken\":\"abc\",\"items\":["
        "{\"name\":\"train/1.txt\",\"size\":\"3\",\"md5Hash\":\"kAFQmDzST7DWlj99KOF/cg==\","
        "\"crc32c\":\"Nks/tw==\"},"
        "{\"name\":\"metadata.csv\",\"size\":1234567890}]}";
    assert_int_equal(parse(json, &l, &tok, &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0].name, "train/1.txt");
    assert_int_equal(l.items[0].size, 3);
    assert_true(l.items[0].has_md5 && l.items[0].has_crc32c);
    assert_int_equal(l.items[0].md5[0], 0x90);
    assert_int_equal(l.items[0].crc32c, 0x364b3fb7u);
    assert_int_equal(l.items[1].size, 1234567890ULL);
    assert_false(l.items[1].has_md5);
    assert_string_equal(tok, "abc");
    free(tok);
    gcs_object_list_free(&l);
    /* an empty listing has no items key */
    assert_int_equal(parse("{\"kind\":\"storage#objects\"}", &l, &tok, &err), 0);
    assert_int_equal(l.n, 0);
    assert_null(tok);
}

static void test_listing_hostile(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "[]",
        "{\"items\":{}}",
        "{\"items\":[{\"size\":\"1\"}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"-1\"}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"1x\"}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"99999999999999999999999\"}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"99999999999\"}]}", /* over the object cap */
        "{\"items\":[{\"name\":\"a\",\"size\":1.5}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"1\",\"md5Hash\":\"AAAA\"}]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"1\",\"crc32c\":\"kAFQmDzST7DWlj99KOF/cg==\"}]}",
        "{\"items\":[],\"nextPageToken\":\"\"}",
        "{\"items\":[],\"nextPageToken\":5}",
        "{\"items\":[],\"items\":[]}",
        "{\"items\":[{\"name\":\"a\",\"size\":\"1\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gcs_object_list l;
        char *tok = NULL;
        pg_error err = {0};
        int rc = parse(bad[i], &l, &tok, &err);
        if (rc == 0)
            fail_msg("accepted hostile listing %zu: %s", i, bad[i]);
        assert_non_null(strstr(err.msg, "page"));
        free(tok);
        gcs_object_list_free(&l);
    }
    /* a name of 300 bytes */
    char json[600];
    char name[301];
    memset(name, 'a', 300);
    name[300] = '\0';
    snprintf(json, sizeof json, "{\"items\":[{\"name\":\"%s\",\"size\":\"1\"}]}", name);
    gcs_object_list l;
    char *tok;
    pg_error err;
    assert_int_not_equal(parse(json, &l, &tok, &err), 0);
    gcs_object_list_free(&l);
}

/* A listing may not grow past GCS_MAX_ITEMS objects, over any number of pages. */
static void test_listing_item_bound(void **state)
{
    (void)state;
    gcs_object_list l = {0};
    l.cap = GCS_MAX_ITEMS;
    l.items = calloc(l.cap, sizeof *l.items);
    assert_non_null(l.items);
    l.n = GCS_MAX_ITEMS - 1;
    const char *one = "{\"items\":[{\"name\":\"train/1.txt\",\"size\":\"3\"}],\"nextPageToken\":\"t\"}";
    const char *two = "{\"items\":[{\"name\":\"train/2.txt\",\"size\":\"3\"},"
                      "{\"name\":\"train/3.txt\",\"size\":\"3\"}]}";
    char *tok = NULL;
    pg_error err = {0};
    assert_int_equal(gcs_parse_listing_page(one, strlen(one), "page 99", &l, &tok, &err), 0);
    assert_int_equal(l.n, GCS_MAX_ITEMS);
    free(tok);
    tok = NULL;
    l.n = GCS_MAX_ITEMS - 1;
    assert_int_equal(gcs_parse_listing_page(two, strlen(two), "page 100", &l, &tok, &err), PG_ELIMIT);
    assert_non_null(strstr(err.msg, "page 100"));
    assert_non_null(strstr(err.msg, "100000"));
    assert_int_equal(l.n, GCS_MAX_ITEMS - 1); /* nothing of the refused page was kept */
    assert_null(tok);
    gcs_object_list_free(&l);

    /* a page of tiny values is refused before it is parsed (it would take
     * about 50 bytes of memory per value once parsed) */
    size_t nvals = GCS_MAX_PAGE_VALUES + 1, cap = 2 * nvals + 32;
    char *bloat = malloc(cap);
    assert_non_null(bloat);
    size_t k = (size_t)snprintf(bloat, cap, "{\"items\":[");
    for (size_t v = 0; v < nvals; v++) {
        bloat[k++] = '1';
        bloat[k++] = ',';
    }
    k--; /* the last comma */
    k += (size_t)snprintf(bloat + k, cap - k, "]}");
    memset(&l, 0, sizeof l);
    assert_int_equal(gcs_parse_listing_page(bloat, k, "page 7", &l, &tok, &err), PG_ELIMIT);
    assert_non_null(strstr(err.msg, "JSON values"));
    /* commas inside strings are not values */
    k = (size_t)snprintf(bloat, cap, "{\"items\":[],\"kind\":\"");
    for (size_t v = 0; v < nvals; v++)
        bloat[k++] = ',';
    k += (size_t)snprintf(bloat + k, cap - k, "\\\",\"}");
    assert_int_equal(gcs_parse_listing_page(bloat, k, "page 8", &l, &tok, &err), 0);
    assert_int_equal(l.n, 0);
    free(bloat);
    gcs_object_list_free(&l);
}

/* A second lock on the same folder is refused with the holder's PID, and a
 * released lock leaves no file behind and can be taken again. */
static void test_dir_lock(void **state)
{
    (void)state;
    char dir[] = "/tmp/pg19-lock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    dir_lock a = {.fd = -1}, b = {.fd = -1};
    pg_error err = {0};
    assert_int_equal(dir_lock_acquire(&a, dir, &err), 0);
    assert_int_equal(dir_lock_acquire(&b, dir, &err), PG_EINVAL);
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err.msg, pid));
    assert_non_null(strstr(err.msg, DIR_LOCK_NAME));
    assert_int_equal(b.fd, -1);
    dir_lock_release(&a);
    assert_int_equal(access(a.path, F_OK), -1);
    assert_int_equal(dir_lock_acquire(&b, dir, &err), 0);
    dir_lock_release(&b);
    dir_lock_release(&b); /* a no-op */
    /* a lock file left by a killed run (no holder) does not block */
    char stale[128];
    snprintf(stale, sizeof stale, "%s/%s", dir, DIR_LOCK_NAME);
    assert_int_equal(pg_write_file_atomic(stale, "12345\n", 6, &err), 0);
    assert_int_equal(dir_lock_acquire(&a, dir, &err), 0);
    dir_lock_release(&a);
    assert_int_equal(rmdir(dir), 0);
}

static void test_retry(void **state)
{
    (void)state;
    retry_policy p;
    retry_policy_default(&p);
    unsigned seed = 1;
    for (int a = 1; a < 20; a++) {
        double d = retry_delay(&p, a, -1, &seed);
        double ceiling = p.base_delay_s * (double)(1u << (a - 1 < 10 ? a - 1 : 10));
        assert_true(d >= 0 && d <= p.max_delay_s && d <= ceiling);
    }
    assert_true(retry_delay(&p, 1, 7, &seed) >= 7);
    assert_true(retry_delay(&p, 1, 1e9, &seed) <= p.max_retry_after_s);
    assert_true(retry_parse_after("5") == 5);
    assert_true(retry_parse_after(" 12\r\n") == 12);
    assert_true(retry_parse_after("soon") < 0);
    assert_true(retry_parse_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0); /* in the past */
    double ra = 99;
    const char *h = "retry-after: 3\r\nX";
    assert_int_equal(retry_header_after(h, strlen(h) - 1, &ra), 1); /* not NUL-terminated */
    assert_true(ra == 3);
    assert_int_equal(retry_header_after("Retry-After: soon\r\n", 19, &ra), 1);
    assert_true(ra < 0);
    ra = 99;
    assert_int_equal(retry_header_after("Content-Length: 3\r\n", 19, &ra), 0);
    assert_int_equal(retry_header_after("Retry-After:", 12, &ra), 0);
    assert_true(ra == 99);
    assert_int_equal(retry_classify(CURLE_OK, 503), FAIL_RETRY);
    assert_int_equal(retry_classify(CURLE_OK, 429), FAIL_RETRY);
    assert_int_equal(retry_classify(CURLE_OK, 404), FAIL_FATAL);
    assert_int_equal(retry_classify(CURLE_PARTIAL_FILE, 200), FAIL_RETRY);
    assert_int_equal(retry_classify(CURLE_OPERATION_TIMEDOUT, 0), FAIL_RETRY);
    assert_int_equal(retry_classify(CURLE_COULDNT_RESOLVE_HOST, 0), FAIL_OFFLINE);
}

static void test_manifest(void **state)
{
    (void)state;
    char dir[] = "/tmp/pg19-manifest-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/MANIFEST.tsv", dir);
    pg_error err;
    manifest m;
    assert_int_equal(manifest_load(&m, path, &err), 0); /* missing: empty */
    assert_int_equal(m.n, 0);
    const char *ids[] = {"1006", "101", "9", "metadata.csv"};
    const char *splits[] = {"train", "train", "test", "-"};
    for (int i = 0; i < 4; i++) {
        manifest_entry e;
        memset(&e, 0, sizeof e);
        strcpy(e.split, splits[i]);
        strcpy(e.id, ids[i]);
        e.bytes = (uint64_t)i * 1000000007ULL;
        e.md5[0] = (uint8_t)i;
        e.crc32c = 0xdeadbeef + (uint32_t)i;
        e.sha256[31] = (uint8_t)i;
        assert_int_equal(manifest_put(&m, &e, &err), 0);
    }
    assert_string_equal(m.entries[0].id, "metadata.csv");
    assert_string_equal(m.entries[1].id, "101");
    assert_string_equal(m.entries[2].id, "1006");
    assert_string_equal(m.entries[3].split, "test");
    assert_int_equal(manifest_save(&m, path, &err), 0);
    manifest m2;
    assert_int_equal(manifest_load(&m2, path, &err), 0);
    assert_int_equal(m2.n, 4);
    assert_memory_equal(m.entries, m2.entries, 4 * sizeof *m.entries);
    const manifest_entry *f = manifest_find(&m2, "train", "1006");
    assert_non_null(f);
    assert_int_equal(f->bytes, 0);
    assert_null(manifest_find(&m2, "validation", "1006"));
    manifest_free(&m);
    manifest_free(&m2);

    const char *bad[] = {
        "nope\n",
        "split\tid\tbytes\tmd5\tcrc32c\tsha256\ntrain\t1\t10\n",
        "split\tid\tbytes\tmd5\tcrc32c\tsha256\ntrain\t1\tx\t00000000000000000000000000000000\t00000000\t"
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "split\tid\tbytes\tmd5\tcrc32c\tsha256\ntrain\t1\t10\t0000\t00000000\t"
        "0000000000000000000000000000000000000000000000000000000000000000\n",
        "split\tid\tbytes\tmd5\tcrc32c\tsha256\ntrain\t1\t10\t00000000000000000000000000000000\t00000000\t"
        "0000000000000000000000000000000000000000000000000000000000000000\textra\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pg_write_file_atomic(path, bad[i], strlen(bad[i]), &err), 0);
        assert_int_equal(manifest_load(&m, path, &err), PG_ECORRUPT);
        assert_non_null(strstr(err.msg, "MANIFEST.tsv"));
    }
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listing_good),
        cmocka_unit_test(test_listing_hostile),
        cmocka_unit_test(test_listing_item_bound),
        cmocka_unit_test(test_dir_lock),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_manifest),
    };
    return cmocka_run_group_tests_name("fetch", tests, NULL, NULL);
}
