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

// Rotation matrix (row-major) of a wxyz quaternion, normalised here; returns its norm (floored at 1e-12) and the
// unit quaternion in `unit`, which the backward needs.
SPLAT_HD float quat_to_rotmat(const float q_in[4], float R[9], float unit[4]) {
    float n = sqrtf(q_in[0] * q_in[0] + q_in[1] * q_in[1] + q_in[2] * q_in[2] + q_in[3] * q_in[3]);
    n = n > 1e-12f ? n : 1e-12f;
    float w = q_in[0] / n, x = q_in[1] / n, y = q_in[2] / n, z = q_in[3] / n;
    R[0] = 1.f - 2.f * (y * y + z * z); R[1] = 2.f * (x * y - w * z); R[2] = 2.f * (x * z + w * y);
    R[3] = 2.f * (x * y + w * z); R[4] = 1.f - 2.f * (x * x + z * z); R[5] = 2.f * (y * z - w * x);
    R[6] = 2.f * (x * z - w * y); R[7] = 2.f * (y * z + w * x); R[8] = 1.f - 2.f * (x * x + y * y);
    unit[0] = w; unit[1] = x; unit[2] = y; unit[3] = z;
    return n;
}

// Sigma = R S S^T R^T from a wxyz quaternion and activated scales; xx xy xz yy yz zz.
SPLAT_HD void covariance3d(const float q_in[4], const float s[3], float out[6]) {
    float R[9], unit[4];
    quat_to_rotmat(q_in, R, unit);
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

// The preprocess kernel's per-Gaussian outputs: f = mean(2) depth conic(3) cov(3) opacity; k = radius tile_min(2)
// tile_max(2). Binning, compositing and the backward read them back.
SPLAT_HD void store_projected(const Projected& p, float* f, int* k) {
    f[0] = p.mean[0]; f[1] = p.mean[1]; f[2] = p.depth;
    f[3] = p.conic[0]; f[4] = p.conic[1]; f[5] = p.conic[2];
    f[6] = p.cov[0]; f[7] = p.cov[1]; f[8] = p.cov[2]; f[9] = p.opacity;
    k[0] = p.radius; k[1] = p.tile_min[0]; k[2] = p.tile_min[1]; k[3] = p.tile_max[0]; k[4] = p.tile_max[1];
}

SPLAT_HD Projected load_projected(const float* f, const int* k) {
    Projected p;
    p.mean[0] = f[0]; p.mean[1] = f[1]; p.depth = f[2];
    p.conic[0] = f[3]; p.conic[1] = f[4]; p.conic[2] = f[5];
    p.cov[0] = f[6]; p.cov[1] = f[7]; p.cov[2] = f[8]; p.opacity = f[9];
    p.radius = k[0];
    p.tile_min[0] = k[1]; p.tile_min[1] = k[2]; p.tile_max[0] = k[3]; p.tile_max[1] = k[4];
    return p;
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

// ----- projection and SH backward ----------------------------------------------------------------------------------
// dL/d(mean, quaternion, scales, opacity) of one drawn Gaussian from dL/d(mean2d, conic, opacity after the filter),
// recomputing the forward's intermediates. Follows the reference's autograd exactly: the clamped Jacobian coordinate
// is a constant, b of the 2D covariance is its [0][1] entry, the filter's clamps pass no gradient where they bite.
SPLAT_HD void project_backward(const float m[3], const float q_in[4], const float s[3], float opacity,
                               const Camera& cam, const float g_mean2d[2], const float g_conic[3], float g_op,
                               float g_m[3], float g_q[4], float g_s[3], float* g_opacity) {
    const float* W = cam.R;
    float x = W[0] * m[0] + W[1] * m[1] + W[2] * m[2] + cam.t[0];
    float y = W[3] * m[0] + W[4] * m[1] + W[5] * m[2] + cam.t[1];
    float z = W[6] * m[0] + W[7] * m[1] + W[8] * m[2] + cam.t[2];
    float rx = x / z, ry = y / z;
    bool clamp_x = rx > cam.lim[0] || rx < -cam.lim[1], clamp_y = ry > cam.lim[2] || ry < -cam.lim[3];
    float tx = clamp_x ? fminf(fmaxf(rx, -cam.lim[1]), cam.lim[0]) * z : x;
    float ty = clamp_y ? fminf(fmaxf(ry, -cam.lim[3]), cam.lim[2]) * z : y;
    float J[6] = {cam.fx / z, 0.f, -cam.fx * tx / (z * z), 0.f, cam.fy / z, -cam.fy * ty / (z * z)};
    float T[6];  // J·W (2x3)
    for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 3; ++k) T[3 * r + k] = J[3 * r] * W[k] + J[3 * r + 1] * W[3 + k] + J[3 * r + 2] * W[6 + k];

    // Sigma = M M^T, M = R(q^) diag(s)
    float R[9], qu[4];
    float n = quat_to_rotmat(q_in, R, qu);
    float qw = qu[0], qx = qu[1], qy = qu[2], qz = qu[3];
    float M[9], S[9];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) M[3 * i + j] = R[3 * i + j] * s[j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) S[3 * i + j] = M[3 * i] * M[3 * j] + M[3 * i + 1] * M[3 * j + 1] + M[3 * i + 2] * M[3 * j + 2];
    float TS[6];  // T·Sigma
    for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 3; ++k)
            TS[3 * r + k] = T[3 * r] * S[k] + T[3 * r + 1] * S[3 + k] + T[3 * r + 2] * S[6 + k];
    float a = TS[0] * T[0] + TS[1] * T[1] + TS[2] * T[2];
    float b = TS[0] * T[3] + TS[1] * T[4] + TS[2] * T[5];
    float c = TS[3] * T[3] + TS[4] * T[4] + TS[5] * T[5];
    float a1 = a + cam.dilation, c1 = c + cam.dilation;

    // opacity and Mip-Splatting's compensation
    float coef = 1.f, g_a = 0.f, g_b = 0.f, g_c = 0.f;
    if (cam.compensate) {
        float det0r = a * c - b * b, det1r = a1 * c1 - b * b;
        bool zeroed = det0r <= 1e-6f || det1r <= 1e-6f;
        float det0 = fmaxf(det0r, 1e-6f), det1 = fmaxf(det1r, 1e-6f);
        float ratio = det0 / (det1 + 1e-6f);
        coef = zeroed ? 0.f : sqrtf(ratio + 1e-6f);
        if (!zeroed) {
            float g_coef = g_op * opacity;
            float g_ratio = g_coef * 0.5f / sqrtf(ratio + 1e-6f);
            float g_det0 = g_ratio / (det1 + 1e-6f), g_det1 = -g_ratio * det0 / ((det1 + 1e-6f) * (det1 + 1e-6f));
            if (det0r > 1e-6f) { g_a += g_det0 * c; g_c += g_det0 * a; g_b += -2.f * g_det0 * b; }
            if (det1r > 1e-6f) { g_a += g_det1 * c1; g_c += g_det1 * a1; g_b += -2.f * g_det1 * b; }
        }
    }
    *g_opacity = g_op * coef;

    // conic = (c1, -b, a1) / det
    float det = a1 * c1 - b * b, d2 = det * det;
    g_a += g_conic[0] * (-c1 * c1 / d2) + g_conic[1] * (b * c1 / d2) + g_conic[2] * (1.f / det - a1 * c1 / d2);
    g_c += g_conic[0] * (1.f / det - c1 * a1 / d2) + g_conic[1] * (b * a1 / d2) + g_conic[2] * (-a1 * a1 / d2);
    g_b += g_conic[0] * (2.f * b * c1 / d2) + g_conic[1] * (-1.f / det - 2.f * b * b / d2) +
           g_conic[2] * (2.f * a1 * b / d2);

    // cov2 = T Sigma T^T with a = [0][0], b = [0][1], c = [1][1]: G = [[g_a, g_b], [0, g_c]]
    // dL/dT = (G + G^T) T Sigma;  dL/dSigma + its transpose = T^T (G + G^T) T
    float Gs[4] = {2.f * g_a, g_b, g_b, 2.f * g_c};
    float gT[6];
    for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 3; ++k) gT[3 * r + k] = Gs[2 * r] * TS[k] + Gs[2 * r + 1] * TS[3 + k];
    float gS[9];  // dL/dSigma + (dL/dSigma)^T
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            gS[3 * i + j] = T[i] * (Gs[0] * T[j] + Gs[1] * T[3 + j]) + T[3 + i] * (Gs[2] * T[j] + Gs[3] * T[3 + j]);
    // Sigma = M M^T: dL/dM = (dL/dSigma + dL/dSigma^T) M
    float gR[9];
    for (int j = 0; j < 3; ++j) g_s[j] = 0.f;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            float gm = gS[3 * i] * M[j] + gS[3 * i + 1] * M[3 + j] + gS[3 * i + 2] * M[6 + j];
            gR[3 * i + j] = gm * s[j];
            g_s[j] += gm * R[3 * i + j];
        }
    float gw = 2.f * (-gR[1] * qz + gR[2] * qy + gR[3] * qz - gR[5] * qx - gR[6] * qy + gR[7] * qx);
    float gx = 2.f * (gR[1] * qy + gR[2] * qz + gR[3] * qy - 2.f * gR[4] * qx - gR[5] * qw + gR[6] * qz + gR[7] * qw -
                      2.f * gR[8] * qx);
    float gy = 2.f * (-2.f * gR[0] * qy + gR[1] * qx + gR[2] * qw + gR[3] * qx + gR[5] * qz - gR[6] * qw + gR[7] * qz -
                      2.f * gR[8] * qy);
    float gz = 2.f * (-2.f * gR[0] * qz - gR[1] * qw + gR[2] * qx + gR[3] * qw - 2.f * gR[4] * qz + gR[5] * qy +
                      gR[6] * qx + gR[7] * qy);
    float dot = gw * qw + gx * qx + gy * qy + gz * qz;  // q^ = q / |q|
    g_q[0] = (gw - qw * dot) / n; g_q[1] = (gx - qx * dot) / n;
    g_q[2] = (gy - qy * dot) / n; g_q[3] = (gz - qz * dot) / n;

    // T = J W: dL/dJ = dL/dT W^T; J depends on z, and on x (y) through tx (ty) unless clamped
    float gJ[6];
    for (int r = 0; r < 2; ++r)
        for (int k = 0; k < 3; ++k) gJ[3 * r + k] = gT[3 * r] * W[3 * k] + gT[3 * r + 1] * W[3 * k + 1] +
                                                    gT[3 * r + 2] * W[3 * k + 2];
    float z2 = z * z, z3 = z2 * z;
    float g_x = 0.f, g_y = 0.f, g_z = 0.f;
    g_z += gJ[0] * (-cam.fx / z2) + gJ[4] * (-cam.fy / z2);
    g_z += gJ[2] * (2.f * cam.fx * tx / z3) + gJ[5] * (2.f * cam.fy * ty / z3);
    if (!clamp_x) g_x += gJ[2] * (-cam.fx / z2);
    if (!clamp_y) g_y += gJ[5] * (-cam.fy / z2);
    // mean2d = (fx x / z + cx, fy y / z + cy)
    g_x += g_mean2d[0] * cam.fx / z;
    g_y += g_mean2d[1] * cam.fy / z;
    g_z += -(g_mean2d[0] * cam.fx * x + g_mean2d[1] * cam.fy * y) / z2;
    // p = W m + t
    for (int k = 0; k < 3; ++k) g_m[k] = W[k] * g_x + W[3 + k] * g_y + W[6 + k] * g_z;
}

