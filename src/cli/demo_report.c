/* demo_report.c: `hswarm demo --report FILE.html`: one self-contained page (no network: inline
 * CSS, data and script) with the demo's charts, drawn on canvases by a small script:
 *   1. accuracy against team size (1, 2, 5, 10, 20 agents): single attempts (sampled), plain
 *      vote, verified (one round), verified with retries;
 *   2. accuracy against retry rounds, one line per team size;
 *   3. throughput (tokens/s and model calls/s) over the main run;
 *   4. KV cache in use over the main run.
 * When every chart is drawn the script sets data-charts-drawn on <body> to their number, which
 * the test reads back from headless Chromium's DOM. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/demo.h"

static double ratio(json_t *s, const char *num, const char *den) {
  double d = (double)json_integer_value(json_object_get(s, den));
  return d > 0 ? (double)json_integer_value(json_object_get(s, num)) / d : 0;
}

/* The page's data as one JSON object: {sizes, rounds, main, series}. */
static char *report_data(const demo_opts *o, const demo_outcome *m, const demo_point *sweep,
                         size_t n, uint64_t sweep_tasks) {
  json_t *root = json_object(), *sizes = json_array(), *series = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *s = sweep[i].swarm, *byr = json_array(), *rr = json_object_get(s, "right_by_round");
    for (size_t r = 0; r < json_array_size(rr); r++)
      json_array_append_new(byr, json_real((double)json_integer_value(json_array_get(rr, r)) /
                                           (double)sweep_tasks));
    json_array_append_new(
        sizes, json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:o}", "team", (json_int_t)sweep[i].team,
                         "single", ratio(s, "sampled_right", "sampled_total"), "vote",
                         ratio(s, "vote_right", "tasks"), "verified",
                         ratio(s, "verified_right", "tasks"), "final",
                         ratio(s, "final_right", "tasks"), "greedy",
                         ratio(s, "greedy_right", "tasks"), "by_round", byr));
  }
  for (size_t i = 0; i < m->n_series; i++)
    json_array_append_new(series, json_pack("[f, f, f, f]", m->series[i].t,
                                            m->series[i].tokens_per_s,
                                            m->series[i].inferences_per_s, m->series[i].kv_mib));
  json_object_set_new(root, "sizes", sizes);
  json_object_set_new(root, "series", series);
  json_object_set_new(root, "sweep_tasks", json_integer((json_int_t)sweep_tasks));
  json_object_set_new(root, "rounds", json_integer((json_int_t)o->rounds));
  json_object_set(root, "main", m->swarm);
  json_object_set_new(root, "wall", json_real(m->wall));
  json_object_set_new(root, "calls", json_integer((json_int_t)m->mt.finished));
  json_object_set_new(root, "hit", json_real(m->mt.prefix_hit_ratio));
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}

