/* cmd_log.c: `hswarm log LOG`: prints an event log, one record per line (header first). A log cut
 * short by a crash prints up to its last whole record and says so; a corrupt record is an error
 * naming its number and offset. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "hswarm/eventlog.h"

int cmd_log(int argc, char **argv) {
  if (argc != 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: hswarm log LOG\n");
    return argc == 2 && !strcmp(argv[1], "--help") ? 0 : EXIT_USAGE;
  }
  hs_eventlog_reader *r;
  hs_rec_header h;
  if (hs_eventlog_reader_open(argv[1], &r, &h) != 0) {
    fprintf(stderr, "hswarm log: %s\n", hs_eventlog_last_error());
    return EXIT_ERROR;
  }
  hs_record rec = {.type = HS_REC_HEADER};
  rec.u.header = h;
  char line[1024];
  printf("0 %s\n", hs_record_describe(&rec, line, sizeof line));
  int rc;
  while ((rc = hs_eventlog_reader_next(r, &rec)) > 0)
    printf("%llu %s\n", (unsigned long long)hs_eventlog_reader_index(r),
           hs_record_describe(&rec, line, sizeof line));
  int status = 0;
  if (rc < 0) {
    fprintf(stderr, "hswarm log: %s\n", hs_eventlog_last_error());
    status = EXIT_ERROR;
  } else if (hs_eventlog_reader_truncated(r)) {
    fprintf(stderr, "hswarm log: %s\n", hs_eventlog_last_error());
    printf("(truncated: the log ends inside a record)\n");
  }
  hs_eventlog_reader_close(r);
  return status;
}
