/* svg_plot.c - see svg_plot.h. */
#include "common/svg_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"

/* Colour-blind-safe palette (Okabe-Ito). */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#F0E442", "#000000"};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

enum { MARGIN_L = 78, MARGIN_R = 24, MARGIN_T = 44, MARGIN_B = 64 };

static void put_escaped(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            /* control characters are not allowed in XML 1.0 text */
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

typedef struct axis {
    double lo, hi; /* data range after padding / rounding (log10 values for log axes) */
    int log;
} axis;

/* A "nice" step (1, 2 or 5 times a power of ten) for about n ticks. */
static double nice_step(double span, int n)
{
    double raw = span / n, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

static void axis_fit(axis *a, double lo, double hi, int log_scale, int from_zero)
{
    a->log = log_scale;
    if (log_scale) {
        lo = log10(lo);
        hi = log10(hi);
        a->lo = floor(lo * 10.0) / 10.0;
        a->hi = ceil(hi * 10.0) / 10.0;
    } else {
        if (from_zero && lo > 0)
            lo = 0;
        double step = nice_step(hi > lo ? hi - lo : fabs(hi) + 1.0, 5);
        a->lo = floor(lo / step) * step;
        a->hi = ceil(hi / step) * step;
    }
    if (!(a->hi > a->lo)) {
        a->lo -= 0.5;
        a->hi += 0.5;
    }
}

static double axis_pos(const axis *a, double v, double p0, double p1)
{
    double t = a->log ? log10(v) : v;
    return p0 + (t - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

static void fmt_tick(char *buf, size_t cap, double v)
{
    double av = fabs(v);
    if (av != 0 && (av >= 1e6 || av < 1e-3))
        snprintf(buf, cap, "%.3g", v);
    else if (av >= 100 || v == floor(v))
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%.3g", v);
}

static void header(FILE *f, const pg_plot *p, int W, int H)
{
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    put_escaped(f, p->title);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (MARGIN_L + W - MARGIN_R) / 2,
            H - 14);
    put_escaped(f, p->x_label);
    fputs("</text>\n", f);
    fprintf(f, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\">",
            (MARGIN_T + H - MARGIN_B) / 2);
    put_escaped(f, p->y_label);
    fputs("</text>\n", f);
}

/* y grid lines and labels; x0..x1 the plot's pixel extent. */
static void y_axis(FILE *f, const axis *a, int x0, int x1, int y0, int y1)
{
    if (a->log) {
        for (double e = floor(a->lo); e <= ceil(a->hi); e += 1.0)
            for (int m = 1; m < 10; m++) {
                double v = m * pow(10.0, e), t = log10(v);
                if (t < a->lo - 1e-9 || t > a->hi + 1e-9)
                    continue;
                double y = axis_pos(a, v, y0, y1);
                fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                        x0, x1, y, y, m == 1 ? "#bbb" : "#eee");
                if (m == 1 || m == 2 || m == 5) {
                    char b[32];
                    fmt_tick(b, sizeof b, v);
                    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                            x0 - 6, y + 4, b);
                }
            }
        return;
    }
    double step = nice_step(a->hi - a->lo, 5);
    for (double v = a->lo; v <= a->hi + step * 1e-6; v += step) {
        double y = axis_pos(a, v, y0, y1);
        char b[32];
        fmt_tick(b, sizeof b, fabs(v) < step * 1e-9 ? 0.0 : v);
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                x0, x1, y, y, x0 - 6, y + 4, b);
    }
}

static void legend(FILE *f, const pg_plot_series *s, int n, int x, int y, int bars)
{
    for (int i = 0; i < n; i++) {
        const char *c = palette[i % N_PALETTE];
        int yy = y + 16 * i;
        if (bars)
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"10\" fill=\"%s\"/>\n", x,
                    yy - 9, c);
        else
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" "
                       "stroke-width=\"2\"/>\n",
                    x, x + 14, yy - 4, yy - 4, c);
        fprintf(f, "<text x=\"%d\" y=\"%d\">", x + 18, yy);
        put_escaped(f, s[i].label);
        fputs("</text>\n", f);
    }
}

/* Closes the memory stream (which sets *buf and *len) and writes the file. */
static int finish(FILE *f, char **buf, size_t *len, const char *path, pg_error *err)
{
    int rc = fclose(f);
    if (rc != 0 || !*buf) {
        free(*buf);
        return pg_fail(err, PG_ENOMEM, "%s: cannot build the chart", path);
    }
    rc = pg_write_file_atomic(path, *buf, *len, err);
    free(*buf);
    return rc;
}

static int usable(double v, int log_scale)
{
    return isfinite(v) && (!log_scale || v > 0);
}

