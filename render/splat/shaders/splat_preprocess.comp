#version 430
// Per-splat preprocessing of the "gl" backend: the reference's projection (render/splat/projection.py), screen
// filter, SH colour and visibility, once per Gaussian per frame. Inputs are bound per chunk (base..base+count);
// outputs are indexed globally. Each splat becomes 4 uvec4 (floats as bits):
//   [0] mean2d.x, mean2d.y, opacity after the filter, view z
//   [1] conic a, b, c, clip x-range (x0 | x1 << 16, whole pixels)
//   [2] r, g, b,       clip y-range (y0 | y1 << 16); an empty range means "not drawn"
//   [3] the ellipse's half-axes (u, v) when its oriented box is clearly smaller than the clip rectangle, else 0:
//       the vertex shader then draws that rotated quad and the fragment shader clips it to the rectangle
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer MeansB { float means_[]; };
layout(std430, binding = 1) readonly buffer CovB { float cov_[]; };     // xx xy xz yy yz zz
layout(std430, binding = 2) readonly buffer OpacB { float opac_[]; };
layout(std430, binding = 3) readonly buffer ShB { float sh_[]; };       // (count, coeffs, 3)
layout(std430, binding = 4) writeonly buffer SplatB { uvec4 splat_[]; };
layout(std430, binding = 5) writeonly buffer ScreenB { float screen_[]; };  // mean2d.x, mean2d.y, radius

uniform uint base;
uniform uint count;
uniform vec3 R0;
uniform vec3 R1;
uniform vec3 R2;
uniform vec3 T;
uniform vec3 campos;
uniform vec4 intr;      // fx fy cx cy
uniform vec4 lims;      // x+ x- y+ y- limits of x/z, y/z for the Jacobian clamp
uniform ivec2 size;
uniform int tile;
uniform float near_z;
uniform float dilation;
uniform bool compensate;
uniform int degree;
uniform int coeffs;
uniform bool raw_rgb;

const float ALPHA_MIN = 1.0 / 255.0;
const float MAX_RADIUS = 16777216.0;

void hide(uint gi) {
    for (uint k = 0u; k < 4u; k++) splat_[4u * gi + k] = uvec4(0u);
}

vec3 coef(uint li, int k) {
    uint o = (li * uint(coeffs) + uint(k)) * 3u;
    return vec3(sh_[o], sh_[o + 1u], sh_[o + 2u]);
}

vec3 color_of(uint li, vec3 m) {
    if (raw_rgb) return coef(li, 0);
    vec3 d = m - campos;
    d = d / max(length(d), 1e-12);
    float x = d.x, y = d.y, z = d.z;
    vec3 c = 0.28209479177387814 * coef(li, 0);
    if (degree >= 1) {
        c += -0.4886025119029199 * y * coef(li, 1) + 0.4886025119029199 * z * coef(li, 2)
             - 0.4886025119029199 * x * coef(li, 3);
    }
    if (degree >= 2) {
        float xx = x * x, yy = y * y, zz = z * z;
        c += 1.0925484305920792 * x * y * coef(li, 4) - 1.0925484305920792 * y * z * coef(li, 5)
             + 0.31539156525252005 * (2.0 * zz - xx - yy) * coef(li, 6) - 1.0925484305920792 * x * z * coef(li, 7)
             + 0.5462742152960396 * (xx - yy) * coef(li, 8);
        if (degree >= 3) {
            c += -0.5900435899266435 * y * (3.0 * xx - yy) * coef(li, 9)
                 + 2.890611442640554 * x * y * z * coef(li, 10)
                 - 0.4570457994644658 * y * (4.0 * zz - xx - yy) * coef(li, 11)
                 + 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * coef(li, 12)
                 - 0.4570457994644658 * x * (4.0 * zz - xx - yy) * coef(li, 13)
                 + 1.445305721320277 * z * (xx - yy) * coef(li, 14)
                 - 0.5900435899266435 * x * (xx - 3.0 * yy) * coef(li, 15);
        }
    }
    return max(c + 0.5, vec3(0.0));
}

