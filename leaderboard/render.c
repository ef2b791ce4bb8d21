/* render.c - see render.h.
 *
 * Entries are grouped by split (test, validation, train) and ranked by their
 * headline word-level perplexity. Unknown values (null in a reported entry)
 * print as an em dash and sort last. Token-level numbers never appear in a
 * word-level column: the table shows word perplexities and bits per byte
 * (both tokenizer-independent); token perplexity is only in the details.
 */
#include "leaderboard/render.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "leaderboard/results.h"

/* ---- buffer ------------------------------------------------------------ */

static void buf_reserve(lb_buf *b, size_t extra)
{
    if (b->oom)
        return;
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return;
    }
    b->data = d;
    b->cap = cap;
}

static void buf_add(lb_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void lb_buf_puts(lb_buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void lb_buf_printf(lb_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        buf_add(b, small, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void lb_buf_html(lb_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': lb_buf_puts(b, "&amp;"); break;
        case '<': lb_buf_puts(b, "&lt;"); break;
        case '>': lb_buf_puts(b, "&gt;"); break;
        case '"': lb_buf_puts(b, "&quot;"); break;
        case '\'': lb_buf_puts(b, "&#39;"); break;
        default: buf_add(b, s, 1);
        }
    }
}

void lb_buf_md(lb_buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': lb_buf_puts(b, "&amp;"); break;
        case '<': lb_buf_puts(b, "&lt;"); break;
        case '>': lb_buf_puts(b, "&gt;"); break;
        case '|': lb_buf_puts(b, "\\|"); break;
        case '\n': case '\r': case '\t': lb_buf_puts(b, " "); break;
        case '\\': case '`': case '*': case '_': case '[': case ']': case '(': case ')':
        case '#': case '!': case '~':
            buf_add(b, "\\", 1);
            buf_add(b, s, 1);
            break;
        default: buf_add(b, s, 1);
        }
    }
}

void lb_buf_free(lb_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- reading entries --------------------------------------------------- */

/* The value at a dotted path ("eval.split"), or NULL. */
static const json_t *jpath(const json_t *root, const char *path)
{
    char key[64];
    const json_t *v = root;
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_is_object(v) ? json_object_get(v, key) : NULL;
        path += n + (path[n] == '.');
    }
    return v;
}

static const char *jstr(const json_t *root, const char *path)
{
    return json_string_value(jpath(root, path)); /* NULL unless a string */
}

/* A number at path; returns 0 when null or absent. */
static int jnum(const json_t *root, const char *path, double *out)
{
    const json_t *v = jpath(root, path);
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return 1;
}

static int bucket_ppl(const json_t *entry, int i, double *out)
{
    const json_t *b = json_array_get(json_object_get(entry, "buckets"), (size_t)i);
    if (!json_is_number(json_object_get(b, "word_ppl")))
        return 0;
    *out = json_number_value(json_object_get(b, "word_ppl"));
    return 1;
}

/* The badge: "reported" (from a paper), "measured" (a harness run, not
 * checked), "consistent" (its dump and the shards agree with its numbers),
 * "verified" (the model was re-run and reproduced the dump). */
static const char *status_of(const json_t *entry)
{
    const char *k = jstr(entry, "provenance.kind"), *st = jstr(entry, "provenance.status");
    if (k && strcmp(k, "reported") == 0)
        return "reported";
    if (st && strcmp(st, "verified") == 0)
        return "verified";
    if (st && strcmp(st, "consistent") == 0)
        return "consistent";
    return "measured";
}

/* Two decimals with trailing zeros dropped: a published 33.2 prints as 33.2,
 * not as the more precise-looking 33.20. */
static void fmt_ppl(char *out, size_t cap, double v)
{
    if (v >= 1e5) {
        snprintf(out, cap, "%.3e", v);
        return;
    }
    snprintf(out, cap, "%.2f", v);
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '0' && n >= 2 && out[n - 2] != '.')
        out[--n] = '\0';
}

static void fmt_params(char *out, size_t cap, double p)
{
    if (p >= 1e9)
        snprintf(out, cap, "%.2fB", p / 1e9);
    else if (p >= 1e6)
        snprintf(out, cap, "%.1fM", p / 1e6);
    else if (p >= 1e3)
        snprintf(out, cap, "%.1fK", p / 1e3);
    else
        snprintf(out, cap, "%.0f", p);
}

/* One table cell's text (already formatted, not escaped) or NULL = unknown. */
typedef struct cell {
    char text[256];
    char sort[64];   /* data-v: the numeric sort key, or "" for unknown */
    int known;
} cell;

