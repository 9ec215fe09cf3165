/*
 * commands.h — the `tally` program's subcommands, listed once.
 *
 * Each subcommand is a function `int cmd_<name>(int argc, char **argv)`
 * (argv holds the arguments after the command's name) in its own file
 * tools/cmd_<name>.c, and one X line below: X(name, function, one-line
 * summary for `tally help`). tally.c builds the dispatch table and the help
 * text from this list; nothing else needs editing to add a command.
 *
 * Exit codes, for every command: 0 success, 1 the command ran and found
 * problems or failed, 2 usage error. `tally <cmd> --help` prints the
 * command's usage to stdout and exits 0.
 */
#ifndef TALLY_TOOLS_COMMANDS_H
#define TALLY_TOOLS_COMMANDS_H

#ifdef TALLY_HAVE_SERVER
#define TALLY_SERVER_COMMANDS(X)                                                            \
    X(serve, cmd_serve, "run the MLflow-compatible tracking server (serve --help)")             \
    X(webhooks, cmd_webhooks, "a running server's webhooks and delivery log (webhooks --help)") \
    X(users, cmd_users, "manage users and permission rows of a running server (--auth)")        \
    X(tokens, cmd_tokens, "create, list and revoke API tokens of a running server")             \
    X(audit, cmd_audit, "read the audit log of a running server (admins)")
#else
#define TALLY_SERVER_COMMANDS(X)
#endif

#define TALLY_COMMANDS(X)                                                                   \
    TALLY_SERVER_COMMANDS(X)                                                                \
    X(verify, cmd_verify, "check every checksum of a data directory; exit 1 on any problem") \
    X(stat, cmd_stat, "what a data directory holds")                                    \
    X(import, cmd_import, "import an MLflow file store or SQLite database (import --help)") \
    X(export, cmd_export, "experiments, runs or metric histories as CSV or NDJSON")       \
    X(backup, cmd_backup, "consistent copy of a data directory, even while it is served") \
    X(gc, cmd_gc, "permanently remove deleted runs and experiments and reclaim the space")

#define TALLY_DECLARE_COMMAND_(name, fn, summary) int fn(int argc, char **argv);
TALLY_COMMANDS(TALLY_DECLARE_COMMAND_)
#undef TALLY_DECLARE_COMMAND_

#endif /* TALLY_TOOLS_COMMANDS_H */
