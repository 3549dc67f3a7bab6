#version 430
// Splats in depth order: vertex k of a point draw, or corners 4k..4k+3 of an indexed quad draw, is splat
// order[first + k]. A point sprite covers the rectangle's longer side (the fragment shader clips it to the
// rectangle): one primitive instead of two triangles, which is what a software rasterizer spends its time on.
// Quads serve splats larger than the largest point size.
layout(std430, binding = 4) readonly buffer SplatB { uvec4 splat_[]; };
layout(std430, binding = 6) readonly buffer OrderB { uint order_[]; };

uniform uint first;
uniform vec2 size;
uniform bool points;

flat out vec4 v_mean_op_z;
flat out vec3 v_conic;
flat out vec3 v_rgb;
flat out vec4 v_clip;

void main() {
    uint k = points ? uint(gl_VertexID) : uint(gl_VertexID) >> 2;
    uint i = order_[first + k];
    uvec4 s0 = splat_[3u * i], s1 = splat_[3u * i + 1u], s2 = splat_[3u * i + 2u];
    vec2 lo = vec2(float(s1.w & 0xffffu), float(s2.w & 0xffffu));
    vec2 hi = vec2(float(s1.w >> 16), float(s2.w >> 16));
    v_clip = vec4(lo, hi);
    v_mean_op_z = uintBitsToFloat(s0);
    v_conic = uintBitsToFloat(s1.xyz);
    v_rgb = uintBitsToFloat(s2.xyz);
    if (!(hi.x > lo.x && hi.y > lo.y)) {  // not drawn: outside the clip volume (a point there is discarded)
        gl_Position = vec4(2.0, 2.0, 2.0, 1.0);
        gl_PointSize = 1.0;
        return;
    }
    vec2 px;  // image pixels, y down
    if (points) {
        px = 0.5 * (lo + hi);
        gl_PointSize = max(hi.x - lo.x, hi.y - lo.y);
    } else {
        uint q = uint(gl_VertexID) & 3u;
        px = mix(lo, hi, vec2(float(q & 1u), float(q >> 1)));
        gl_PointSize = 1.0;
    }
    gl_Position = vec4(2.0 * px.x / size.x - 1.0, 1.0 - 2.0 * px.y / size.y, 0.0, 1.0);
}
