# src/eval: measured accuracy of quantized FFNs on a real forward pass: a
# llama2.c-compatible FP32 transformer (llm), quantized FFN weight sets
# (ffnq) and the evaluation (evalq).  Above quant and sim (it reuses the
# simulator's bit-routing policies), below results.
noinst_LIBRARIES += libd2eval.a
libd2eval_a_SOURCES = \
	src/eval/llm.c src/eval/llm.h \
	src/eval/ffnq.c src/eval/ffnq.h \
	src/eval/evalq.c src/eval/evalq.h

check_PROGRAMS += tests/t_eval
tests_t_eval_SOURCES = tests/t_eval.c tests/tap.h
tests_t_eval_LDADD = libd2eval.a libd2sim.a libd2quant.a libd2trace.a libd2core.a $(D2_LIBS)
TESTS += tests/t_eval tests/eval.sh
EXTRA_DIST += tests/eval.sh
