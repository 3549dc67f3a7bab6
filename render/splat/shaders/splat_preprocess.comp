#version 430
// Per-splat preprocessing of the "gl" backend: the reference's projection (render/splat/projection.py), screen
// filter, SH colour and visibility, once per Gaussian per frame (Gaussians base..base+count of one dispatch).
// Input: one RGBA32F texture, `stride` texels per Gaussian: (mean, opacity), (Σxx Σxy Σxz Σyy), (Σyz Σzz 0 0), then
// the SH coefficients (or an RGB colour) packed 4 floats per texel. Texel fetches, not storage-buffer reads: on
// llvmpipe every scalar buffer read is a bounds-checked gather and the preprocessing of 1M splats took 180 ms
// instead of 45. Each splat becomes 4 uvec4 (floats as bits):
//   [0] mean2d.x, mean2d.y, opacity after the filter, view z
//   [1] conic a, b, c, rectangle x-range (x0 | x1 << 16, whole pixels)
//   [2] r, g, b,       rectangle y-range (y0 | y1 << 16); an empty range means "not drawn"
//   [3] the cut-off ellipse's two semi-axis vectors, or 0 when the triangle around the rectangle is smaller
// and, for the host, mean2d (the reference's means2d), the radius (0 = culled) and whether it draws at all.
layout(local_size_x = 128) in;

uniform sampler2D gauss;  // TEX_WIDTH texels wide (a power of two), row-major
uniform int stride;
layout(std430, binding = 4) writeonly buffer SplatB { uvec4 splat_[]; };
layout(std430, binding = 5) writeonly buffer ScreenB { vec4 screen_[]; };  // mean2d, radius, drawn (0/1)

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
uniform bool raw_rgb;

const float ALPHA_MIN = 1.0 / 255.0;
const float MAX_RADIUS = 16777216.0;

void hide(uint gi) {
    for (uint k = 0u; k < 4u; k++) splat_[4u * gi + k] = uvec4(0u);
}

vec4 texel(uint gi, int j) {
    int t = int(gi) * stride + j;
    return texelFetch(gauss, ivec2(t & (TEX_WIDTH - 1), t / TEX_WIDTH), 0);
}

float F[48];  // this splat's SH coefficients, k-th coefficient of channel c at 3k + c
vec3 coef(int k) { return vec3(F[3 * k], F[3 * k + 1], F[3 * k + 2]); }

vec3 color_of(uint gi, vec3 m) {
    int used = raw_rgb ? 1 : (degree + 1) * (degree + 1);
    for (int j = 0; 4 * j < 3 * used; j++) {
        vec4 v = texel(gi, 3 + j);
        F[4 * j] = v.x; F[4 * j + 1] = v.y; F[4 * j + 2] = v.z; F[4 * j + 3] = v.w;
    }
    if (raw_rgb) return coef(0);
    vec3 d = m - campos;
    d = d / max(length(d), 1e-12);
    float x = d.x, y = d.y, z = d.z;
    vec3 c = 0.28209479177387814 * coef(0);
    if (degree >= 1) {
        c += -0.4886025119029199 * y * coef(1) + 0.4886025119029199 * z * coef(2)
             - 0.4886025119029199 * x * coef(3);
    }
    if (degree >= 2) {
        float xx = x * x, yy = y * y, zz = z * z;
        c += 1.0925484305920792 * x * y * coef(4) - 1.0925484305920792 * y * z * coef(5)
             + 0.31539156525252005 * (2.0 * zz - xx - yy) * coef(6) - 1.0925484305920792 * x * z * coef(7)
             + 0.5462742152960396 * (xx - yy) * coef(8);
        if (degree >= 3) {
            c += -0.5900435899266435 * y * (3.0 * xx - yy) * coef(9)
                 + 2.890611442640554 * x * y * z * coef(10)
                 - 0.4570457994644658 * y * (4.0 * zz - xx - yy) * coef(11)
                 + 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * coef(12)
                 - 0.4570457994644658 * x * (4.0 * zz - xx - yy) * coef(13)
                 + 1.445305721320277 * z * (xx - yy) * coef(14)
                 - 0.5900435899266435 * x * (xx - 3.0 * yy) * coef(15);
        }
    }
    return max(c + 0.5, vec3(0.0));
}

