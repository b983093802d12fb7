// cpu.h: internal declarations of the CPU backend's kernels, one group per file of
// kernels/cpu/. Only kernels/cpu/ops_cpu.c (which fills the kd_ops table) and the kernel
// tests include this; everyone else goes through kd_ops_cpu(). Semantics and shapes are
// those documented in kernels/ops.h. Threading rule of this backend: one thread pool,
// OpenMP's. OpenBLAS is set to one thread when the table is first handed out, and large
// products are split into row panels across the OpenMP team (matmul.c).
#pragma once
#include <stddef.h>
#include <stdint.h>

// Below this many elements an elementwise loop runs on one thread (fork cost dominates).
#define KD_CPU_PAR_MIN 16384

// matmul.c
void kd_cpu_blas_single_thread(void); // called once by kd_ops_cpu()
void kd_cpu_matmul_fwd(float *out, const float *inp, const float *w, int N, int C, int OC);
void kd_cpu_matmul_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                       int N, int C, int OC);

// attention.c
void kd_cpu_attention_fwd(float *out, float *att, const float *qkv, const int32_t *seg, int B,
                          int T, int NH, int NKV, int HD);
void kd_cpu_attention_bwd(float *dqkv, float *datt, const float *dout, const float *att,
                          const float *qkv, int B, int T, int NH, int NKV, int HD);

// attention_decode.c
void kd_cpu_attention_decode(float *out, float *kv, const float *qkv, const int32_t *n, int B,
                             int Tmax, int NH, int NKV, int HD);

// norm.c
void kd_cpu_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                        float eps);
void kd_cpu_rmsnorm_bwd(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                        const float *rstd, int N, int C);
void kd_cpu_rope_fwd(float *x, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                     float theta);
void kd_cpu_rope_bwd(float *dx, const int32_t *pos, int N, int nrot, int row_stride, int HD,
                     float theta);

// mlp.c
void kd_cpu_swiglu_fwd(float *out, const float *gu, int N, int F);
void kd_cpu_swiglu_bwd(float *dgu, const float *dout, const float *gu, int N, int F);
void kd_cpu_embedding_fwd(float *out, const int32_t *ids, const float *wte, int N, int C);
void kd_cpu_embedding_bwd(float *dwte, const float *dout, const int32_t *ids, int N, int C);

// loss.c
void kd_cpu_cross_entropy(float *loss, float *dlogits, const float *logits, const int32_t *targets,
                          const float *weights, int N, int V, float dscale);