static void cell_num(cell *c, int known, double v, void (*fmt)(char *, size_t, double))
{
    c->known = known;
    if (!known) {
        snprintf(c->text, sizeof c->text, "\xe2\x80\x94"); /* em dash */
        c->sort[0] = '\0';
        return;
    }
    fmt(c->text, sizeof c->text, v);
    snprintf(c->sort, sizeof c->sort, "%.17g", v);
}

static void fmt_bpb(char *out, size_t cap, double v) { snprintf(out, cap, "%.4f", v); }

static void describe_tokenizer(const json_t *e, char *out, size_t cap)
{
    const char *name = jstr(e, "tokenizer.name");
    double vocab = 0;
    int have_vocab = jnum(e, "tokenizer.vocab_size", &vocab);
    if (!name && !have_vocab) {
        snprintf(out, cap, "\xe2\x80\x94");
        return;
    }
    char v[32] = "?";
    if (have_vocab)
        snprintf(v, sizeof v, "%.0f", vocab);
    snprintf(out, cap, "%s (%s)", name ? name : "?", v);
}

static void describe_context(const json_t *e, char *out, size_t cap)
{
    double w = 0, m = 0, cm = 0, r = 0;
    int hw = jnum(e, "context.window", &w), hm = jnum(e, "context.memory", &m),
        hc = jnum(e, "context.compressed_memory", &cm), hr = jnum(e, "context.compression_rate", &r);
    if (!hw && !hm && !hc) {
        snprintf(out, cap, "\xe2\x80\x94");
        return;
    }
    char a[32] = "?", b[32] = "?", c[48] = "?";
    if (hw) snprintf(a, sizeof a, "%.0f", w);
    if (hm) snprintf(b, sizeof b, "%.0f", m);
    if (hc) snprintf(c, sizeof c, hr ? "%.0f\xc3\x97%.0f" : "%.0f", cm, r);
    snprintf(out, cap, "%s / %s / %s", a, b, c);
}

static void describe_books(const json_t *e, char *out, size_t cap)
{
    const char *how = jstr(e, "eval.book_handling"), *split = jstr(e, "eval.split");
    double chunk = 0, books = 0;
    int hb = jnum(e, "eval.books", &books);
    char nb[48] = "?";
    if (hb)
        snprintf(nb, sizeof nb, "%.0f %s", books, split ? split : "");
    if (!how)
        snprintf(out, cap, "%s books, handling \xe2\x80\x94", nb);
    else if (strcmp(how, "chunked") == 0 && jnum(e, "eval.chunk_tokens", &chunk))
        snprintf(out, cap, "%s books, chunks of %.0f tokens", nb, chunk);
    else
        snprintf(out, cap, "%s books, %s", nb, how);
}

/* ---- grouping and ranking ---------------------------------------------- */

/* Three tables: the two official splits, whose headline perplexities share
 * PG-19's normaliser and compare across tokenizers, and everything else
 * (subsets, the train split), which uses the exact word count and is not
 * ranked against them. */
enum { GROUPS = 3 };
static const char *const group_id[GROUPS] = {"test", "validation", "other"};
static const char *const group_title[GROUPS] = {
    "Test split (official)", "Validation split (official)",
    "Other evaluations: subsets and the train split (exact word count, not comparable with "
    "the official tables)"};

static int group_of(const json_t *e)
{
    const char *split = jstr(e, "eval.split");
    int official = json_is_true(jpath(e, "eval.official"));
    if (official && split && strcmp(split, "test") == 0)
        return 0;
    if (official && split && strcmp(split, "validation") == 0)
        return 1;
    return 2;
}

typedef struct ranked {
    const lb_entry *e;
    double ppl;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->ppl != y->ppl)
        return x->ppl < y->ppl ? -1 : 1;
    return strcmp(x->e->id, y->e->id);
}

/* The entries of one group, best first. Caller frees. */
static ranked *rank_group(const lb_entry_list *l, int group, size_t *n)
{
    ranked *r = calloc(l->n ? l->n : 1, sizeof *r);
    *n = 0;
    if (!r)
        return NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (group_of(l->items[i].json) != group)
            continue;
        r[*n].e = &l->items[i];
        if (!jnum(l->items[i].json, "word_ppl.value", &r[*n].ppl))
            r[*n].ppl = HUGE_VAL;
        (*n)++;
    }
    qsort(r, *n, sizeof *r, cmp_ranked);
    return r;
}

/* ---- HTML ---------------------------------------------------------------- */