// dL/dcoefficients and dL/dmean (through the view direction) of the SH colour, from dL/drgb. `dir` is the
// unnormalised mean - camera centre.
SPLAT_HD void sh_backward(const float* coeffs, int degree, const float dir[3], const float g_rgb[3],
                          float* g_coeffs, float g_mean[3]) {
    float len = sqrtf(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    len = len > 1e-12f ? len : 1e-12f;
    float d[3] = {dir[0] / len, dir[1] / len, dir[2] / len};
    float rgb[3];
    sh_to_rgb(coeffs, degree, d, rgb);
    float g[3];  // through the clamp at 0 (no gradient where it bites)
    for (int ch = 0; ch < 3; ++ch) g[ch] = rgb[ch] > 0.f ? g_rgb[ch] : 0.f;
    float x = d[0], y = d[1], z = d[2];
    float xx = x * x, yy = y * y, zz = z * z;
    const float C2[5] = {1.0925484305920792f, -1.0925484305920792f, 0.31539156525252005f, -1.0925484305920792f,
                         0.5462742152960396f};
    const float C3[7] = {-0.5900435899266435f, 2.890611442640554f, -0.4570457994644658f, 0.3731763325901154f,
                         -0.4570457994644658f, 1.445305721320277f, -0.5900435899266435f};
    float basis[16], db[16][3];
    int k = 1;
    basis[0] = SH_C0; db[0][0] = db[0][1] = db[0][2] = 0.f;
    if (degree >= 1) {
        basis[1] = -SH_C1 * y; basis[2] = SH_C1 * z; basis[3] = -SH_C1 * x;
        db[1][0] = 0.f; db[1][1] = -SH_C1; db[1][2] = 0.f;
        db[2][0] = 0.f; db[2][1] = 0.f; db[2][2] = SH_C1;
        db[3][0] = -SH_C1; db[3][1] = 0.f; db[3][2] = 0.f;
        k = 4;
    }
    if (degree >= 2) {
        basis[4] = C2[0] * x * y; db[4][0] = C2[0] * y; db[4][1] = C2[0] * x; db[4][2] = 0.f;
        basis[5] = C2[1] * y * z; db[5][0] = 0.f; db[5][1] = C2[1] * z; db[5][2] = C2[1] * y;
        basis[6] = C2[2] * (2.f * zz - xx - yy); db[6][0] = -2.f * C2[2] * x; db[6][1] = -2.f * C2[2] * y;
        db[6][2] = 4.f * C2[2] * z;
        basis[7] = C2[3] * x * z; db[7][0] = C2[3] * z; db[7][1] = 0.f; db[7][2] = C2[3] * x;
        basis[8] = C2[4] * (xx - yy); db[8][0] = 2.f * C2[4] * x; db[8][1] = -2.f * C2[4] * y; db[8][2] = 0.f;
        k = 9;
        if (degree >= 3) {
            basis[9] = C3[0] * y * (3.f * xx - yy);
            db[9][0] = C3[0] * 6.f * x * y; db[9][1] = C3[0] * (3.f * xx - 3.f * yy); db[9][2] = 0.f;
            basis[10] = C3[1] * x * y * z;
            db[10][0] = C3[1] * y * z; db[10][1] = C3[1] * x * z; db[10][2] = C3[1] * x * y;
            basis[11] = C3[2] * y * (4.f * zz - xx - yy);
            db[11][0] = C3[2] * (-2.f * x * y); db[11][1] = C3[2] * (4.f * zz - xx - 3.f * yy);
            db[11][2] = C3[2] * 8.f * y * z;
            basis[12] = C3[3] * z * (2.f * zz - 3.f * xx - 3.f * yy);
            db[12][0] = C3[3] * (-6.f * x * z); db[12][1] = C3[3] * (-6.f * y * z);
            db[12][2] = C3[3] * (6.f * zz - 3.f * xx - 3.f * yy);
            basis[13] = C3[4] * x * (4.f * zz - xx - yy);
            db[13][0] = C3[4] * (4.f * zz - 3.f * xx - yy); db[13][1] = C3[4] * (-2.f * x * y);
            db[13][2] = C3[4] * 8.f * x * z;
            basis[14] = C3[5] * z * (xx - yy);
            db[14][0] = C3[5] * 2.f * x * z; db[14][1] = C3[5] * (-2.f * y * z); db[14][2] = C3[5] * (xx - yy);
            basis[15] = C3[6] * x * (xx - 3.f * yy);
            db[15][0] = C3[6] * (3.f * xx - 3.f * yy); db[15][1] = C3[6] * (-6.f * x * y); db[15][2] = 0.f;
            k = 16;
        }
    }
    float g_d[3] = {0.f, 0.f, 0.f};
    for (int i = 0; i < k; ++i) {
        float gi = 0.f;
        for (int ch = 0; ch < 3; ++ch) {
            g_coeffs[3 * i + ch] = basis[i] * g[ch];
            gi += coeffs[3 * i + ch] * g[ch];
        }
        for (int a = 0; a < 3; ++a) g_d[a] += gi * db[i][a];
    }
    float dot = g_d[0] * d[0] + g_d[1] * d[1] + g_d[2] * d[2];  // d = dir / |dir|
    for (int a = 0; a < 3; ++a) g_mean[a] = (g_d[a] - d[a] * dot) / len;
}

}  // namespace splat
