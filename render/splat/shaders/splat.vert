#version 430
// One triangle per splat, in depth order: vertices 3k..3k+2 draw splat order[first + k]. The triangle is the
// smaller of two that contain every pixel the splat can touch: the one circumscribing its cut-off ellipse
// (area 3√3·ab) and the one around its rectangle (legs twice the sides, area 2wh); the fragment shader clips it to
// the rectangle. A single triangle: on a software rasterizer the cost is per primitive and per covered pixel, and
// two-triangle quads or point sprites (squares, split into two triangles internally) cost more of one or the other.
layout(std430, binding = 4) readonly buffer SplatB { uvec4 splat_[]; };
layout(std430, binding = 6) readonly buffer OrderB { uint order_[]; };

uniform uint first;
uniform vec2 size;

flat out vec4 v_mean_op_z;
flat out vec3 v_conic;
flat out vec3 v_rgb;
flat out vec4 v_clip;

const vec2 CIRCLE_TRI[3] = vec2[3](vec2(0.0, 2.0), vec2(-1.7320508, -1.0), vec2(1.7320508, -1.0));
const vec2 RECT_TRI[3] = vec2[3](vec2(0.0, 0.0), vec2(2.0, 0.0), vec2(0.0, 2.0));

void main() {
    uint k = uint(gl_VertexID) / 3u, c = uint(gl_VertexID) - 3u * k;
    uint i = order_[first + k];
    uvec4 s0 = splat_[4u * i], s1 = splat_[4u * i + 1u], s2 = splat_[4u * i + 2u];
    vec4 axes = uintBitsToFloat(splat_[4u * i + 3u]);
    vec2 lo = vec2(float(s1.w & 0xffffu), float(s2.w & 0xffffu));
    vec2 hi = vec2(float(s1.w >> 16), float(s2.w >> 16));
    v_clip = vec4(lo, hi);
    v_mean_op_z = uintBitsToFloat(s0);
    v_conic = uintBitsToFloat(s1.xyz);
    v_rgb = uintBitsToFloat(s2.xyz);
    #define UNUSED
    vec2 px;  // image pixels, y down; an empty rectangle gives a zero-area triangle
    if (axes != vec4(0.0))
        px = v_mean_op_z.xy + CIRCLE_TRI[c].x * axes.xy + CIRCLE_TRI[c].y * axes.zw;
    else
        px = lo + RECT_TRI[c] * (hi - lo);
    gl_Position = vec4(2.0 * px.x / size.x - 1.0, 1.0 - 2.0 * px.y / size.y, 0.0, 1.0);
}
