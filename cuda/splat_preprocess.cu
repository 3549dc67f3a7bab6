// Forward preprocessing kernel: one thread per Gaussian runs the shared math of splat_math.cuh (projection, screen
// filter, conic, radius, tile rectangle, SH colour). Compiled by CuPy's RawModule (NVRTC) at first use; the compile
// gate (tests/test_cuda_math.py) builds it to PTX for sm_90 with the same options.
#include "splat_math.cuh"

extern "C" __global__ void preprocess(int n, const float* __restrict__ means, const float* __restrict__ cov3,
                                      const float* __restrict__ opacities, const float* __restrict__ sh, int coeffs,
                                      int degree, splat::Camera cam, float campos_x, float campos_y, float campos_z,
                                      float* __restrict__ out_f, int* __restrict__ out_i, float* __restrict__ rgb) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    splat::Projected p;
    bool drawn = splat::project(means + 3 * i, cov3 + 6 * i, opacities[i], cam, p);
    float* f = out_f + 10 * i;
    f[0] = p.mean[0]; f[1] = p.mean[1]; f[2] = p.depth;
    f[3] = p.conic[0]; f[4] = p.conic[1]; f[5] = p.conic[2];
    f[6] = p.cov[0]; f[7] = p.cov[1]; f[8] = p.cov[2]; f[9] = p.opacity;
    int* k = out_i + 5 * i;
    k[0] = p.radius; k[1] = p.tile_min[0]; k[2] = p.tile_min[1]; k[3] = p.tile_max[0]; k[4] = p.tile_max[1];
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