static const char page_style[] =
    "figure.analysis{display:inline-block;margin:0 1em 1em 0;max-width:48%}\n"
    "figure.analysis img{max-width:100%;border:1px solid #ddd}\n"
    "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1500px;padding:0 1em;"
    "color:#1a1a1a}\n"
    "table{border-collapse:collapse;margin:1em 0}th,td{padding:.3em .6em;border-bottom:1px solid "
    "#ddd;text-align:left;vertical-align:top}\n"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}\n"
    "th button{font:inherit;font-weight:600;background:none;border:0;padding:0;cursor:pointer}\n"
    "th[aria-sort=ascending] button::after{content:' \\25B2'}th[aria-sort=descending] "
    "button::after{content:' \\25BC'}\n"
    ".badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.8em;color:#fff}\n"
    ".badge.verified{background:#1a7f37}.badge.consistent{background:#9a6700}"
    ".badge.measured{background:#0969da}.badge.reported{background:#6e7781}\n"
    ".unknown{color:#999}.fam{color:#666;font-size:.85em}\n"
    "table.kv td:first-child{font-family:monospace;color:#555}\n"
    "details{margin:.4em 0}summary{cursor:pointer}\n"
    "dl.badges{display:grid;grid-template-columns:max-content auto;gap:.2em .8em}"
    "dl.badges dd{margin:0}\n"
    ".scroll{overflow-x:auto}td.src{font-size:.8em;min-width:14em;max-width:24em}\n"
    "td.txt{min-width:7em}th{font-size:.9em}\n";

/* Sorts a table by the data-v values of the clicked column; unknown values
 * (empty data-v) stay last in both directions. */
static const char page_script[] =
    "document.querySelectorAll('table.board').forEach(function (t) {\n"
    "  var buttons = t.querySelectorAll('th button');\n"
    "  buttons.forEach(function (b) {\n"
    "    b.addEventListener('click', function () {\n"
    "      var col = Number(b.getAttribute('data-col'));\n"
    "      var num = b.getAttribute('data-type') === 'num';\n"
    "      var th = b.parentNode;\n"
    "      var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';\n"
    "      buttons.forEach(function (o) { o.parentNode.removeAttribute('aria-sort'); });\n"
    "      th.setAttribute('aria-sort', dir);\n"
    "      var body = t.tBodies[0];\n"
    "      var rows = Array.prototype.slice.call(body.rows);\n"
    "      rows.sort(function (x, y) {\n"
    "        var a = x.cells[col].getAttribute('data-v'), c = y.cells[col].getAttribute('data-v');\n"
    "        if (a === '' || c === '') return (a === '') - (c === '');\n"
    "        var r = num ? Number(a) - Number(c) : a.localeCompare(c);\n"
    "        return dir === 'ascending' ? r : -r;\n"
    "      });\n"
    "      rows.forEach(function (r) { body.appendChild(r); });\n"
    "    });\n"
    "  });\n"
    "});\n";

static void html_cell(lb_buf *b, const cell *c, int numeric)
{
    lb_buf_printf(b, "<td class=\"%s%s\" data-v=\"", numeric ? "num" : "txt",
                  c->known ? "" : " unknown");
    lb_buf_html(b, c->sort);
    lb_buf_puts(b, "\">");
    lb_buf_html(b, c->text);
    lb_buf_puts(b, "</td>");
}

static const char *const columns[][2] = {
    {"#", "num"},           {"Model", "txt"},          {"Status", "txt"},
    {"Word ppl", "num"},    {"Word ppl (exact words)", "num"}, {"Bits/byte", "num"},
    {"frequent", "num"},    {"common", "num"},         {"medium", "num"},
    {"rare", "num"},        {"Params", "num"},         {"Tokenizer (vocab)", "txt"},
    {"Context (window / memory / compressed)", "txt"}, {"Books", "txt"},
    {"Source", "txt"}};
enum { NCOLS = sizeof columns / sizeof columns[0] };

/* A text cell: sorts by its text; the em dash of an unknown value sorts last. */
static void text_cell(cell *c)
{
    c->known = strcmp(c->text, "\xe2\x80\x94") != 0;
    snprintf(c->sort, sizeof c->sort, "%.63s", c->known ? c->text : "");
}

