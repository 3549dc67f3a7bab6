// Forward preprocessing kernel: one thread per Gaussian runs the shared math of splat_math.cuh (projection, screen
// filter, conic, radius, tile rectangle, SH colour). Compiled by CuPy's RawModule (NVRTC) at first use; the compile
// gate (tests/test_cuda_math.py) builds it to PTX for sm_90 with the same options.
#include "splat_math.cuh"

extern "C" __global__ void preprocess(int n, const float* __restrict__ means, const float* __restrict__ cov3,
                                      const float* __restrict__ opacities, const float* __restrict__ sh, int coeffs,
                                      int degree, const splat::Camera* __restrict__ camp, float campos_x, float campos_y,
                                      float campos_z, float* __restrict__ out_f, int* __restrict__ out_i, float* __restrict__ rgb) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const splat::Camera cam = *camp;  // by pointer: one small device buffer, no struct-by-value kernel argument
    splat::Projected p;
    bool drawn = splat::project(means + 3 * i, cov3 + 6 * i, opacities[i], cam, p);
    splat::store_projected(p, out_f + 10 * i, out_i + 5 * i);
    float c[3] = {0.f, 0.f, 0.f};
    if (drawn) {
        float d[3] = {means[3 * i] - campos_x, means[3 * i + 1] - campos_y, means[3 * i + 2] - campos_z};
        float len = sqrtf(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
        len = len > 1e-12f ? len : 1e-12f;
        d[0] /= len; d[1] /= len; d[2] /= len;
        splat::sh_to_rgb(sh + 3 * coeffs * i, degree, d, c);
    }
    rgb[3 * i] = c[0]; rgb[3 * i + 1] = c[1]; rgb[3 * i + 2] = c[2];
}

// Backward of preprocess: one thread per drawn Gaussian, from the per-splat gradients render_tiles_backward summed
// (mean2d, conic, filtered opacity, colour, depth) to dL/d(means, quaternions, scales, opacities, SH).
extern "C" __global__ void preprocess_backward(int n, const float* __restrict__ means, const float* __restrict__ quats,
                                               const float* __restrict__ scales,
                                               const float* __restrict__ opacities, const float* __restrict__ sh,
                                               int coeffs, int degree, const splat::Camera* __restrict__ camp,
                                               float campos_x,
                                               float campos_y, float campos_z, const int* __restrict__ out_i,
                                               const float* __restrict__ g_mean2d, const float* __restrict__ g_conic,
                                               const float* __restrict__ g_op, const float* __restrict__ g_rgb,
                                               const float* __restrict__ g_z, float* __restrict__ g_means,
                                               float* __restrict__ g_quats, float* __restrict__ g_scales,
                                               float* __restrict__ g_opacities, float* __restrict__ g_sh) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || out_i[5 * i] <= 0) return;  // not drawn: its gradients stay zero
    const splat::Camera cam = *camp;
    float gm[3], gq[4], gs[3], go;
    splat::project_backward(means + 3 * i, quats + 4 * i, scales + 3 * i, opacities[i], cam, g_mean2d + 2 * i,
                            g_conic + 3 * i, g_op[i], gm, gq, gs, &go);
    float dir[3] = {means[3 * i] - campos_x, means[3 * i + 1] - campos_y, means[3 * i + 2] - campos_z};
    float gmd[3];
    splat::sh_backward(sh + 3 * coeffs * i, degree, dir, g_rgb + 3 * i, g_sh + 3 * coeffs * i, gmd);
    for (int k = 0; k < 3; ++k)  // depth z = W[2]·m + t[2]
        g_means[3 * i + k] = gm[k] + gmd[k] + cam.R[6 + k] * g_z[i];
    for (int k = 0; k < 4; ++k) g_quats[4 * i + k] = gq[k];
    for (int k = 0; k < 3; ++k) g_scales[3 * i + k] = gs[k];
    g_opacities[i] = go;
}
