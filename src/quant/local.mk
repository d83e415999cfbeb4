# src/quant: MWQ quantizer, .mwq container, kernels, weight readers, baselines.
# Links only libd2core.a below it.
noinst_LIBRARIES += libd2quant.a
libd2quant_a_SOURCES = \
	src/quant/f16.h \
	src/quant/weights.c src/quant/weights.h \
	src/quant/kern.c src/quant/kern.h \
	src/quant/kq.c src/quant/kq.h src/quant/kq_lanes.h \
	src/quant/kref.c src/quant/kref.h \
	src/quant/mwq.c src/quant/mwq.h \
	src/quant/gptq.c src/quant/mwq_int.h \
	src/quant/rtn.c src/quant/rtn.h \
	src/quant/qerr.c src/quant/qerr.h \
	src/quant/mwqfile.c src/quant/mwqfile.h \
	src/quant/synth.c src/quant/synth.h \
	src/quant/swiglu.c src/quant/swiglu.h

check_PROGRAMS += tests/t_weights tests/t_mwq tests/t_mwqfile tests/t_kern tests/t_kq tests/t_kref
tests_t_weights_SOURCES = tests/t_weights.c tests/tap.h tests/t_quant_util.h
tests_t_weights_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
tests_t_mwq_SOURCES = tests/t_mwq.c tests/tap.h tests/t_quant_util.h
tests_t_mwq_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
tests_t_mwqfile_SOURCES = tests/t_mwqfile.c tests/tap.h tests/t_quant_util.h
tests_t_mwqfile_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
tests_t_kern_SOURCES = tests/t_kern.c tests/tap.h tests/t_quant_util.h
tests_t_kern_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
tests_t_kq_SOURCES = tests/t_kq.c tests/tap.h
tests_t_kq_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
tests_t_kref_SOURCES = tests/t_kref.c tests/tap.h
tests_t_kref_LDADD = libd2quant.a libd2core.a $(D2_LIBS)
TESTS += tests/t_weights tests/t_mwq tests/t_mwqfile tests/t_kern tests/t_kq tests/t_kref tests/quant.sh
EXTRA_DIST += tests/quant.sh docs/mwq.md
