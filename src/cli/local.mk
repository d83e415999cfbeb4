# src/cli: the d2moe command.  One cmd_<verb>.c per command (listed in
# src/cli/commands.h) and one bench_<name>.c per benchmark (benches.h).
# LDADD order: higher layers first (host, results, sim, quant, trace, core).
bin_PROGRAMS += d2moe
d2moe_SOURCES = \
	src/cli/main.c src/cli/cli.h src/cli/commands.h src/cli/benches.h \
	src/cli/cmd_list.c src/cli/cmd_show.c src/cli/cmd_db.c src/cli/cmd_bench.c
d2moe_LDADD = libd2results.a libd2core.a $(D2_LIBS)