static void html_row(lb_buf *b, size_t rank, const lb_entry *en)
{
    const json_t *e = en->json;
    cell c;
    double v = 0;
    lb_buf_puts(b, "<tr id=\"row-");
    lb_buf_html(b, en->id);
    lb_buf_puts(b, "\" data-entry=\"");
    lb_buf_html(b, en->id);
    lb_buf_puts(b, "\">");
    lb_buf_printf(b, "<td class=\"num\" data-v=\"%zu\">%zu</td>", rank, rank);
    /* model: name links to the details, family beside it */
    const char *name = jstr(e, "model.name"), *family = jstr(e, "model.family");
    lb_buf_puts(b, "<td class=\"model\" data-v=\"");
    lb_buf_html(b, name);
    lb_buf_puts(b, "\"><a class=\"model-name\" href=\"#entry-");
    lb_buf_html(b, en->id);
    lb_buf_puts(b, "\">");
    lb_buf_html(b, name);
    lb_buf_puts(b, "</a> <span class=\"fam\">");
    lb_buf_html(b, family);
    lb_buf_puts(b, "</span></td>");
    const char *st = status_of(e);
    lb_buf_printf(b, "<td data-v=\"%s\"><span class=\"badge %s\">%s</span></td>", st, st, st);
    int k = jnum(e, "word_ppl.value", &v);
    cell_num(&c, k, v, fmt_ppl);
    const char *norm = jstr(e, "word_ppl.normaliser");
    if (k && norm && strcmp(norm, "exact") == 0)
        strncat(c.text, " (exact)", sizeof c.text - strlen(c.text) - 1);
    html_cell(b, &c, 1);
    k = jnum(e, "word_ppl_exact.value", &v);
    cell_num(&c, k, v, fmt_ppl);
    html_cell(b, &c, 1);
    k = jnum(e, "totals.bits_per_byte", &v);
    cell_num(&c, k, v, fmt_bpb);
    html_cell(b, &c, 1);
    for (int i = 0; i < LB_BUCKETS; i++) {
        k = bucket_ppl(e, i, &v);
        cell_num(&c, k, v, fmt_ppl);
        html_cell(b, &c, 1);
    }
    k = jnum(e, "model.params", &v);
    cell_num(&c, k, v, fmt_params);
    html_cell(b, &c, 1);
    cell t;
    describe_tokenizer(e, t.text, sizeof t.text);
    text_cell(&t);
    html_cell(b, &t, 0);
    describe_context(e, t.text, sizeof t.text);
    text_cell(&t);
    html_cell(b, &t, 0);
    describe_books(e, t.text, sizeof t.text);
    text_cell(&t);
    html_cell(b, &t, 0);
    const char *src = jstr(e, "provenance.source"), *date = jstr(e, "date");
    lb_buf_puts(b, "<td class=\"src\" data-v=\"");
    lb_buf_html(b, date ? date : "");
    lb_buf_puts(b, "\">");
    if (src)
        lb_buf_html(b, src);
    if (date) {
        lb_buf_puts(b, src ? "<br>" : "");
        lb_buf_html(b, date);
    }
    if (!src && !date)
        lb_buf_puts(b, "\xe2\x80\x94");
    lb_buf_puts(b, "</td></tr>\n");
}