void main() {
    if (gl_GlobalInvocationID.x >= count) return;
    uint gi = base + gl_GlobalInvocationID.x;
    screen_[gi] = vec4(0.0);

    vec4 m_o = texel(gi, 0);
    vec3 m = m_o.xyz;
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
    vec4 s0 = texel(gi, 1), s1 = texel(gi, 2);  // Σ: xx xy xz yy, yz zz
    mat3 S = mat3(s0.x, s0.y, s0.z,
                  s0.y, s0.w, s1.x,
                  s0.z, s1.x, s1.y);
    vec3 st0 = S * t0, st1 = S * t1;
    float a = dot(t0, st0), b = dot(t0, st1), c = dot(t1, st1);

    // Screen filter: dilation, and Mip-Splatting's compensation with its clamps.
    float op = m_o.w;
    float a1 = a + dilation, c1 = c + dilation;
    if (compensate) {
        float det0r = a * c - b * b, det1r = a1 * c1 - b * b;
        float k = sqrt(max(det0r, 1e-6) / (max(det1r, 1e-6) + 1e-6) + 1e-6);
        op *= (det0r <= 1e-6 || det1r <= 1e-6) ? 0.0 : k;
    }
    vec2 mean = vec2(fx * p.x / p.z + intr.z, fy * p.y / p.z + intr.w);
    screen_[gi] = vec4(mean, 0.0, 0.0);
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
    screen_[gi].z = radius;

    // Rectangle = the α ≥ 1/255 box (a hair of slack for rounding; the fragment test is exact) ∩ tile rectangle
    // ∩ viewport: the pixels the reference can composite this splat into.
    if (!(op >= ALPHA_MIN)) { hide(gi); return; }
    float rr = 2.0 * log(255.0 * op);
    vec2 half_box = sqrt(max(rr, 0.0) * vec2(a1, c1)) * 1.001 + 0.01;
    vec2 q0 = max(max(floor(mean - half_box), lo * float(tile)), vec2(0.0));
    vec2 q1 = min(min(ceil(mean + half_box), hi * float(tile)), vec2(size));
    if (!(q1.x > q0.x && q1.y > q0.y)) { hide(gi); return; }
    uvec2 u0 = uvec2(q0), u1 = uvec2(q1);
    screen_[gi].w = 1.0;

    // The cut-off ellipse's semi-axes (eigenvectors of the filtered covariance, scaled by √(rr·λ), same slack): the
    // vertex shader draws whichever single triangle is smaller, the one around this ellipse or the one around the
    // rectangle, and the fragment shader clips it to the rectangle.
    float disc = sqrt(max(mid * mid - det, 0.0));
    float l1 = mid + disc, l2 = max(mid - disc, 0.0);
    vec2 e1 = abs(b) > 1e-7 * mid ? normalize(vec2(b, l1 - a1)) : (a1 >= c1 ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
    vec2 ax = sqrt(max(rr, 0.0) * vec2(l1, l2)) * 1.001 + 0.01;
    vec4 axes = vec4(ax.x * e1, ax.y * vec2(-e1.y, e1.x));
    if (5.196152 * ax.x * ax.y >= 2.0 * (q1.x - q0.x) * (q1.y - q0.y)) axes = vec4(0.0);

    vec3 rgb = color_of(gi, m);
    splat_[4u * gi] = floatBitsToUint(vec4(mean, op, p.z));
    splat_[4u * gi + 1u] = uvec4(floatBitsToUint(conic), u0.x | (u1.x << 16));
    splat_[4u * gi + 2u] = uvec4(floatBitsToUint(rgb), u0.y | (u1.y << 16));
    splat_[4u * gi + 3u] = floatBitsToUint(axes);
}
