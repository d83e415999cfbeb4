# src/cli: the d2moe command.  One cmd_<verb>.c per command (listed in
# src/cli/commands.h) and one bench_<name>.c per benchmark (benches.h).
# LDADD order: higher layers first (host, results, eval, sim, quant, trace, core).
bin_PROGRAMS += d2moe
d2moe_SOURCES = \
	src/cli/main.c src/cli/cli.h src/cli/commands.h src/cli/benches.h \
	src/cli/cmd_list.c src/cli/cmd_show.c src/cli/cmd_db.c src/cli/cmd_bench.c
d2moe_SOURCES += src/cli/cmd_calibrate.c src/cli/cmd_execute.c src/cli/cmd_validate.c src/cli/validation.c src/cli/validation.h
d2moe_SOURCES += src/cli/cmd_trace.c src/cli/bench_trace.c
d2moe_SOURCES += src/cli/cmd_simulate.c src/cli/bench_sim.c src/cli/simopts.c src/cli/simopts.h
d2moe_SOURCES += src/cli/cmd_sweep.c src/cli/cmd_merge.c src/cli/cmd_plot.c src/cli/cmd_reproduce.c src/cli/reproduce_quant.c src/cli/reproduce.h
d2moe_SOURCES += src/cli/cmd_audit.c src/cli/reproduce_audit.c
d2moe_SOURCES += src/cli/cmd_export.c src/cli/cmd_report.c
d2moe_SOURCES += src/cli/cmd_quantize.c src/cli/cmd_mwq.c src/cli/bench_kernels.c
d2moe_SOURCES += src/cli/cmd_eval.c src/cli/reproduce_eval.c src/cli/bench_eval.c
d2moe_LDADD = libd2host.a libd2results.a libd2eval.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
