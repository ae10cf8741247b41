/* params-man.c - prints postern-main.cf(5) from the parameter table, so
 * the manual page can never disagree with the code (built at build time,
 * not installed). */
#include <stdio.h>
#include <string.h>

#include "params.h"

/* Writes text with roff's special characters escaped. */
static void
roff_escape(const char *text)
{
  for (const char *p = text; *p; p++) {
    if (*p == '\\')
      fputs("\\e", stdout);
    else if (*p == '-')
      fputs("\\-", stdout);
    else if ((*p == '.' || *p == '\'') && (p == text || p[-1] == '\n'))
      printf("\\&%c", *p);
    else
      putchar(*p);
  }
}

int
main(int argc, char **argv)
{
  gsize n;
  const ParamDef *defs = param_table(&n);
  const char *version = argc > 1 ? argv[1] : "";

  printf(".TH POSTERN-MAIN.CF 5 \"\" \"Postern %s\" \"Postern mail system\"\n", version);
  puts(".SH NAME\npostern-main.cf \\- Postern configuration parameters");
  puts(".SH SYNOPSIS\n.I /etc/postern/main.cf\n.br\n.I /etc/postern/conf.d/*.cf");
  puts(".SH DESCRIPTION\n"
       "The configuration uses Postfix's main.cf syntax: \\fIname\\fR = \\fIvalue\\fR, "
       "a line that starts with white space continues the previous one, lines "
       "starting with # are comments, and \\fB$name\\fR, \\fB${name}\\fR, "
       "\\fB${name?value}\\fR and \\fB${name:value}\\fR expand other parameters. "
       "main.cf is read first, then conf.d/*.cf in lexical order; later settings win; "
       "a daemon's \\fB\\-o\\fR \\fIname\\fR=\\fIvalue\\fR options win over both. "
       "An error names the file and line; an unknown name is a warning.\n"
       ".PP\n"
       "Names, meanings and defaults follow Postfix; where Postern's default is "
       "safer it says so in docs/configuration.md. Times take a unit "
       "(s, m, h, d, w); a bare number uses the unit shown. Lists are separated "
       "by commas and/or white space.");
  puts(".SH PARAMETERS");
  for (gsize i = 0; i < n; i++) {
    const ParamDef *d = &defs[i];
    printf(".TP\n.B ");
    roff_escape(d->name);
    printf("\n(%s", param_type_name(d->type));
    if (d->type == PARAM_TIME)
      printf(", unit %c", d->time_unit);
    fputs("; default: ", stdout);
    if (d->def == NULL)
      fputs("computed", stdout);
    else if (d->def[0] == '\0')
      fputs("empty", stdout);
    else
      roff_escape(d->def);
    puts(")");
    roff_escape(d->doc);
    putchar('\n');
  }
  puts(".SH SEE ALSO\n.BR postern-smtpd (8),\n.BR postern-qmgr (8),\n.BR postconf (5)");
  return 0;
}
