/* Unit tests for common/: checksums against published vectors, encodings,
 * crash-safe writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/huge_pages.h"
#include "common/svg_plot.h"

static void test_crc32c_vectors(void **state)
{
    (void)state;
    /* RFC 3720 B.4 check value and test patterns */
    assert_int_equal(pg_crc32c_update(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(pg_crc32c_update(0, zeros, 32), 0x8A9136AAu);
    assert_int_equal(pg_crc32c_update(0, ones, 32), 0x62A8AB43u);
    /* incremental == one shot, across odd split points */
    char buf[1000];
    for (int i = 0; i < 1000; i++)
        buf[i] = (char)(i * 7 + 3);
    uint32_t whole = pg_crc32c_update(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= 17; cut++) {
        uint32_t c = pg_crc32c_update(0, buf, cut);
        c = pg_crc32c_update(c, buf + cut, sizeof buf - cut);
        assert_int_equal(c, whole);
    }
}

static void test_hasher(void **state)
{
    (void)state;
    pg_hasher *h = pg_hasher_new();
    assert_non_null(h);
    pg_hasher_update(h, "abc", 3);
    uint8_t md5[16], sha[32];
    uint32_t crc;
    pg_hasher_final(h, md5, sha, &crc);
    char hex[65];
    pg_hex(md5, 16, hex);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    pg_hex(sha, 32, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    pg_hasher_free(h);
}

static void test_base64(void **state)
{
    (void)state;
    uint8_t md5[16];
    /* Cloud Storage's md5Hash for "abc" */
    assert_int_equal(pg_base64_decode_exact("kAFQmDzST7DWlj99KOF/cg==", md5, 16), 0);
    char hex[33];
    pg_hex(md5, 16, hex);
    assert_string_equal(hex, "900150983cd24fb0d6963f7d28e17f72");
    uint8_t four[4];
    assert_int_equal(pg_base64_decode_exact("4waSgw==", four, 4), 0);
    assert_int_equal(four[0], 0xe3);
    /* malformed: wrong length, bad chars, data after padding, wrong size */
    assert_int_not_equal(pg_base64_decode_exact("kAFQmDzST7DWlj99KOF/cg=", md5, 16), 0);
    assert_int_not_equal(pg_base64_decode_exact("kAFQmDzST7DWlj99KOF*cg==", md5, 16), 0);
    assert_int_not_equal(pg_base64_decode_exact("4w=Sgw==", four, 4), 0);
    assert_int_not_equal(pg_base64_decode_exact("", four, 4), 0);
    assert_int_not_equal(pg_base64_decode_exact("4waSgwAA", four, 4), 0);
    char enc[32];
    pg_base64_encode(four, 4, enc);
    assert_string_equal(enc, "4waSgw==");
    uint8_t b[2];
    assert_int_equal(pg_unhex("0aFf", b, 2), 0);
    assert_int_equal(b[1], 0xff);
    assert_int_not_equal(pg_unhex("0aF", b, 2), 0);
    assert_int_not_equal(pg_unhex("0aFg", b, 2), 0);
}

static void test_atomic_write(void **state)
{
    (void)state;
    char dir[] = "/tmp/pg19-common-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], sub[256];
    snprintf(sub, sizeof sub, "%s/a/b/c", dir);
    pg_error err;
    assert_int_equal(pg_mkdirs(sub, &err), 0);
    snprintf(path, sizeof path, "%s/file.txt", sub);
    assert_int_equal(pg_write_file_atomic(path, "first", 5, &err), 0);
    /* an aborted write leaves the old content and no temp file */
    pg_atomic_file af;
    assert_int_equal(pg_atomic_open(&af, path, &err), 0);
    fputs("second, never committed", af.fp);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s", af.tmp_path);
    pg_atomic_abort(&af);
    assert_int_not_equal(access(tmp, F_OK), 0);
    char *data;
    size_t len;
    assert_int_equal(pg_read_file(path, 100, &data, &len, &err), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(data, "first", 5);
    free(data);
    /* size cap: exactly at the cap is fine, one over is refused */
    assert_int_equal(pg_read_file(path, 5, &data, &len, &err), 0);
    free(data);
    assert_int_equal(pg_read_file(path, 4, &data, &len, &err), PG_ELIMIT);
    assert_non_null(strstr(err.msg, "file.txt"));
    assert_int_equal(pg_read_file("/nonexistent/x", 4, &data, &len, &err), PG_ENOTFOUND);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* zeroed like calloc, 2 MiB-aligned when large, refuses overflow */
static void test_calloc_huge(void **state)
{
    (void)state;
    size_t sizes[] = {1, 1000, (size_t)2 << 20, ((size_t)5 << 20) + 12};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = pg_calloc_huge(sizes[i], 1);
        assert_non_null(p);
        for (size_t j = 0; j < sizes[i]; j++)
            if (p[j])
                fail_msg("byte %zu of %zu is not zero", j, sizes[i]);
        if (sizes[i] >= ((size_t)2 << 20))
            assert_int_equal((uintptr_t)p % ((size_t)2 << 20), 0);
        p[sizes[i] - 1] = 7; /* the whole block is ours (ASan checks) */
        free(p);
    }
    assert_null(pg_calloc_huge(SIZE_MAX / 2, 4));
    float *z = pg_calloc_huge(0, sizeof(float));
    assert_non_null(z);
    free(z);
}

static void test_svg_plot(void **state)
{
    (void)state;
    pg_error err;
    char dir[] = "/tmp/pg19-svg-XXXXXX", path[300];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/p.svg", dir);
    /* a NaN splits a line in two; text is escaped */
    double x[] = {0, 1, 2, 3, 4}, y[] = {1, 2, NAN, 4, 5};
    pg_plot_series s = {"a<b & \"c\"", x, y, 5};
    pg_plot p = {.title = "t<1>", .x_label = "x", .y_label = "y"};
    assert_int_equal(pg_svg_lines(path, &p, &s, 1, &err), 0);
    char *svg;
    size_t len;
    assert_int_equal(pg_read_file(path, 1 << 20, &svg, &len, &err), 0);
    assert_int_equal(count(svg, "<polyline"), 2);
    assert_non_null(strstr(svg, "a&lt;b &amp; &quot;c&quot;"));
    assert_non_null(strstr(svg, "t&lt;1&gt;"));
    assert_null(strstr(svg, "nan"));
    assert_non_null(strstr(svg, "</svg>"));
    free(svg);
    /* bars: one rect per finite value, plus background, frame and legend */
    double b1[] = {10, 20, 30}, b2[] = {5, INFINITY, 50};
    pg_plot_series bs[] = {{"m1", NULL, b1, 3}, {"m2", NULL, b2, 3}};
    const char *groups[] = {"frequent", "common", "rare"};
    p.log_y = 1;
    assert_int_equal(pg_svg_bars(path, &p, groups, 3, bs, 2, &err), 0);
    assert_int_equal(pg_read_file(path, 1 << 20, &svg, &len, &err), 0);
    assert_int_equal(count(svg, "<rect"), 5 + 1 + 1 + 2);
    free(svg);
    /* nothing finite: refused, the earlier file untouched */
    double bad[] = {NAN, NAN};
    pg_plot_series none = {"x", NULL, bad, 2};
    assert_int_equal(pg_svg_lines(path, &p, &none, 1, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "p.svg"));
    pg_plot_series short_series = {"x", NULL, b1, 2};
    assert_int_equal(pg_svg_bars(path, &p, groups, 3, &short_series, 1, &err), PG_EINVAL);
    assert_int_equal(pg_read_file(path, 1 << 20, &svg, &len, &err), 0);
    assert_int_equal(count(svg, "<rect"), 9);
    free(svg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_hasher),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_svg_plot),
        cmocka_unit_test(test_calloc_huge),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
