/* svg_plot.h - small, dependency-free SVG charts for reports people look at.
 *
 * Two chart kinds cover what the tools draw: line charts (loss curves,
 * perplexity against attention span, attention weight by memory position,
 * reading distance over a book) and grouped bar charts (perplexity per
 * rare-word bucket for several models). The output is a standalone SVG 1.1
 * file with its own white background and a legend, readable in any browser
 * and embeddable in Markdown; text is XML-escaped; non-finite points are
 * skipped (a gap in a line). The file is written crash-safe
 * (common/atomic_file.h).
 */
#ifndef PG19_SVG_PLOT_H
#define PG19_SVG_PLOT_H

#include "common/error.h"

typedef struct pg_plot_series {
    const char *label;
    const double *x; /* line charts: n x values (NULL: 0, 1, ..., n-1) */
    const double *y; /* n values; bar charts: one per group */
    int n;
} pg_plot_series;

typedef struct pg_plot {
    const char *title, *x_label, *y_label;
    int log_y;                /* logarithmic y axis (values <= 0 skipped) */
    int width, height;        /* pixels; 0 = 720 x 420 */
    /* shaded x ranges with a caption (e.g. "compressed memory"), optional */
    int n_bands;
    const double *band_x0, *band_x1;
    const char *const *band_label;
} pg_plot;

int pg_svg_lines(const char *path, const pg_plot *p, const pg_plot_series *s, int n_series,
                 pg_error *err);
/* groups[g] names the g-th group of bars; series[i].y[g] is bar i of group g
 * (series[i].n must equal n_groups). */
int pg_svg_bars(const char *path, const pg_plot *p, const char *const *groups, int n_groups,
                const pg_plot_series *s, int n_series, pg_error *err);

#endif