void main() {
    uint li = gl_GlobalInvocationID.x;
    if (li >= count) return;
    uint gi = base + li;
    screen_[3u * gi] = 0.0;
    screen_[3u * gi + 1u] = 0.0;
    screen_[3u * gi + 2u] = 0.0;

    vec3 m = vec3(means_[3u * li], means_[3u * li + 1u], means_[3u * li + 2u]);
    vec3 p = vec3(dot(R0, m), dot(R1, m), dot(R2, m)) + T;
    if (!(p.z > near_z)) { hide(gi); return; }

    // EWA: Jacobian with the reference's frustum clamp (the clamped coordinate replaces x or y only outside).
    float rx = p.x / p.z, ry = p.y / p.z;
    float tx = (rx > lims.x || rx < -lims.y) ? clamp(rx, -lims.y, lims.x) * p.z : p.x;
    float ty = (ry > lims.z || ry < -lims.w) ? clamp(ry, -lims.w, lims.z) * p.z : p.y;
    float fx = intr.x, fy = intr.y;
    vec3 j0 = vec3(fx / p.z, 0.0, -fx * tx / (p.z * p.z));
    vec3 j1 = vec3(0.0, fy / p.z, -fy * ty / (p.z * p.z));
    // rows of J·W (W = the world-to-camera rotation, rows R0..R2)
    vec3 t0 = j0.x * R0 + j0.y * R1 + j0.z * R2;
    vec3 t1 = j1.x * R0 + j1.y * R1 + j1.z * R2;
    uint o6 = 6u * li;
    mat3 S = mat3(cov_[o6], cov_[o6 + 1u], cov_[o6 + 2u],
                  cov_[o6 + 1u], cov_[o6 + 3u], cov_[o6 + 4u],
                  cov_[o6 + 2u], cov_[o6 + 4u], cov_[o6 + 5u]);
    vec3 s0 = S * t0, s1 = S * t1;
    float a = dot(t0, s0), b = dot(t0, s1), c = dot(t1, s1);

    // Screen filter: dilation, and Mip-Splatting's compensation with its clamps.
    float op = opac_[li];
    float a1 = a + dilation, c1 = c + dilation;
    if (compensate) {
        float det0r = a * c - b * b, det1r = a1 * c1 - b * b;
        float k = sqrt(max(det0r, 1e-6) / (max(det1r, 1e-6) + 1e-6) + 1e-6);
        op *= (det0r <= 1e-6 || det1r <= 1e-6) ? 0.0 : k;
    }
    vec2 mean = vec2(fx * p.x / p.z + intr.z, fy * p.y / p.z + intr.w);
    screen_[3u * gi] = mean.x;
    screen_[3u * gi + 1u] = mean.y;
    float det = a1 * c1 - b * b;
    if (!(det > 0.0)) { hide(gi); return; }
    vec3 conic = vec3(c1 / det, -b / det, a1 / det);

    // Radius (3σ of the larger eigenvalue) and the tile rectangle the reference bins the splat into.
    float mid = 0.5 * (a1 + c1);
    float lam = mid + sqrt(max(mid * mid - det, 0.1));
    float radius = ceil(3.0 * sqrt(max(lam, 0.0)));
    if (isnan(radius) || isinf(radius) || radius <= 0.0) { hide(gi); return; }
    radius = min(radius, MAX_RADIUS);
    vec2 grid = vec2((size.x + tile - 1) / tile, (size.y + tile - 1) / tile);
    vec2 lo = min(max(floor((mean - radius) / float(tile)), 0.0), grid);
    vec2 hi = min(max(ceil((mean + radius) / float(tile)), 0.0), grid);
    if (!(hi.x > lo.x && hi.y > lo.y)) { hide(gi); return; }
    screen_[3u * gi + 2u] = radius;

    // Quad = the α ≥ 1/255 box (a hair of slack for rounding; the fragment test is exact) ∩ tile rectangle ∩ viewport.
    if (!(op >= ALPHA_MIN)) { hide(gi); return; }
    float rr = 2.0 * log(255.0 * op);
    vec2 half_box = sqrt(max(rr, 0.0) * vec2(a1, c1)) * 1.001 + 0.01;
    vec2 q0 = max(max(floor(mean - half_box), lo * float(tile)), vec2(0.0));
    vec2 q1 = min(min(ceil(mean + half_box), hi * float(tile)), vec2(size));
    if (!(q1.x > q0.x && q1.y > q0.y)) { hide(gi); return; }
    uvec2 u0 = uvec2(q0), u1 = uvec2(q1);

    // The oriented box of the same ellipse (eigenvectors of the filtered covariance); worth it for thin,
    // tilted splats, whose axis-aligned box is mostly empty.
    float disc = sqrt(max(mid * mid - det, 0.0));
    float l1 = mid + disc, l2 = max(mid - disc, 0.0);
    vec2 e1 = abs(b) > 1e-12 * mid ? normalize(vec2(b, l1 - a1)) : (a1 >= c1 ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
    vec2 h = sqrt(max(rr, 0.0) * vec2(l1, l2)) * 1.001 + 0.01;
    vec4 axes = vec4(0.0);
    if (4.0 * h.x * h.y < 0.8 * (q1.x - q0.x) * (q1.y - q0.y)) axes = vec4(h.x * e1, h.y * vec2(-e1.y, e1.x));

    vec3 rgb = color_of(li, m);
    splat_[4u * gi] = floatBitsToUint(vec4(mean, op, p.z));
    splat_[4u * gi + 1u] = uvec4(floatBitsToUint(conic), u0.x | (u1.x << 16));
    splat_[4u * gi + 2u] = uvec4(floatBitsToUint(rgb), u0.y | (u1.y << 16));
    splat_[4u * gi + 3u] = floatBitsToUint(axes);
}
