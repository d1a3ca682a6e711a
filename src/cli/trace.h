/* trace.h: a timeline in the Chrome trace-event format (trace.c), written as one JSON file that
 * Perfetto (ui.perfetto.dev) and chrome://tracing load. Events are kept in memory and written at
 * the end; times are microseconds from cli_trace_init. Tracks ("threads") are numbered; name
 * them with cli_trace_track_name. */
#ifndef HS_CLI_TRACE_H
#define HS_CLI_TRACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_trace_event {
  double ts_us, dur_us;  /* dur_us < 0: a begin ("B") or end ("E") event, see ph */
  char ph;               /* 'B', 'E', 'X' */
  uint32_t track;
  char name[32];
  char args[96];         /* a JSON object's members ("running":3,...) or "" */
} cli_trace_event;

typedef struct cli_trace {
  double t0;
  cli_trace_event *ev;
  size_t n, cap;
  char (*track_names)[32];
  uint32_t n_tracks;
} cli_trace;

void cli_trace_init(cli_trace *t);
double cli_trace_now(const cli_trace *t); /* microseconds since init */
/* ph 'B' or 'E' at now, or 'X' from ts_us lasting dur_us. Out of memory drops the event. */
void cli_trace_add(cli_trace *t, char ph, uint32_t track, const char *name, double ts_us,
                   double dur_us, const char *args);
void cli_trace_track_name(cli_trace *t, uint32_t track, const char *name);
/* Writes the file; 0, or -1 after cli_fail. */
int cli_trace_write(const cli_trace *t, const char *path);
void cli_trace_free(cli_trace *t);

#endif
