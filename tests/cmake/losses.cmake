# Tests of the distillation and preference losses (kernels/cpu/kd_loss.c, pref_loss.c,
# runtime/train/losses.c). The reference test runs tests/reference/losses_ref.py (torch, float64).
kd_unit_test(losses_kd_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_losses_kd.c LABELS unit TIMEOUT 120)
kd_unit_test(losses_pref_vs_fd ${CMAKE_SOURCE_DIR}/tests/unit/test_losses_pref.c LABELS unit TIMEOUT 60)
kd_unit_test(kd_normalize_batchmean_matches_mambainllama ${CMAKE_SOURCE_DIR}/tests/unit/test_kd_norm.c LABELS unit TIMEOUT 60)
kd_unit_test(losses_vs_torch ${CMAKE_SOURCE_DIR}/tests/unit/test_losses_ref.c LABELS reference TIMEOUT 120)
