// mamba2_register.c: fills the "Mamba-2" fields of a CPU kd_ops table.
#include "kernels/cpu/cpu_mamba2.h"

void kd_cpu_register_mamba2(kd_ops *ops) {
    ops->mamba2_conv_fwd = kd_cpu_mamba2_conv_fwd;
    ops->mamba2_conv_bwd = kd_cpu_mamba2_conv_bwd;
    ops->mamba2_ssd_fwd = kd_cpu_mamba2_ssd_fwd;
    ops->mamba2_ssd_bwd = kd_cpu_mamba2_ssd_bwd;
    ops->mamba2_scan_ref = kd_cpu_mamba2_scan_ref;
    ops->mamba2_gnorm_fwd = kd_cpu_mamba2_gnorm_fwd;
    ops->mamba2_gnorm_bwd = kd_cpu_mamba2_gnorm_bwd;
    ops->mamba2_step = kd_cpu_mamba2_step;
    ops->mamba2_mat_fwd = kd_cpu_mamba2_mat_fwd;
    ops->mamba2_mat_bwd = kd_cpu_mamba2_mat_bwd;
}
