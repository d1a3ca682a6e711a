/* trace.c: a timeline in the Chrome trace-event format (trace.h). */
#include "cli/trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_trace_init(cli_trace *t) {
  memset(t, 0, sizeof *t);
  t->t0 = cli_seconds();
}

double cli_trace_now(const cli_trace *t) { return (cli_seconds() - t->t0) * 1e6; }

void cli_trace_add(cli_trace *t, char ph, uint32_t track, const char *name, double ts_us,
                   double dur_us, const char *args) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 1024;
    cli_trace_event *p = realloc(t->ev, cap * sizeof *p);
    if (!p) return;
    t->ev = p;
    t->cap = cap;
  }
  cli_trace_event *e = &t->ev[t->n++];
  e->ph = ph;
  e->track = track;
  e->ts_us = ph == 'X' ? ts_us : cli_trace_now(t);
  e->dur_us = ph == 'X' ? dur_us : -1;
  snprintf(e->name, sizeof e->name, "%s", name);
  snprintf(e->args, sizeof e->args, "%s", args ? args : "");
}

void cli_trace_track_name(cli_trace *t, uint32_t track, const char *name) {
  if (track >= t->n_tracks) {
    uint32_t n = track + 1 > 2 * t->n_tracks ? track + 1 : 2 * t->n_tracks;
    char(*p)[32] = realloc(t->track_names, n * sizeof *p);
    if (!p) return;
    memset(p + t->n_tracks, 0, (n - t->n_tracks) * sizeof *p);
    t->track_names = p;
    t->n_tracks = n;
  }
  snprintf(t->track_names[track], sizeof t->track_names[track], "%s", name);
}

int cli_trace_write(const cli_trace *t, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    cli_fail("cannot write the trace %s", path);
    return -1;
  }
  fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f);
  fputs("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"hswarm\"}}", f);
  for (uint32_t i = 0; i < t->n_tracks; i++)
    if (t->track_names[i][0]) {
      fprintf(f, ",\n{\"ph\":\"M\",\"pid\":1,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":",
              i);
      cli_json_string(f, t->track_names[i]);
      fprintf(f, "}}");
    }
  for (size_t i = 0; i < t->n; i++) {
    const cli_trace_event *e = &t->ev[i];
    fprintf(f, ",\n{\"ph\":\"%c\",\"pid\":1,\"tid\":%u,\"ts\":%.1f,", e->ph, e->track, e->ts_us);
    if (e->ph == 'X') fprintf(f, "\"dur\":%.1f,", e->dur_us);
    fputs("\"name\":", f);
    cli_json_string(f, e->name);
    fprintf(f, ",\"args\":{%s}}", e->args);
  }
  fputs("\n]}\n", f);
  if (fclose(f) != 0) {
    cli_fail("cannot write the trace %s", path);
    return -1;
  }
  return 0;
}

void cli_trace_free(cli_trace *t) {
  free(t->ev);
  free(t->track_names);
  memset(t, 0, sizeof *t);
}