int pg_svg_lines(const char *path, const pg_plot *p, const pg_plot_series *s, int n_series,
                 pg_error *err)
{
    int W = p->width > 0 ? p->width : 720, H = p->height > 0 ? p->height : 420;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n_series; i++)
        for (int k = 0; k < s[i].n; k++) {
            double x = s[i].x ? s[i].x[k] : k, y = s[i].y[k];
            if (!isfinite(x) || !usable(y, p->log_y))
                continue;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y);
            yhi = fmax(yhi, y);
        }
    for (int b = 0; b < p->n_bands; b++) {
        xlo = fmin(xlo, p->band_x0[b]);
        xhi = fmax(xhi, p->band_x1[b]);
    }
    if (!(xhi >= xlo) || !(yhi >= ylo))
        return pg_fail(err, PG_EINVAL, "%s: nothing to plot (no finite points)", path);
    axis ax, ay;
    ax.log = 0;
    ax.lo = xlo;
    ax.hi = xhi > xlo ? xhi : xlo + 1;
    axis_fit(&ay, ylo, yhi, p->log_y, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    int x0 = MARGIN_L, x1 = W - MARGIN_R, y0 = H - MARGIN_B, y1 = MARGIN_T;
    header(f, p, W, H);
    for (int b = 0; b < p->n_bands; b++) {
        double bx0 = axis_pos(&ax, p->band_x0[b], x0, x1), bx1 = axis_pos(&ax, p->band_x1[b], x0, x1);
        fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\" "
                   "opacity=\"0.35\"/>\n<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" "
                   "fill=\"#555\">",
                bx0, y1, bx1 - bx0, y0 - y1, b % 2 ? "#e8e8e8" : "#d8e6f3", (bx0 + bx1) / 2,
                y1 + 14);
        put_escaped(f, p->band_label ? p->band_label[b] : "");
        fputs("</text>\n", f);
    }
    y_axis(f, &ay, x0, x1, y0, y1);
    double xs = nice_step(ax.hi - ax.lo, 6);
    for (double v = ceil(ax.lo / xs) * xs; v <= ax.hi + xs * 1e-6; v += xs) {
        double x = axis_pos(&ax, v, x0, x1);
        char b[32];
        fmt_tick(b, sizeof b, fabs(v) < xs * 1e-9 ? 0.0 : v);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                x, x, y0, y0 + 5, x, y0 + 18, b);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#444\"/>\n",
            x0, y1, x1 - x0, y0 - y1);
    for (int i = 0; i < n_series; i++) {
        const char *c = palette[i % N_PALETTE];
        int open = 0, pts = 0;
        for (int k = 0; k < s[i].n; k++) {
            double x = s[i].x ? s[i].x[k] : k, y = s[i].y[k];
            if (!isfinite(x) || !usable(y, p->log_y)) {
                if (open)
                    fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", c);
                open = 0;
                continue;
            }
            if (!open)
                fputs("<polyline points=\"", f);
            fprintf(f, "%s%.1f,%.1f", open ? " " : "", axis_pos(&ax, x, x0, x1),
                    axis_pos(&ay, y, y0, y1));
            open = 1;
            pts++;
        }
        if (open)
            fprintf(f, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\"/>\n", c);
        if (pts <= 24) /* few points: mark them */
            for (int k = 0; k < s[i].n; k++) {
                double x = s[i].x ? s[i].x[k] : k, y = s[i].y[k];
                if (isfinite(x) && usable(y, p->log_y))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            axis_pos(&ax, x, x0, x1), axis_pos(&ay, y, y0, y1), c);
            }
    }
    legend(f, s, n_series, x1 - 190, y1 + 34, 0);
    fputs("</svg>\n", f);
    return finish(f, &buf, &len, path, err);
}

int pg_svg_bars(const char *path, const pg_plot *p, const char *const *groups, int n_groups,
                const pg_plot_series *s, int n_series, pg_error *err)
{
    int W = p->width > 0 ? p->width : 720, H = p->height > 0 ? p->height : 420;
    double ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n_series; i++) {
        if (s[i].n != n_groups)
            return pg_fail(err, PG_EINVAL, "%s: series %d has %d values for %d groups", path, i,
                           s[i].n, n_groups);
        for (int g = 0; g < n_groups; g++)
            if (usable(s[i].y[g], p->log_y)) {
                ylo = fmin(ylo, s[i].y[g]);
                yhi = fmax(yhi, s[i].y[g]);
            }
    }
    if (!(yhi >= ylo) || n_groups < 1 || n_series < 1)
        return pg_fail(err, PG_EINVAL, "%s: nothing to plot (no finite values)", path);
    axis ay;
    axis_fit(&ay, ylo, yhi, p->log_y, 1);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    int x0 = MARGIN_L, x1 = W - MARGIN_R, y0 = H - MARGIN_B, y1 = MARGIN_T;
    header(f, p, W, H);
    y_axis(f, &ay, x0, x1, y0, y1);
    double gw = (double)(x1 - x0) / n_groups, bw = gw * 0.8 / n_series;
    double base = ay.log ? y0 : axis_pos(&ay, 0.0, y0, y1);
    for (int g = 0; g < n_groups; g++) {
        double gx = x0 + g * gw + gw * 0.1;
        for (int i = 0; i < n_series; i++) {
            double v = s[i].y[g];
            if (!usable(v, p->log_y))
                continue;
            double y = axis_pos(&ay, v, y0, y1), top = fmin(y, base), h = fabs(base - y);
            char b[32];
            fmt_tick(b, sizeof b, v);
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                       "fill=\"%s\"><title>%s</title></rect>\n"
                       "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%s"
                       "</text>\n",
                    gx + i * bw, top, bw * 0.92, h, palette[i % N_PALETTE], b,
                    gx + i * bw + bw * 0.46, top - 3, b);
        }
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", x0 + (g + 0.5) * gw,
                y0 + 18);
        put_escaped(f, groups[g]);
        fputs("</text>\n", f);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
               "stroke=\"#444\"/>\n",
            x0, y1, x1 - x0, y0 - y1);
    legend(f, s, n_series, x0 + 12, y1 + 18, 1);
    fputs("</svg>\n", f);
    return finish(f, &buf, &len, path, err);
}
