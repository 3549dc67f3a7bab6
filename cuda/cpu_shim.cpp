// CPU build of cuda/splat_math.cuh for tests: g++ -O2 -shared -fPIC cpu_shim.cpp (tests/test_cuda_math.py builds it),
// batch entry points with a C ABI for ctypes. No GPU code here: the same inline functions the kernels call.
#include "splat_math.cuh"

#include <algorithm>
#include <vector>

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
        splat::store_projected(p, out_f + 10 * i, out_i + 5 * i);
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

// The whole forward pass on the CPU with the kernels' functions and the CUDA pipeline's data flow: project, count
// tiles, emit (tile | depth) keys in Gaussian order, stable-sort, tile ranges, composite each tile's pixels front to
// back. Outputs color (H, W, 3) over `bg`, alpha, depth (Σ w·z) and count (H, W).
void render_cpu(int n, const float* means, const float* cov3, const float* opacities, const float* sh, int coeffs,
                int degree, const splat::Camera* cam, const float* campos, const float* bg, float* color,
                float* alpha, float* depth, int* count) {
    std::vector<splat::Projected> proj(n);
    std::vector<float> rgb(3 * (size_t)n);
    std::vector<int> offsets(n + 1, 0);
    for (int i = 0; i < n; ++i) {
        bool drawn = splat::project(means + 3 * i, cov3 + 6 * i, opacities[i], *cam, proj[i]);
        if (drawn) {
            float d[3] = {means[3 * i] - campos[0], means[3 * i + 1] - campos[1], means[3 * i + 2] - campos[2]};
            float len = std::max(std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]), 1e-12f);
            for (float& v : d) v /= len;
            splat::sh_to_rgb(sh + 3 * coeffs * i, degree, d, &rgb[3 * i]);
        }
        offsets[i + 1] = offsets[i] + splat::tiles_touched(proj[i]);
    }
    int grid_x = (cam->width + cam->tile - 1) / cam->tile, grid_y = (cam->height + cam->tile - 1) / cam->tile;
    std::vector<unsigned long long> keys(offsets[n]);
    std::vector<unsigned int> values(offsets[n]);
    for (int i = 0; i < n; ++i) splat::emit_keys(proj[i], i, grid_x, keys.data(), values.data(), offsets[i]);
    std::vector<int> order(offsets[n]);
    for (int k = 0; k < offsets[n]; ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return keys[a] < keys[b]; });
    std::vector<int> start(grid_x * grid_y, 0), end(grid_x * grid_y, 0);
    for (int k = 0; k < offsets[n]; ++k) {
        int t = (int)(keys[order[k]] >> 32);
        if (k == 0 || (int)(keys[order[k - 1]] >> 32) != t) start[t] = k;
        end[t] = k + 1;
    }
    for (int py = 0; py < cam->height; ++py)
        for (int px = 0; px < cam->width; ++px) {
            int t = (py / cam->tile) * grid_x + px / cam->tile;
            splat::Pixel pix = splat::pixel_start();
            for (int k = start[t]; k < end[t] && !pix.done; ++k) {
                const splat::Projected& p = proj[values[order[k]]];
                float a = splat::alpha_at(p.mean, p.conic, p.opacity, px + 0.5f, py + 0.5f);
                splat::composite(pix, a, &rgb[3 * values[order[k]]], p.depth);
            }
            size_t o = (size_t)py * cam->width + px;
            for (int c = 0; c < 3; ++c) color[3 * o + c] = pix.rgb[c] + pix.T * bg[c];
            alpha[o] = 1.f - pix.T;
            depth[o] = pix.depth;
            count[o] = pix.count;
        }
}