/* Grouped bars: one group per bucket, one bar per entry, log-scale y. */
static void html_chart(lb_buf *b, const ranked *r, size_t n, const char *split)
{
    static const char *const colors[] = {"#0969da", "#cf222e", "#1a7f37", "#8250df",
                                         "#bf8700", "#0a3069", "#a40e26", "#116329"};
    size_t with = 0;
    double lo = HUGE_VAL, hi = 0, v = 0;
    for (size_t i = 0; i < n; i++) {
        int any = 0;
        for (int k = 0; k < LB_BUCKETS; k++)
            if (bucket_ppl(r[i].e->json, k, &v)) {
                any = 1;
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
        with += any;
    }
    if (!with) {
        lb_buf_puts(b, "<p class=\"no-chart\">No entry on this split has per-bucket numbers yet "
                       "(reported results publish only the headline perplexity).</p>\n");
        return;
    }
    double ylo = floor(log10(lo)), yhi = ceil(log10(hi));
    if (yhi <= ylo)
        yhi = ylo + 1;
    if (ylo < 0)
        ylo = 0; /* perplexities are >= 1 */
    const int W = 760, H = 300, L = 60, R = 20, T = 20, B = 40;
    const double gw = (double)(W - L - R) / LB_BUCKETS;
    double bw = (gw * 0.8) / (double)with;
    lb_buf_printf(b,
                  "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" "
                  "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" "
                  "aria-labelledby=\"chart-%s-title\"><title id=\"chart-%s-title\">Word-level "
                  "perplexity by training-frequency bucket, %s split (log scale)</title>\n",
                  W, H, W, H, split, split, split);
    for (double p = ylo; p <= yhi; p += 1) {
        double y = T + (H - T - B) * (1 - (p - ylo) / (yhi - ylo));
        lb_buf_printf(b,
                      "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                      "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%g</text>\n",
                      L, W - R, y, y, L - 6, y + 4, pow(10, p));
    }
    for (int k = 0; k < LB_BUCKETS; k++)
        lb_buf_printf(b,
                      "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s "
                      "(f %s)</text>\n",
                      L + gw * (k + 0.5), H - B + 18, lb_bucket_names[k],
                      k == 0 ? "\xe2\x89\xa5 10000" : k == 1 ? "1000\xe2\x80\x93" "9999"
                                                    : k == 2 ? "100\xe2\x80\x93" "999"
                                                             : "< 100");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        int any = 0;
        for (int k = 0; k < LB_BUCKETS; k++)
            any |= bucket_ppl(r[i].e->json, k, &v);
        if (!any)
            continue;
        const char *name = jstr(r[i].e->json, "model.name");
        for (int k = 0; k < LB_BUCKETS; k++) {
            if (!bucket_ppl(r[i].e->json, k, &v))
                continue;
            double y = T + (H - T - B) * (1 - (log10(v) - ylo) / (yhi - ylo));
            double x = L + gw * k + gw * 0.1 + bw * (double)j;
            lb_buf_printf(b,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                          "fill=\"%s\"><title>",
                          x, y, bw > 1 ? bw - 1 : bw, (double)(H - B) - y, colors[j % 8]);
            lb_buf_html(b, name);
            char num[64];
            fmt_ppl(num, sizeof num, v);
            lb_buf_printf(b, ": %s word ppl %s</title></rect>\n", lb_bucket_names[k], num);
        }
        j++;
    }
    lb_buf_puts(b, "</svg><figcaption class=\"legend\">");
    j = 0;
    for (size_t i = 0; i < n; i++) {
        int any = 0;
        for (int k = 0; k < LB_BUCKETS; k++)
            any |= bucket_ppl(r[i].e->json, k, &v);
        if (!any)
            continue;
        lb_buf_printf(b, "<span style=\"color:%s\">\xe2\x96\xa0</span> ", colors[j % 8]);
        lb_buf_html(b, jstr(r[i].e->json, "model.name"));
        lb_buf_puts(b, " (");
        lb_buf_html(b, jstr(r[i].e->json, "eval.split"));
        lb_buf_puts(b, ")");
        lb_buf_puts(b, " &nbsp; ");
        j++;
    }
    lb_buf_puts(b, "</figcaption></figure>\n");
}

/* Every field of an entry as path / value rows. */
static void html_kv(lb_buf *b, const json_t *v, const char *path)
{
    char p[256];
    if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            snprintf(p, sizeof p, "%s%s%s", path, path[0] ? "." : "", key);
            html_kv(b, val, p);
        }
        return;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *val;
        json_array_foreach(v, i, val) {
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            html_kv(b, val, p);
        }
        return;
    }
    lb_buf_puts(b, "<tr><td>");
    lb_buf_html(b, path);
    lb_buf_puts(b, "</td><td");
    if (json_is_string(v)) {
        lb_buf_puts(b, ">");
        lb_buf_html(b, json_string_value(v));
    } else if (json_is_integer(v)) {
        lb_buf_printf(b, ">%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        lb_buf_printf(b, ">%.10g", json_real_value(v));
    } else if (json_is_boolean(v)) {
        lb_buf_puts(b, json_is_true(v) ? ">true" : ">false");
    } else {
        lb_buf_puts(b, " class=\"unknown\">null (not known)");
    }
    lb_buf_puts(b, "</td></tr>\n");
}

/* The figures section: each figure (a base name in DIR/figures/) as an
 * image with its name as caption. Images are same-origin (img-src 'self'),
 * and an SVG shown through <img> runs no script. */
static void html_figures(lb_buf *b, const lb_figures *f)
{
    if (!f || f->n == 0)
        return;
    lb_buf_puts(b, "<section id=\"figures\">\n<h2>Analyses of the bundled models</h2>\n"
                   "<p>Written by <code>harness analyze</code> (rare words, attention by memory "
                   "position, reading distance, memory sweep) for the models in "
                   "<code>models/</code>.</p>\n");
    for (size_t i = 0; i < f->n; i++) {
        lb_buf_puts(b, "<figure class=\"analysis\"><a href=\"figures/");
        lb_buf_html(b, f->names[i]);
        lb_buf_puts(b, "\"><img src=\"figures/");
        lb_buf_html(b, f->names[i]);
        lb_buf_puts(b, "\" alt=\"");
        lb_buf_html(b, f->names[i]);
        lb_buf_puts(b, "\" loading=\"lazy\"></a><figcaption>");
        lb_buf_html(b, f->names[i]);
        lb_buf_puts(b, "</figcaption></figure>\n");
    }
    lb_buf_puts(b, "</section>\n");
}

