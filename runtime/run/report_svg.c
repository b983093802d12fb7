// report_svg.c: the drawings of `kdtrain report` (report.h): line plots with axes, ticks and
// a legend, progress bars, and HTML escaping. Plain SVG elements only, sized in pixels, so
// the page needs no script and no font but the browser's own.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/run/report.h"

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
#define N_COLORS 10

void kd_html_text(FILE *f, const char *s) {
    for (; s && *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about n ticks over span.
static double nice_step(double span, int n) {
    double raw = span / n, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

// The range of the finite values of all series along x (axis 0) or y (axis 1), padded so
// that a flat curve or a single point still has a range.
static void range(const kd_svg_series *s, int n, int axis, double *lo, double *hi) {
    *lo = INFINITY, *hi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k].n; i++) {
            double v = axis ? s[k].y[(size_t)i * (size_t)s[k].stride] : s[k].x[i];
            if (!isfinite(v)) continue;
            if (v < *lo) *lo = v;
            if (v > *hi) *hi = v;
        }
    if (!isfinite(*lo)) *lo = 0, *hi = 1;
    if (*hi - *lo < 1e-12 * (fabs(*hi) + 1)) {
        double pad = fabs(*hi) > 0 ? fabs(*hi) * 0.1 : 1;
        *lo -= pad, *hi += pad;
    } else { // a margin, so points on the edge are whole
        double pad = (axis ? 0.05 : 0.02) * (*hi - *lo);
        *lo -= pad, *hi += pad;
    }
}

typedef struct {
    double x0, x1, y0, y1; // data range
    double L, T, W, H;     // plot area in pixels
} frame;

static double px(const frame *fr, double x) { return fr->L + (x - fr->x0) / (fr->x1 - fr->x0) * fr->W; }
static double py(const frame *fr, double y) { return fr->T + fr->H - (y - fr->y0) / (fr->y1 - fr->y0) * fr->H; }

static void axes(FILE *f, const frame *fr, const char *xlabel) {
    fprintf(f, "<rect class=\"area\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\" "
               "stroke=\"#444\" stroke-width=\"1\"/>\n", fr->L, fr->T, fr->W, fr->H);
    double dy = nice_step(fr->y1 - fr->y0, 4), dx = nice_step(fr->x1 - fr->x0, 5);
    for (double v = ceil(fr->y0 / dy) * dy; v <= fr->y1 + 1e-9 * dy; v += dy) {
        double y = py(fr, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>", fr->L - 5, y, fr->L, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.4g</text>\n", fr->L - 7,
                y + 4, fabs(v) < 1e-9 * dy ? 0.0 : v);
    }
    for (double v = ceil(fr->x0 / dx) * dx; v <= fr->x1 + 1e-9 * dx; v += dx) {
        double x = px(fr, v), yb = fr->T + fr->H;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>", x, yb, x, yb + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%.6g</text>\n", x,
                yb + 17, v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">", fr->L + fr->W / 2,
            fr->T + fr->H + 31);
    kd_html_text(f, xlabel);
    fprintf(f, "</text>\n");
}

// One series: polylines between gaps, or circles; single points of a line get a circle too.
static void curve(FILE *f, const frame *fr, const kd_svg_series *s, const char *color) {
    int open = 0;
    for (int i = 0; i < s->n; i++) {
        double x = s->x[i], y = s->y[(size_t)i * (size_t)s->stride];
        int ok = isfinite(x) && isfinite(y);
        double ny = i + 1 < s->n ? s->y[(size_t)(i + 1) * (size_t)s->stride] : NAN;
        int alone = ok && !open && !isfinite(ny);
        if (ok && (s->markers || alone)) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", px(fr, x), py(fr, y), color);
            continue;
        }
        if (ok && !open) fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", color), open = 1;
        if (ok) fprintf(f, "%.1f,%.1f ", px(fr, x), py(fr, y));
        if (open && (!ok || i + 1 == s->n)) fprintf(f, "\"/>\n"), open = 0;
    }
}

void kd_svg_plot(FILE *f, const char *title, const char *xlabel, const kd_svg_series *s, int n, int w, int h) {
    int legend_rows = (n + 2) / 3;
    frame fr = {.L = 64, .T = 26, .W = w - 64 - 16, .H = h - 26 - 40};
    range(s, n, 0, &fr.x0, &fr.x1);
    range(s, n, 1, &fr.y0, &fr.y1);
    fprintf(f, "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\">\n", w, h + 18 * legend_rows);
    fprintf(f, "<text x=\"%.1f\" y=\"16\" font-size=\"13\" font-weight=\"bold\">", fr.L);
    kd_html_text(f, title);
    fprintf(f, "</text>\n");
    axes(f, &fr, xlabel);
    for (int k = 0; k < n; k++) curve(f, &fr, &s[k], colors[k % N_COLORS]);
    for (int k = 0; k < n; k++) { // legend: three entries a row, under the plot
        double lx = fr.L + (double)(k % 3) * (fr.W / 3), ly = h + 18.0 * (k / 3) + 4;
        if (s[k].markers)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>", lx + 9, ly, colors[k % N_COLORS]);
        else
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>", lx,
                    ly, lx + 18, ly, colors[k % N_COLORS]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\">", lx + 24, ly + 4);
        kd_html_text(f, s[k].name);
        fprintf(f, "</text>\n");
    }
    fprintf(f, "</svg>\n");
}

void kd_svg_bar(FILE *f, double done, double total, double mark, const char *color) {
    const double W = 200;
    double frac = total > 0 ? done / total : 0;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    fprintf(f, "<svg class=\"bar\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"14\">"
               "<rect x=\"0\" y=\"2\" width=\"%.0f\" height=\"10\" fill=\"#e6e6e6\"/>"
               "<rect x=\"0\" y=\"2\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>", W, W, W * frac, color);
    if (mark >= 0 && total > 0)
        fprintf(f, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"14\" stroke=\"#000\" stroke-width=\"2\"/>",
                W * (mark / total > 1 ? 1 : mark / total), W * (mark / total > 1 ? 1 : mark / total));
    fprintf(f, "</svg>");
}