static const char PAGE_HEAD[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>hswarm demo report</title>\n<style>\n"
    "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}\n"
    "h1{font-size:1.5em} h2{font-size:1.1em;margin-top:1.6em} canvas{border:1px solid #ddd}\n"
    "table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #eee;"
    "text-align:right} th:first-child,td:first-child{text-align:left}\n"
    ".note{color:#666;font-size:.9em}\n</style></head>\n<body>\n"
    "<h1>hswarm demo: micro-swarms against single attempts</h1>\n"
    "<p id=\"summary\"></p>\n<table id=\"table\"></table>\n"
    "<h2>Accuracy against team size</h2><canvas id=\"c_size\" width=\"900\" height=\"320\">"
    "</canvas>\n<h2>Accuracy against retry rounds</h2><canvas id=\"c_rounds\" width=\"900\" "
    "height=\"320\"></canvas>\n<h2>Throughput over the run</h2><canvas id=\"c_tput\" "
    "width=\"900\" height=\"260\"></canvas>\n<h2>KV cache in use over the run</h2>"
    "<canvas id=\"c_kv\" width=\"900\" height=\"220\"></canvas>\n"
    "<p class=\"note\">Accuracy is graded on hidden inputs the agents never see. The team-size "
    "sweep reruns the first tasks of the run with each team size.</p>\n<script>\nconst D = ";

static const char PAGE_SCRIPT[] =
    ";\nconst COLORS = ['#1b6ca8', '#d1495b', '#edae49', '#00798c', '#66a182', '#8d6a9f'];\n"
    "function chart(id, xs, lines, o) {\n"
    "  const c = document.getElementById(id), g = c.getContext('2d');\n"
    "  const W = c.width, H = c.height, L = 60, R = 150, T = 15, B = 40;\n"
    "  let ymax = o.ymax || 0;\n"
    "  if (!ymax) for (const l of lines) for (const v of l.ys) ymax = Math.max(ymax, v);\n"
    "  ymax = ymax || 1;\n"
    "  const x0 = Math.min(...xs), x1 = Math.max(...xs);\n"
    "  const px = x => o.cat ? L + (xs.indexOf(x) + 0.5) * (W - L - R) / xs.length\n"
    "                       : L + (x - x0) / ((x1 - x0) || 1) * (W - L - R);\n"
    "  const py = y => H - B - y / ymax * (H - T - B);\n"
    "  g.fillStyle = '#fff'; g.fillRect(0, 0, W, H);\n"
    "  g.strokeStyle = '#999'; g.beginPath(); g.moveTo(L, T); g.lineTo(L, H - B);\n"
    "  g.lineTo(W - R, H - B); g.stroke();\n"
    "  g.fillStyle = '#444'; g.font = '12px sans-serif';\n"
    "  for (let k = 0; k <= 4; k++) { const v = ymax * k / 4;\n"
    "    g.fillText(o.pct ? Math.round(v * 100) + '%' : v.toFixed(v < 10 ? 1 : 0), 8, py(v) + 4);\n"
    "    g.strokeStyle = '#eee'; g.beginPath(); g.moveTo(L, py(v)); g.lineTo(W - R, py(v));\n"
    "    g.stroke(); }\n"
    "  const ticks = o.cat ? xs : [x0, (x0 + x1) / 2, x1];\n"
    "  for (const x of ticks) g.fillText(o.cat ? String(x) : x.toFixed(1), px(x) - 8, H - B + 16);\n"
    "  g.fillText(o.xlabel, (W - R) / 2, H - 6);\n"
    "  lines.forEach((l, i) => {\n"
    "    g.strokeStyle = g.fillStyle = COLORS[i % COLORS.length]; g.lineWidth = 2; g.beginPath();\n"
    "    l.ys.forEach((y, k) => { const X = px(xs[k]), Y = py(y);\n"
    "      if (k) g.lineTo(X, Y); else g.moveTo(X, Y); });\n"
    "    g.stroke();\n"
    "    if (o.cat) l.ys.forEach((y, k) => { g.beginPath(); g.arc(px(xs[k]), py(y), 3, 0, 7);\n"
    "      g.fill(); });\n"
    "    g.fillText(l.name, W - R + 10, T + 14 + 18 * i); g.lineWidth = 1; });\n"
    "  return lines.length > 0 && xs.length > 0;\n"
    "}\n"
    "const pc = v => (100 * v).toFixed(1) + '%';\n"
    "const S = D.sizes, M = D.main;\n"
    "document.getElementById('summary').textContent = M.tasks + ' held-out tasks, teams of ' +\n"
    "  M.team_size + ', up to ' + M.rounds + ' rounds, temperature ' + M.temperature + ': ' +\n"
    "  D.calls + ' model calls in ' + D.wall.toFixed(1) + ' s (' + (D.calls / D.wall).toFixed(0)\n"
    "  + ' per second), prefix reuse ' + pc(D.hit) + '.';\n"
    "const rows = [['single agent, greedy', M.greedy_right / M.tasks],\n"
    "  ['single agent, sampled', M.sampled_right / M.sampled_total],\n"
    "  ['team, plain vote', M.vote_right / M.tasks],\n"
    "  ['team, verified (one round)', M.verified_right / M.tasks],\n"
    "  ['team, verified, with retries', M.final_right / M.tasks]];\n"
    "document.getElementById('table').innerHTML = '<tr><th>answered right</th><th>accuracy</th>"
    "</tr>' +\n"
    "  rows.map(r => '<tr><td>' + r[0] + '</td><td>' + pc(r[1]) + '</td></tr>').join('');\n"
    "let drawn = 0;\n"
    "const teams = S.map(s => s.team);\n"
    "drawn += chart('c_size', teams, [\n"
    "  {name: 'verified + retries', ys: S.map(s => s.final)},\n"
    "  {name: 'verified, 1 round', ys: S.map(s => s.verified)},\n"
    "  {name: 'plain vote', ys: S.map(s => s.vote)},\n"
    "  {name: 'single, sampled', ys: S.map(s => s.single)}],\n"
    "  {cat: true, pct: true, ymax: 1, xlabel: 'agents per team (first ' + D.sweep_tasks + ' tasks)'}) ? 1 : 0;\n"
    "const rounds = Array.from({length: D.rounds}, (_, i) => i + 1);\n"
    "drawn += chart('c_rounds', rounds, S.map(s => ({name: 'team of ' + s.team, ys: s.by_round})),\n"
    "  {cat: true, pct: true, ymax: 1, xlabel: 'rounds allowed'}) ? 1 : 0;\n"
    "const ts = D.series.map(p => p[0]);\n"
    "drawn += chart('c_tput', ts, [{name: 'tokens/s', ys: D.series.map(p => p[1])},\n"
    "  {name: 'calls/s x 10', ys: D.series.map(p => 10 * p[2])}], {xlabel: 'seconds'}) ? 1 : 0;\n"
    "drawn += chart('c_kv', ts, [{name: 'KV MiB', ys: D.series.map(p => p[3])}],\n"
    "  {xlabel: 'seconds'}) ? 1 : 0;\n"
    "document.body.setAttribute('data-charts-drawn', String(drawn));\n"
    "</script>\n</body></html>\n";

int demo_report_write(const char *path, const demo_opts *o, const demo_outcome *main_run,
                      const demo_point *sweep, size_t n_sweep, uint64_t sweep_tasks) {
  char *data = report_data(o, main_run, sweep, n_sweep, sweep_tasks);
  FILE *f = data ? fopen(path, "w") : NULL;
  if (!f) {
    free(data);
    cli_fail("demo: cannot write the report %s", path);
    return -1;
  }
  /* "</" cannot occur in the data: jansson escapes "/" only on request, so do it here */
  fputs(PAGE_HEAD, f);
  for (const char *p = data; *p; p++) {
    if (p[0] == '<' && p[1] == '/') fputs("<\\", f);
    else fputc(*p, f);
  }
  fputs(PAGE_SCRIPT, f);
  free(data);
  if (fclose(f) != 0) {
    cli_fail("demo: cannot write the report %s", path);
    return -1;
  }
  return 0;
}
