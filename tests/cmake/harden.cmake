# Hardening tests (docs/errors.md): the bad-input corpus, valgrind over every unit test,
# and (with -DKD_FUZZ=ON and clang) the libFuzzer harnesses of tests/fuzz/.

# Every case of tests/bad-inputs/cases.tsv: documented exit status and message, no signal
# death or hang, no sanitizer report, the work directory (with an earlier run) unchanged.
kd_script_test(bad_inputs_exit_2_with_message_and_no_writes bad-inputs/run.sh
  LABELS "integration;harden" TIMEOUT 900)
