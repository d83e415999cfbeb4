# tests/: shell tests of the d2moe command (module test programs are listed
# in each src/<module>/local.mk).
TESTS += tests/cli.sh tests/profiles.sh tests/db.sh tests/badinput.sh
EXTRA_DIST += tests/lib.sh tests/cli.sh tests/profiles.sh tests/db.sh tests/badinput.sh
# Golden outputs of the simulator (tests/golden/update.sh regenerates them).
TESTS += tests/golden.sh
EXTRA_DIST += tests/golden.sh tests/golden
