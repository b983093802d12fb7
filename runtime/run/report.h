// report.h: `kdtrain report RUN_DIR` (docs/observe.md): one self-contained HTML page about a
// run (inline CSS and SVG, no script, nothing fetched: a Content-Security-Policy forbids
// it): the stages as a timeline (status, steps, wall time, checkpoints), what is missing or
// damaged, the eval stages side by side, one plot per training stage (its curves and the
// held-out points; KD's KL and CE, DPO's rewards), and each stage's hardware and
// throughput. report.c lays out the page from run_read.h's reading; report_svg.c draws.
#pragma once
#include <stdio.h>

#include "runtime/base/common.h"
#include "runtime/run/run_read.h"

// Writes the report of run_dir to out (NULL: RUN_DIR/report.html) atomically; the path
// written in written[n]. KD_EINPUT if run_dir is not a run directory, KD_ERUNTIME if the
// file cannot be written. Damaged or missing parts are reported on the page, not as errors.
int kd_run_report(const char *run_dir, const char *out, char *written, size_t n, kd_error *err);

// ----------------------------------------------------------------------------- report_svg.c

// One curve of a plot: y[i] at x[i] (NaN: a gap); markers: points instead of a line.
typedef struct {
    const char *name;
    const double *x, *y;
    int n, stride; // y[i * stride]
    int markers;
} kd_svg_series;

// An SVG line plot, w x h pixels: axes with ticks outside the plot area (a white
// <rect class="area">, which holds only the data), and a legend under it.
void kd_svg_plot(FILE *f, const char *title, const char *xlabel, const kd_svg_series *s, int n, int w, int h);
// A horizontal bar: done of total filled (color by state), a tick at mark (< 0: none).
void kd_svg_bar(FILE *f, double done, double total, double mark, const char *color);
// text with &, <, >, " escaped.
void kd_html_text(FILE *f, const char *s);