int lb_render_html(const lb_entry_list *l, lb_buf *b, pg_error *err)
{
    return lb_render_html_figures(l, NULL, b, err);
}

int lb_render_html_figures(const lb_entry_list *l, const lb_figures *figs, lb_buf *b,
                           pg_error *err)
{
    memset(b, 0, sizeof *b);
    uint8_t sha[32];
    char b64[64];
    pg_sha256(page_script, strlen(page_script), sha);
    pg_base64_encode(sha, 32, b64);
    lb_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    lb_buf_printf(b,
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                  "style-src 'unsafe-inline'; img-src 'self'; script-src 'sha256-%s'\">\n",
                  b64);
    lb_buf_puts(b, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>PG-19 leaderboard</title>\n<style>\n");
    lb_buf_puts(b, page_style);
    lb_buf_puts(b, "</style>\n</head>\n<body>\n<h1>PG-19 leaderboard</h1>\n"
                   "<p>Word-level perplexity on PG-19 (Rae et al. 2020): exp(total NLL in nats / "
                   "words). On the official validation and test splits the headline divides by "
                   "PG-19's own word counts (Table 2: 3,007,061 and 6,966,499 words), so models "
                   "with different tokenizers compare; <em>exact words</em> divides by the word "
                   "count of this toolkit's shards. Token-level perplexities are never shown in "
                   "these columns. Bucket columns: word perplexity of words by training-split "
                   "frequency f. Click a column header to sort.</p>\n");
    lb_buf_puts(b, "<dl class=\"badges\">"
                   "<dt><span class=\"badge verified\">verified</span></dt><dd>reproduced: "
                   "<code>leaderboard verify</code> re-ran this toolkit's harness with the "
                   "entry's weights and config (checked by SHA-256) on all its books or a "
                   "sample chosen by the entry's hash, and every per-token NLL matched the "
                   "submitted dump within the documented tolerance; the details list what was "
                   "re-run.</dd>"
                   "<dt><span class=\"badge consistent\">consistent</span></dt><dd>the "
                   "submitted per-token NLL dump and the shards agree with every number of the "
                   "entry (counts, buckets, perplexities, hashes). This checks the arithmetic, "
                   "not the model: the NLLs could have been written by hand.</dd>"
                   "<dt><span class=\"badge measured\">measured</span></dt><dd>submitted from "
                   "a harness run, not checked yet.</dd>"
                   "<dt><span class=\"badge reported\">reported</span></dt><dd>quoted from a "
                   "paper; fields the paper does not give show as \xe2\x80\x94.</dd></dl>\n");
    lb_buf_printf(b, "<p class=\"count\">%zu entries.</p>\n", l->n);
    for (int s = 0; s < GROUPS; s++) {
        size_t n;
        ranked *r = rank_group(l, s, &n);
        if (!r)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        if (n == 0) {
            free(r);
            continue;
        }
        lb_buf_printf(b, "<section id=\"split-%s\">\n<h2>%s</h2>\n", group_id[s],
                      group_title[s]);
        lb_buf_printf(b, "<div class=\"scroll\"><table class=\"board\" id=\"board-%s\">\n<thead><tr>",
                      group_id[s]);
        for (int c = 0; c < NCOLS; c++)
            lb_buf_printf(b, "<th><button type=\"button\" data-col=\"%d\" data-type=\"%s\">%s"
                             "</button></th>",
                          c, columns[c][1], columns[c][0]);
        lb_buf_puts(b, "</tr></thead>\n<tbody>\n");
        for (size_t i = 0; i < n; i++)
            html_row(b, i + 1, r[i].e);
        lb_buf_puts(b, "</tbody>\n</table></div>\n");
        lb_buf_puts(b, "<h3>Word perplexity by frequency bucket</h3>\n");
        html_chart(b, r, n, group_id[s]);
        lb_buf_puts(b, "</section>\n");
        free(r);
    }
    html_figures(b, figs);
    lb_buf_puts(b, "<section id=\"details\">\n<h2>Entry details</h2>\n");
    for (size_t i = 0; i < l->n; i++) {
        const lb_entry *en = &l->items[i];
        lb_buf_puts(b, "<details id=\"entry-");
        lb_buf_html(b, en->id);
        lb_buf_puts(b, "\"><summary>");
        lb_buf_html(b, jstr(en->json, "model.name"));
        lb_buf_puts(b, " \xe2\x80\x94 ");
        lb_buf_html(b, jstr(en->json, "eval.split"));
        const char *st = status_of(en->json);
        lb_buf_printf(b, " <span class=\"badge %s\">%s</span> <code>", st, st);
        lb_buf_html(b, en->id);
        lb_buf_puts(b, "</code></summary>\n<table class=\"kv\">\n");
        html_kv(b, en->json, "");
        lb_buf_puts(b, "</table></details>\n");
    }
    lb_buf_puts(b, "</section>\n<script>");
    lb_buf_puts(b, page_script);
    lb_buf_puts(b, "</script>\n</body>\n</html>\n");
    if (b->oom) {
        lb_buf_free(b);
        return pg_fail(err, PG_ENOMEM, "out of memory rendering the page");
    }
    return PG_OK;
}

/* ---- Markdown ------------------------------------------------------------ */

int lb_render_markdown(const lb_entry_list *l, lb_buf *b, pg_error *err)
{
    return lb_render_markdown_figures(l, NULL, b, err);
}

int lb_render_markdown_figures(const lb_entry_list *l, const lb_figures *figs, lb_buf *b,
                               pg_error *err)
{
    memset(b, 0, sizeof *b);
    lb_buf_puts(b, "Word-level perplexity (exp(NLL / words)); on the official validation and "
                   "test splits normalised by PG-19's word counts (Rae et al. 2020, Table 2). "
                   "\"Exact\" divides by this toolkit's own word count. Unknown: \xe2\x80\x94.\n"
                   "Status: **verified** = the model was re-run with the entry's weights and "
                   "reproduced its per-token NLLs within the documented tolerance; **consistent** "
                   "= the submitted NLL dump and the shards agree with the entry's numbers "
                   "(arithmetic only); **measured** = a harness run, not checked; **reported** = "
                   "quoted from a paper.\n");
    for (int s = 0; s < GROUPS; s++) {
        size_t n;
        ranked *r = rank_group(l, s, &n);
        if (!r)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        if (n == 0) {
            free(r);
            continue;
        }
        lb_buf_printf(b, "\n#### %s\n\n", group_title[s]);
        lb_buf_puts(b, "| # | Model | Status | Word ppl | Exact word ppl | Bits/byte | Params | "
                       "Tokenizer | Context | Books | Source |\n");
        lb_buf_puts(b, "|--:|---|---|--:|--:|--:|--:|---|---|---|---|\n");
        for (size_t i = 0; i < n; i++) {
            const json_t *e = r[i].e->json;
            cell c;
            double v = 0;
            char t[256];
            lb_buf_printf(b, "| %zu | ", i + 1);
            lb_buf_md(b, jstr(e, "model.name"));
            lb_buf_printf(b, " | %s | ", status_of(e));
            int k = jnum(e, "word_ppl.value", &v);
            cell_num(&c, k, v, fmt_ppl);
            lb_buf_puts(b, c.text);
            const char *norm = jstr(e, "word_ppl.normaliser");
            if (k && norm && strcmp(norm, "exact") == 0)
                lb_buf_puts(b, " (exact)");
            /* jnum() writes v: call it before v is read as an argument (the
             * two in one argument list are unsequenced, and showed each cell
             * the previous column's value) */
            k = jnum(e, "word_ppl_exact.value", &v);
            cell_num(&c, k, v, fmt_ppl);
            lb_buf_printf(b, " | %s", c.text);
            k = jnum(e, "totals.bits_per_byte", &v);
            cell_num(&c, k, v, fmt_bpb);
            lb_buf_printf(b, " | %s", c.text);
            k = jnum(e, "model.params", &v);
            cell_num(&c, k, v, fmt_params);
            lb_buf_printf(b, " | %s | ", c.text);
            describe_tokenizer(e, t, sizeof t);
            lb_buf_md(b, t);
            lb_buf_puts(b, " | ");
            describe_context(e, t, sizeof t);
            lb_buf_md(b, t);
            lb_buf_puts(b, " | ");
            describe_books(e, t, sizeof t);
            lb_buf_md(b, t);
            lb_buf_puts(b, " | ");
            const char *src = jstr(e, "provenance.source"), *date = jstr(e, "date");
            lb_buf_md(b, src ? src : date ? date : "\xe2\x80\x94");
            lb_buf_puts(b, " |\n");
        }
        free(r);
    }
    if (figs && figs->n) {
        lb_buf_puts(b, "\n#### Analyses of the bundled models\n\n");
        for (size_t k = 0; k < figs->n; k++) {
            lb_buf_puts(b, "- [");
            lb_buf_md(b, figs->names[k]);
            lb_buf_puts(b, "](figures/");
            lb_buf_puts(b, figs->names[k]); /* checked: [A-Za-z0-9._-] only */
            lb_buf_puts(b, ")\n");
        }
    }
    if (b->oom) {
        lb_buf_free(b);
        return pg_fail(err, PG_ENOMEM, "out of memory rendering the Markdown");
    }
    return PG_OK;
}

/* ---- figures ------------------------------------------------------------ */

#define FIGURE_MAX_BYTES (8u << 20)

static int figure_name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len < 5 || len > 100 || strcmp(n + len - 4, ".svg") != 0 || n[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '.' || n[i] == '_' || n[i] == '-'))
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void lb_figures_free(lb_figures *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->data[i]);
    }
    free(f->names);
    free(f->data);
    free(f->len);
    memset(f, 0, sizeof *f);
}

