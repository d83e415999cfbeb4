/* commands.h - the command table: one CLI_COMMAND(verb) line per
 * src/cli/cmd_<verb>.c, in the order `d2moe help` lists them.  Adding a
 * command is a new file and a new line here; no other command changes. */
CLI_COMMAND(list)
CLI_COMMAND(show)
CLI_COMMAND(db)
CLI_COMMAND(bench)
CLI_COMMAND(trace)
CLI_COMMAND(calibrate)
CLI_COMMAND(simulate)
CLI_COMMAND(sweep)
CLI_COMMAND(merge)
CLI_COMMAND(plot)
CLI_COMMAND(reproduce)
CLI_COMMAND(quantize)
CLI_COMMAND(mwq)
CLI_COMMAND(execute)
CLI_COMMAND(validate)
