// Per-Gaussian and per-pixel math of the splat rasterizer, written once for both compilers: NVRTC/nvcc build it
// into the kernels (cuda/*.cu), g++ builds it into a small CPU library (cuda/cpu_shim.cpp) so tests/test_cuda_math.py
// checks it against the torch reference (render/splat/projection.py, sh.py, torch_ref.py) on a machine with no GPU.
// Every rule follows the reference: near cull at z <= near, the Jacobian's 1.3·tan(fov) clamp, the screen filter in
// pixel units with Mip-Splatting's clamps, radius = ceil(3·sqrt(lambda_max)) with the 0.1 discriminant floor, tiles
// of the mean ± radius square, SH "+0.5, clamp >= 0", alpha = min(0.99, o·exp(power)) with the 1/255 cut.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SPLAT_HD __host__ __device__ __forceinline__
#else
#include <cmath>
#define SPLAT_HD inline
#endif
#if !defined(__CUDACC_RTC__)
#include <cstring>
#endif

namespace splat {

constexpr float ALPHA_MIN = 1.0f / 255.0f;
constexpr float ALPHA_MAX = 0.99f;
constexpr float T_MIN = 1e-4f;
constexpr float MAX_RADIUS = 16777216.0f;  // 2^24, as the reference clamps
constexpr float SH_C0 = 0.28209479177387814f;
constexpr float SH_C1 = 0.4886025119029199f;

struct Camera {
    float R[9];        // world-to-camera rotation, row-major
    float t[3];
    float fx, fy, cx, cy;
    float lim[4];      // x/z limits (+, -) and y/z limits (+, -) of the Jacobian clamp
    int width, height, tile;
    float near_z;
    float dilation;    // px^2 added to the 2D covariance's diagonal
    int compensate;    // Mip-Splatting's opacity compensation
};

struct Projected {
    float mean[2];     // pixels (0 when behind the near plane)
    float depth;       // camera z
    float cov[3];      // filtered 2D covariance a, b, c
    float conic[3];    // its inverse
    float opacity;     // after the filter's compensation
    int radius;        // 0 = culled
    int tile_min[2], tile_max[2];  // [min, max) tiles, 0 when culled
};

// Sigma = R S S^T R^T from a wxyz quaternion (normalised here) and activated scales; xx xy xz yy yz zz.
SPLAT_HD void covariance3d(const float q_in[4], const float s[3], float out[6]) {
    float n = sqrtf(q_in[0] * q_in[0] + q_in[1] * q_in[1] + q_in[2] * q_in[2] + q_in[3] * q_in[3]);
    n = n > 1e-12f ? n : 1e-12f;
    float w = q_in[0] / n, x = q_in[1] / n, y = q_in[2] / n, z = q_in[3] / n;
    float R[9] = {1.f - 2.f * (y * y + z * z), 2.f * (x * y - w * z), 2.f * (x * z + w * y),
                  2.f * (x * y + w * z), 1.f - 2.f * (x * x + z * z), 2.f * (y * z - w * x),
                  2.f * (x * z - w * y), 2.f * (y * z + w * x), 1.f - 2.f * (x * x + y * y)};
    float M[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[3 * i + j] = R[3 * i + j] * s[j];
    const int idx[6][2] = {{0, 0}, {0, 1}, {0, 2}, {1, 1}, {1, 2}, {2, 2}};
    for (int k = 0; k < 6; ++k) {
        int i = idx[k][0], j = idx[k][1];
        out[k] = M[3 * i] * M[3 * j] + M[3 * i + 1] * M[3 * j + 1] + M[3 * i + 2] * M[3 * j + 2];
    }
}

// EWA projection, screen filter, conic, radius and tile rectangle of one Gaussian; returns whether it is drawn.
SPLAT_HD bool project(const float m[3], const float cov3[6], float opacity, const Camera& cam, Projected& out) {
    out.mean[0] = out.mean[1] = 0.f;
    out.radius = 0;
    out.tile_min[0] = out.tile_min[1] = out.tile_max[0] = out.tile_max[1] = 0;
    const float* R = cam.R;
    float x = R[0] * m[0] + R[1] * m[1] + R[2] * m[2] + cam.t[0];
    float y = R[3] * m[0] + R[4] * m[1] + R[5] * m[2] + cam.t[1];
    float z = R[6] * m[0] + R[7] * m[1] + R[8] * m[2] + cam.t[2];
    out.depth = z;
    if (!(z > cam.near_z)) return false;

    float rx = x / z, ry = y / z;
    float tx = (rx > cam.lim[0] || rx < -cam.lim[1]) ? fminf(fmaxf(rx, -cam.lim[1]), cam.lim[0]) * z : x;
    float ty = (ry > cam.lim[2] || ry < -cam.lim[3]) ? fminf(fmaxf(ry, -cam.lim[3]), cam.lim[2]) * z : y;
    float j00 = cam.fx / z, j02 = -cam.fx * tx / (z * z);
    float j11 = cam.fy / z, j12 = -cam.fy * ty / (z * z);
    float T0[3], T1[3];  // rows of J·R
    for (int k = 0; k < 3; ++k) {
        T0[k] = j00 * R[k] + j02 * R[6 + k];
        T1[k] = j11 * R[3 + k] + j12 * R[6 + k];
    }
    const float S[9] = {cov3[0], cov3[1], cov3[2], cov3[1], cov3[3], cov3[4], cov3[2], cov3[4], cov3[5]};
    float s0[3], s1[3];
    for (int i = 0; i < 3; ++i) {
        s0[i] = S[3 * i] * T0[0] + S[3 * i + 1] * T0[1] + S[3 * i + 2] * T0[2];
        s1[i] = S[3 * i] * T1[0] + S[3 * i + 1] * T1[1] + S[3 * i + 2] * T1[2];
    }
    float a = T0[0] * s0[0] + T0[1] * s0[1] + T0[2] * s0[2];
    float b = T0[0] * s1[0] + T0[1] * s1[1] + T0[2] * s1[2];
    float c = T1[0] * s1[0] + T1[1] * s1[1] + T1[2] * s1[2];

    float a1 = a + cam.dilation, c1 = c + cam.dilation;
    float op = opacity;
    if (cam.compensate) {
        float det0r = a * c - b * b, det1r = a1 * c1 - b * b;
        float det0 = fmaxf(det0r, 1e-6f), det1 = fmaxf(det1r, 1e-6f);
        float coef = sqrtf(det0 / (det1 + 1e-6f) + 1e-6f);
        op *= (det0r <= 1e-6f || det1r <= 1e-6f) ? 0.f : coef;
    }
    out.cov[0] = a1; out.cov[1] = b; out.cov[2] = c1;
    out.opacity = op;
    out.mean[0] = cam.fx * x / z + cam.cx;
    out.mean[1] = cam.fy * y / z + cam.cy;
    float det = a1 * c1 - b * b;
    if (!(det > 0.f)) return false;
    out.conic[0] = c1 / det; out.conic[1] = -b / det; out.conic[2] = a1 / det;

    float mid = 0.5f * (a1 + c1);
    float lam = mid + sqrtf(fmaxf(mid * mid - det, 0.1f));
    float r = ceilf(3.f * sqrtf(fmaxf(lam, 0.f)));
    if (!(r > 0.f && r < 3.0e38f)) return false;  // also rejects NaN and inf
    r = fminf(r, MAX_RADIUS);
    float gx = (float)((cam.width + cam.tile - 1) / cam.tile), gy = (float)((cam.height + cam.tile - 1) / cam.tile);
    float lo_x = fminf(fmaxf(floorf((out.mean[0] - r) / cam.tile), 0.f), gx);
    float lo_y = fminf(fmaxf(floorf((out.mean[1] - r) / cam.tile), 0.f), gy);
    float hi_x = fminf(fmaxf(ceilf((out.mean[0] + r) / cam.tile), 0.f), gx);
    float hi_y = fminf(fmaxf(ceilf((out.mean[1] + r) / cam.tile), 0.f), gy);
    if (!(hi_x > lo_x && hi_y > lo_y)) return false;
    out.radius = (int)r;
    out.tile_min[0] = (int)lo_x; out.tile_min[1] = (int)lo_y;
    out.tile_max[0] = (int)hi_x; out.tile_max[1] = (int)hi_y;
    return true;
}

// 3DGS colour: real SH up to `degree` (coefficients k-major, 3 channels each) along unit `d`, +0.5, clamped >= 0.
SPLAT_HD void sh_to_rgb(const float* coeffs, int degree, const float d[3], float rgb[3]) {
    float x = d[0], y = d[1], z = d[2];
    float basis[16];
    basis[0] = SH_C0;
    int k = 1;
    if (degree >= 1) {
        basis[1] = -SH_C1 * y; basis[2] = SH_C1 * z; basis[3] = -SH_C1 * x;
        k = 4;
    }
    if (degree >= 2) {
        float xx = x * x, yy = y * y, zz = z * z;
        basis[4] = 1.0925484305920792f * x * y;
        basis[5] = -1.0925484305920792f * y * z;
        basis[6] = 0.31539156525252005f * (2.f * zz - xx - yy);
        basis[7] = -1.0925484305920792f * x * z;
        basis[8] = 0.5462742152960396f * (xx - yy);
        k = 9;
        if (degree >= 3) {
            basis[9] = -0.5900435899266435f * y * (3.f * xx - yy);
            basis[10] = 2.890611442640554f * x * y * z;
            basis[11] = -0.4570457994644658f * y * (4.f * zz - xx - yy);
            basis[12] = 0.3731763325901154f * z * (2.f * zz - 3.f * xx - 3.f * yy);
            basis[13] = -0.4570457994644658f * x * (4.f * zz - xx - yy);
            basis[14] = 1.445305721320277f * z * (xx - yy);
            basis[15] = -0.5900435899266435f * x * (xx - 3.f * yy);
            k = 16;
        }
    }
    for (int ch = 0; ch < 3; ++ch) {
        float v = 0.f;
        for (int i = 0; i < k; ++i) v += basis[i] * coeffs[3 * i + ch];
        rgb[ch] = fmaxf(v + 0.5f, 0.f);
    }
}

// Alpha of a projected Gaussian at pixel centre (px, py); 0 where the reference skips it (power > 0, alpha < 1/255).
SPLAT_HD float alpha_at(const float mean[2], const float conic[3], float opacity, float px, float py) {
    float dx = mean[0] - px, dy = mean[1] - py;
    float power = -0.5f * (conic[0] * dx * dx + conic[2] * dy * dy) - conic[1] * dx * dy;
    if (power > 0.f) return 0.f;
    float alpha = fminf(ALPHA_MAX, opacity * expf(power));
    return alpha < ALPHA_MIN ? 0.f : alpha;
}

// ----- binning: (tile, depth) keys -------------------------------------------------------------------------------
// One 64-bit key per (Gaussian, touched tile): tile id in the high word, the depth's float bits in the low word
// (z > near > 0, where float bits order like the floats). A stable sort of the keys emitted in Gaussian order gives
// each tile its splats front to back, ties in index order: the reference's binning (torch_ref.bin_gaussians).

SPLAT_HD unsigned int float_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    unsigned int u;
    std::memcpy(&u, &f, sizeof u);
    return u;
#endif
}

SPLAT_HD int tiles_touched(const Projected& p) {
    return p.radius > 0 ? (p.tile_max[0] - p.tile_min[0]) * (p.tile_max[1] - p.tile_min[1]) : 0;
}

// Writes tiles_touched(p) keys and values (the Gaussian's index) starting at `offset`, tiles in row-major order.
SPLAT_HD void emit_keys(const Projected& p, unsigned int index, int grid_x, unsigned long long* keys,
                        unsigned int* values, int offset) {
    if (p.radius <= 0) return;
    unsigned long long low = float_bits(p.depth);
    for (int ty = p.tile_min[1]; ty < p.tile_max[1]; ++ty)
        for (int tx = p.tile_min[0]; tx < p.tile_max[0]; ++tx) {
            keys[offset] = ((unsigned long long)(ty * grid_x + tx) << 32) | low;
            values[offset] = index;
            ++offset;
        }
}

// ----- compositing -----------------------------------------------------------------------------------------------
struct Pixel {
    float T;          // transmittance so far
    float rgb[3];     // sum of w·colour
    float depth;      // sum of w·z
    int count;        // splats composited
    bool done;        // the stop rule fired: later splats are not composited
};

SPLAT_HD Pixel pixel_start() {
    Pixel px;
    px.T = 1.f;
    px.rgb[0] = px.rgb[1] = px.rgb[2] = 0.f;
    px.depth = 0.f;
    px.count = 0;
    px.done = false;
    return px;
}

// Front-to-back "under" step with the reference's stop rule: when T·(1−α) would fall below 1e-4 the pixel is done
// and this splat is not composited.
SPLAT_HD void composite(Pixel& px, float alpha, const float rgb[3], float z) {
    if (px.done || alpha <= 0.f) return;
    float t_next = px.T * (1.f - alpha);
    if (t_next < T_MIN) {
        px.done = true;
        return;
    }
    float w = alpha * px.T;
    px.rgb[0] += w * rgb[0];
    px.rgb[1] += w * rgb[1];
    px.rgb[2] += w * rgb[2];
    px.depth += w * z;
    px.T = t_next;
    px.count += 1;
}

// ----- compositing backward ---------------------------------------------------------------------------------------
// Reverse pass over a pixel's composited splats (last to first), from the final transmittance T_N. For splat i with
// T_i = T_{i+1} / (1 - a_i):
//   dC/dc_i = a_i T_i,   dC/da_i = c_i T_i - (sum_{j>i} c_j a_j T_j + T_N bg) / (1 - a_i)
//   dD/dz_i = a_i T_i,   dD/da_i = z_i T_i - (sum_{j>i} z_j a_j T_j) / (1 - a_i)
//   dA/da_i = T_N / (1 - a_i)            (A = 1 - T_N)
struct PixelBack {
    float T;           // T_{i+1} while visiting splat i
    float T_final;
    float behind_rgb[3];  // sum_{j>i} c_j a_j T_j + T_N bg
    float behind_depth;   // sum_{j>i} z_j a_j T_j
};

SPLAT_HD PixelBack pixel_back_start(float T_final, const float bg[3]) {
    PixelBack b;
    b.T = T_final;
    b.T_final = T_final;
    for (int c = 0; c < 3; ++c) b.behind_rgb[c] = T_final * bg[c];
    b.behind_depth = 0.f;
    return b;
}

// One reverse step for a composited splat (alpha > 0); g_color / g_depth / g_alpha are the pixel's output
// gradients. Returns dL/da_i and writes dL/dc_i (3) and dL/dz_i.
SPLAT_HD float composite_backward(PixelBack& b, float alpha, const float rgb[3], float z, const float g_color[3],
                                  float g_depth, float g_alpha, float g_rgb[3], float* g_z) {
    float one_minus = 1.f - alpha;
    float T_i = b.T / one_minus;
    float w = alpha * T_i;
    float g_a = 0.f;
    for (int c = 0; c < 3; ++c) {
        g_rgb[c] = g_color[c] * w;
        g_a += g_color[c] * (rgb[c] * T_i - b.behind_rgb[c] / one_minus);
        b.behind_rgb[c] += rgb[c] * w;
    }
    *g_z = g_depth * w;
    g_a += g_depth * (z * T_i - b.behind_depth / one_minus) + g_alpha * b.T_final / one_minus;
    b.behind_depth += z * w;
    b.T = T_i;
    return g_a;
}

// alpha = min(0.99, o * exp(power)), power = -(a dx^2 + c dy^2)/2 - b dx dy, d = mean - pixel centre. The cap has
// no gradient; a splat that was skipped (alpha 0) gets none either.
SPLAT_HD void alpha_backward(const float mean[2], const float conic[3], float opacity, float px, float py,
                             float g_a, float g_mean[2], float g_conic[3], float* g_opacity) {
    float dx = mean[0] - px, dy = mean[1] - py;
    float power = -0.5f * (conic[0] * dx * dx + conic[2] * dy * dy) - conic[1] * dx * dy;
    float G = expf(power);
    float a = opacity * G;
    g_mean[0] = g_mean[1] = g_conic[0] = g_conic[1] = g_conic[2] = 0.f;
    *g_opacity = 0.f;
    if (power > 0.f || a > ALPHA_MAX || fminf(ALPHA_MAX, a) < ALPHA_MIN) return;
    float g_power = g_a * a;
    *g_opacity = g_a * G;
    g_mean[0] = g_power * (-(conic[0] * dx + conic[1] * dy));
    g_mean[1] = g_power * (-(conic[2] * dy + conic[1] * dx));
    g_conic[0] = g_power * (-0.5f * dx * dx);
    g_conic[1] = g_power * (-dx * dy);
    g_conic[2] = g_power * (-0.5f * dy * dy);
}

}  // namespace splat
