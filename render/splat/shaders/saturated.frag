#version 430
// Between batches of splats: mark pixels whose transmittance fell below the reference's stop threshold by writing
// depth 0, so the depth test rejects every later (farther) fragment there before it is shaded.
uniform sampler2D color_tex;
uniform float t_min;

void main() {
    if (1.0 - texelFetch(color_tex, ivec2(gl_FragCoord.xy), 0).a >= t_min) discard;
}
