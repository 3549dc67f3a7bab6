// CPU build of cuda/splat_math.cuh for tests: g++ -O2 -shared -fPIC cpu_shim.cpp (tests/test_cuda_math.py builds it),
// batch entry points with a C ABI for ctypes. No GPU code here: the same inline functions the kernels call.
#include "splat_math.cuh"

extern "C" {

void covariance3d_batch(int n, const float* quats, const float* scales, float* out) {
    for (int i = 0; i < n; ++i) splat::covariance3d(quats + 4 * i, scales + 3 * i, out + 6 * i);
}

// Per Gaussian out_f: mean(2) depth conic(3) cov(3) opacity = 10 floats; out_i: radius tile_min(2) tile_max(2).
void project_batch(int n, const float* means, const float* cov3, const float* opacities, const splat::Camera* cam,
                   float* out_f, int* out_i) {
    for (int i = 0; i < n; ++i) {
        splat::Projected p{};
        splat::project(means + 3 * i, cov3 + 6 * i, opacities[i], *cam, p);
        float* f = out_f + 10 * i;
        f[0] = p.mean[0]; f[1] = p.mean[1]; f[2] = p.depth;
        f[3] = p.conic[0]; f[4] = p.conic[1]; f[5] = p.conic[2];
        f[6] = p.cov[0]; f[7] = p.cov[1]; f[8] = p.cov[2]; f[9] = p.opacity;
        int* k = out_i + 5 * i;
        k[0] = p.radius; k[1] = p.tile_min[0]; k[2] = p.tile_min[1]; k[3] = p.tile_max[0]; k[4] = p.tile_max[1];
    }
}

void sh_batch(int n, int coeffs, int degree, const float* sh, const float* dirs, float* rgb) {
    for (int i = 0; i < n; ++i) splat::sh_to_rgb(sh + 3 * coeffs * i, degree, dirs + 3 * i, rgb + 3 * i);
}

void alpha_batch(int n, const float* means2d, const float* conics, const float* opacities, const float* pixels,
                 float* out) {
    for (int i = 0; i < n; ++i)
        out[i] = splat::alpha_at(means2d + 2 * i, conics + 3 * i, opacities[i], pixels[2 * i], pixels[2 * i + 1]);
}

int camera_size() { return (int)sizeof(splat::Camera); }

}  // extern "C"