// Backward of the per-pixel stage on the CPU (what the backward tile kernel will do): inputs are projected splats
// (mean2d, conic, opacity, rgb, depth per splat, already sorted per tile by the forward's binning, given here as
// tile ranges over `values`) and the output gradients; accumulates dL/dmean2d, dL/dconic, dL/dopacity, dL/drgb,
// dL/ddepth per splat. The forward is replayed per pixel to know which splats were composited.
void composite_backward_cpu(int n, const float* mean2d, const float* conic, const float* opacity, const float* rgb,
                            const float* z, int width, int height, int tile, const int* ranges,
                            const unsigned int* values, const float* bg, const float* g_color, const float* g_depth,
                            const float* g_alpha, float* g_mean2d, float* g_conic, float* g_opacity, float* g_rgb,
                            float* g_z) {
    (void)n;
    int grid_x = (width + tile - 1) / tile;
    std::vector<int> used;
    for (int py = 0; py < height; ++py)
        for (int px = 0; px < width; ++px) {
            int t = (py / tile) * grid_x + px / tile;
            splat::Pixel pix = splat::pixel_start();
            used.clear();
            std::vector<float> alphas;
            for (int k = ranges[2 * t]; k < ranges[2 * t + 1] && !pix.done; ++k) {
                unsigned int g = values[k];
                float a = splat::alpha_at(mean2d + 2 * g, conic + 3 * g, opacity[g], px + 0.5f, py + 0.5f);
                int before = pix.count;
                splat::composite(pix, a, rgb + 3 * g, z[g]);
                if (pix.count > before) {
                    used.push_back((int)g);
                    alphas.push_back(a);
                }
            }
            size_t o = (size_t)py * width + px;
            splat::PixelBack b = splat::pixel_back_start(pix.T, bg);
            for (int u = (int)used.size() - 1; u >= 0; --u) {
                int g = used[u];
                float gr[3], gz, gm[2], gc[3], go;
                float ga = splat::composite_backward(b, alphas[u], rgb + 3 * g, z[g], g_color + 3 * o, g_depth[o],
                                                     g_alpha[o], gr, &gz);
                splat::alpha_backward(mean2d + 2 * g, conic + 3 * g, opacity[g], px + 0.5f, py + 0.5f, ga, gm, gc,
                                      &go);
                for (int c = 0; c < 3; ++c) g_rgb[3 * g + c] += gr[c];
                g_z[g] += gz;
                g_mean2d[2 * g] += gm[0];
                g_mean2d[2 * g + 1] += gm[1];
                for (int c = 0; c < 3; ++c) g_conic[3 * g + c] += gc[c];
                g_opacity[g] += go;
            }
        }
}

// Per-Gaussian backward (what the backward preprocess kernel will do): from dL/d(mean2d, conic, opacity', rgb) to
// dL/d(means, quats, scales, opacities, SH). Gaussians with radius 0 (not drawn) get zeros.
void project_backward_batch(int n, const float* means, const float* quats, const float* scales,
                            const float* opacities, const float* sh, int coeffs, int degree, const splat::Camera* cam,
                            const float* campos, const int* radii, const float* g_mean2d, const float* g_conic,
                            const float* g_op, const float* g_rgb, float* g_means, float* g_quats, float* g_scales,
                            float* g_opacities, float* g_sh) {
    for (int i = 0; i < n; ++i) {
        float* gm = g_means + 3 * i;
        float* gq = g_quats + 4 * i;
        float* gs = g_scales + 3 * i;
        float* gsh = g_sh + 3 * coeffs * i;
        for (int k = 0; k < 3; ++k) gm[k] = gs[k] = 0.f;
        for (int k = 0; k < 4; ++k) gq[k] = 0.f;
        for (int k = 0; k < 3 * coeffs; ++k) gsh[k] = 0.f;
        g_opacities[i] = 0.f;
        if (radii[i] <= 0) continue;
        splat::project_backward(means + 3 * i, quats + 4 * i, scales + 3 * i, opacities[i], *cam, g_mean2d + 2 * i,
                                g_conic + 3 * i, g_op[i], gm, gq, gs, g_opacities + i);
        float dir[3] = {means[3 * i] - campos[0], means[3 * i + 1] - campos[1], means[3 * i + 2] - campos[2]};
        float gmd[3];
        splat::sh_backward(sh + 3 * coeffs * i, degree, dir, g_rgb + 3 * i, gsh, gmd);
        for (int k = 0; k < 3; ++k) gm[k] += gmd[k];
    }
}

}  // extern "C"
