#version 430
// One quad (the clip rectangle, or the ellipse's rotated box; 6 vertices: llvmpipe runs instances one by one, plain triangles in batches) per splat, in depth
// order: vertices 6k..6k+5 draw splat order[first + k].
layout(std430, binding = 4) readonly buffer SplatB { uvec4 splat_[]; };
layout(std430, binding = 6) readonly buffer OrderB { uint order_[]; };

uniform uint first;
uniform vec2 size;

flat out vec4 v_mean_op_z;
flat out vec3 v_conic;
flat out vec3 v_rgb;
flat out vec4 v_clip;

void main() {
    uint k = uint(gl_VertexID) / 6u, c = uint(gl_VertexID) - 6u * k;
    uint i = order_[first + k];
    uvec4 s0 = splat_[4u * i], s1 = splat_[4u * i + 1u], s2 = splat_[4u * i + 2u];
    vec4 axes = uintBitsToFloat(splat_[4u * i + 3u]);
    vec2 lo = vec2(float(s1.w & 0xffffu), float(s2.w & 0xffffu));
    vec2 hi = vec2(float(s1.w >> 16), float(s2.w >> 16));
    // two triangles (0,1,2) (2,1,3) of the corners (x, y) = (c & 1, c >> 1)
    const uint corners[6] = uint[6](0u, 1u, 2u, 2u, 1u, 3u);
    uint q = corners[c];
    vec2 corner = vec2(float(q & 1u), float(q >> 1));
    vec2 px = mix(lo, hi, corner);  // image pixels, y down; an empty range gives a zero-area quad
    v_clip = vec4(lo, hi);
    if (axes != vec4(0.0)) px = uintBitsToFloat(s0.xy) + (2.0 * corner.x - 1.0) * axes.xy + (2.0 * corner.y - 1.0) * axes.zw;
    gl_Position = vec4(2.0 * px.x / size.x - 1.0, 1.0 - 2.0 * px.y / size.y, 0.0, 1.0);
    v_mean_op_z = uintBitsToFloat(s0);
    v_conic = uintBitsToFloat(s1.xyz);
    v_rgb = uintBitsToFloat(s2.xyz);
}
