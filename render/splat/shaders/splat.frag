#version 430
// The reference's per-pixel rule at pixel centres; blending does front-to-back "under" compositing:
// dst += (1 - dst.a) * (α·rgb, α) (ONE_MINUS_DST_ALPHA, ONE), so dst.a = 1 - T.
// Early tests: pixels frozen by saturated.frag are rejected before shading (and before the count's atomic).
layout(early_fragment_tests) in;

flat in vec4 v_mean_op_z;
flat in vec3 v_conic;
flat in vec3 v_rgb;
flat in vec4 v_clip;  // x0 y0 x1 y1: the triangle is larger than the splat's rectangle

uniform float height;
// The per-pixel count is compiled in only when asked for: the mere presence of an image atomic makes llvmpipe's
// fragment stage ~15% slower, the atomics themselves another ~30%.
#ifdef COUNT
layout(r32ui, binding = 0) uniform coherent uimage2D counts;
#endif

layout(location = 0) out vec4 o_color;
layout(location = 1) out vec4 o_depth;

void main() {
    vec2 pix = vec2(gl_FragCoord.x, height - gl_FragCoord.y);
    if (any(lessThan(pix, v_clip.xy)) || any(greaterThanEqual(pix, v_clip.zw))) discard;
    vec2 d = v_mean_op_z.xy - pix;
    float power = -0.5 * (v_conic.x * d.x * d.x + v_conic.z * d.y * d.y) - v_conic.y * d.x * d.y;
    if (power > 0.0) discard;
    float alpha = min(0.99, v_mean_op_z.z * exp(power));
    if (alpha < 1.0 / 255.0) discard;
    o_color = vec4(v_rgb * alpha, alpha);
    o_depth = vec4(v_mean_op_z.w * alpha, 0.0, 0.0, alpha);
#ifdef COUNT
    imageAtomicAdd(counts, ivec2(gl_FragCoord.xy), 1u);
#endif
}