int lb_figures_load(const char *dir, lb_figures *f, pg_error *err)
{
    memset(f, 0, sizeof *f);
    DIR *d = opendir(dir);
    if (!d)
        return pg_fail(err, PG_ENOTFOUND, "figures: %s: %s", dir, strerror(errno));
    struct dirent *de;
    size_t cap = 0;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        if (!figure_name_ok(de->d_name))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *buf;
        size_t len;
        if ((rc = pg_read_file(path, FIGURE_MAX_BYTES, &buf, &len, err)))
            break;
        /* an SVG document: XML or <svg> first (after blanks), no script */
        size_t k = 0;
        while (k < len && (buf[k] == ' ' || buf[k] == '\n' || buf[k] == '\r' || buf[k] == '\t'))
            k++;
        if (len - k < 5 || (strncmp(buf + k, "<?xml", 5) != 0 && strncmp(buf + k, "<svg", 4) != 0) ||
            memmem(buf, len, "<script", 7) || memmem(buf, len, "<SCRIPT", 7)) {
            free(buf);
            rc = pg_fail(err, PG_EINVAL, "figures: %s is not a plain SVG document (or holds a "
                         "script)", path);
            break;
        }
        if (f->n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **nn = realloc(f->names, nc * sizeof *nn);
            if (nn)
                f->names = nn;
            char **nd = nn ? realloc(f->data, nc * sizeof *nd) : NULL;
            if (nd)
                f->data = nd;
            size_t *nl = nd ? realloc(f->len, nc * sizeof *nl) : NULL;
            if (!nl) {
                free(buf);
                rc = pg_fail(err, PG_ENOMEM, "figures: out of memory");
                break;
            }
            f->len = nl;
            cap = nc;
        }
        f->names[f->n] = strdup(de->d_name);
        f->data[f->n] = buf;
        f->len[f->n] = len;
        if (!f->names[f->n]) {
            free(buf);
            rc = pg_fail(err, PG_ENOMEM, "figures: out of memory");
            break;
        }
        f->n++;
    }
    closedir(d);
    if (rc) {
        lb_figures_free(f);
        return rc;
    }
    /* sorted by name, the data with them */
    for (size_t i = 1; i < f->n; i++)
        for (size_t j = i; j > 0 && cmp_str(&f->names[j - 1], &f->names[j]) > 0; j--) {
            char *t = f->names[j]; f->names[j] = f->names[j - 1]; f->names[j - 1] = t;
            t = f->data[j]; f->data[j] = f->data[j - 1]; f->data[j - 1] = t;
            size_t u = f->len[j]; f->len[j] = f->len[j - 1]; f->len[j - 1] = u;
        }
    return 0;
}

