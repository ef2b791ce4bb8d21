/* render.h - the leaderboard as a static web page and a Markdown table.
 *
 * index.html is one self-contained file: a sortable table per split (click a
 * column header), a per-bucket word-perplexity chart per split as inline SVG
 * (log scale), every entry's full details, and verified / measured /
 * reported badges. Every piece of submitted text goes through an HTML escaper;
 * the page's one inline script is pinned by a Content-Security-Policy hash so
 * that nothing else can run even if escaping were ever bypassed.
 * leaderboard.md is the same ranking as GitHub-flavoured Markdown tables.
 */
#ifndef PG19_LEADERBOARD_RENDER_H
#define PG19_LEADERBOARD_RENDER_H

#include <stddef.h>

#include "common/error.h"
#include "leaderboard/entries.h"

/* A growable text buffer. */
typedef struct lb_buf {
    char *data;
    size_t len, cap;
    int oom;
} lb_buf;

void lb_buf_puts(lb_buf *b, const char *s);
void lb_buf_printf(lb_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s with & < > " ' replaced by entities (safe in text and quoted attributes). */
void lb_buf_html(lb_buf *b, const char *s);
/* Appends s escaped for a Markdown table cell. */
void lb_buf_md(lb_buf *b, const char *s);
void lb_buf_free(lb_buf *b);

/* SVG pictures shown on the page (`render --figures DIR`: the analyses of
 * the bundled models, models/cards/). Loaded from DIR: files named
 * [A-Za-z0-9._-]+.svg, at most 8 MB each, that start as an SVG document
 * and hold no <script>; copied to OUT/figures/ and shown as images. */
typedef struct lb_figures {
    size_t n;
    char **names, **data;
    size_t *len;
} lb_figures;
int lb_figures_load(const char *dir, lb_figures *out, pg_error *err);
void lb_figures_free(lb_figures *f);

/* Builds the page and the Markdown from validated entries (caller frees);
 * the _figures variants add the figures section (figs may be NULL). */
int lb_render_html(const lb_entry_list *entries, lb_buf *out, pg_error *err);
int lb_render_markdown(const lb_entry_list *entries, lb_buf *out, pg_error *err);
int lb_render_html_figures(const lb_entry_list *entries, const lb_figures *figs, lb_buf *out,
                           pg_error *err);
int lb_render_markdown_figures(const lb_entry_list *entries, const lb_figures *figs,
                               lb_buf *out, pg_error *err);
/* Writes <dir>/index.html and <dir>/leaderboard.md atomically. */
int lb_render_site(const lb_entry_list *entries, const char *dir, pg_error *err);
int lb_render_site_figures(const lb_entry_list *entries, const lb_figures *figs,
                           const char *dir, pg_error *err);

#endif