int lb_render_site(const lb_entry_list *l, const char *dir, pg_error *err)
{
    return lb_render_site_figures(l, NULL, dir, err);
}

int lb_render_site_figures(const lb_entry_list *l, const lb_figures *figs, const char *dir,
                           pg_error *err)
{
    int rc = pg_mkdirs(dir, err);
    if (rc)
        return rc;
    if (figs && figs->n) {
        char fdir[4096], path[4200];
        snprintf(fdir, sizeof fdir, "%s/figures", dir);
        if ((rc = pg_mkdirs(fdir, err)))
            return rc;
        for (size_t i = 0; i < figs->n && !rc; i++) {
            snprintf(path, sizeof path, "%s/%s", fdir, figs->names[i]);
            rc = pg_write_file_atomic(path, figs->data[i], figs->len[i], err);
        }
        if (rc)
            return rc;
    }
    lb_buf html, md;
    if ((rc = lb_render_html_figures(l, figs, &html, err)))
        return rc;
    if ((rc = lb_render_markdown_figures(l, figs, &md, err))) {
        lb_buf_free(&html);
        return rc;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/index.html", dir);
    rc = pg_write_file_atomic(path, html.data, html.len, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/leaderboard.md", dir);
        rc = pg_write_file_atomic(path, md.data, md.len, err);
    }
    lb_buf_free(&html);
    lb_buf_free(&md);
    return rc;
}
