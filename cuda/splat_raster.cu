// Binning and tile compositing kernels of the forward pass, on the shared math of splat_math.cuh. The data flow is
// the one cpu_shim.cpp's render_cpu runs on the CPU (and tests/test_cuda_math.py checks against the torch
// reference): preprocess (splat_preprocess.cu) -> inclusive scan of tiles_touched -> emit_keys -> stable radix sort
// of the 64-bit keys (torch.sort on CUDA, or CUB) -> tile_ranges -> render_tiles; backward: render_tiles_backward
// -> preprocess_backward (splat_preprocess.cu).
#include "splat_math.cuh"

namespace {

// A batch of the tile's splats in shared memory: id, mean, conic, opacity, depth, colour of sorted entry k.
struct Batch {
    int id[256];
    float mean[256][2];
    float conic[256][3];
    float opacity[256];
    float depth[256];
    float rgb[256][3];
};

__device__ void stage(Batch& s, int lane, unsigned int g, const float* __restrict__ out_f,
                      const float* __restrict__ rgb) {
    const float* f = out_f + 10 * g;
    s.id[lane] = (int)g;
    s.mean[lane][0] = f[0]; s.mean[lane][1] = f[1];
    s.conic[lane][0] = f[3]; s.conic[lane][1] = f[4]; s.conic[lane][2] = f[5];
    s.opacity[lane] = f[9];
    s.depth[lane] = f[2];
    s.rgb[lane][0] = rgb[3 * g]; s.rgb[lane][1] = rgb[3 * g + 1]; s.rgb[lane][2] = rgb[3 * g + 2];
}

}  // namespace

// One thread per Gaussian: its keys go to [ends[i] - tiles_touched, ends[i]) (ends = inclusive scan).
extern "C" __global__ void emit_keys(int n, const float* __restrict__ out_f, const int* __restrict__ out_i,
                                     const int* __restrict__ ends, int grid_x, unsigned long long* __restrict__ keys,
                                     unsigned int* __restrict__ values) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    splat::Projected p = splat::load_projected(out_f + 10 * i, out_i + 5 * i);
    splat::emit_keys(p, (unsigned int)i, grid_x, keys, values, ends[i] - splat::tiles_touched(p));
}

// One thread per sorted key: tile t's splats are [ranges[2t], ranges[2t + 1]) (ranges zeroed beforehand).
extern "C" __global__ void tile_ranges(int count, const unsigned long long* __restrict__ keys,
                                       int* __restrict__ ranges) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count) return;
    int t = (int)(keys[k] >> 32);
    if (k == 0 || (int)(keys[k - 1] >> 32) != t) ranges[2 * t] = k;
    if (k == count - 1 || (int)(keys[k + 1] >> 32) != t) ranges[2 * t + 1] = k + 1;
}

// One block per tile, one thread per pixel (TILE x TILE). The tile's splats are read in batches into shared memory;
// the block stops when every pixel has hit the stop rule.
#ifndef TILE
#define TILE 16  // Batch holds TILE * TILE = 256 splats
#endif

namespace {

// Where a thread of the tile kernels works: block = tile, thread = pixel.
struct Site {
    int tile, px, py, lane;
    bool inside;  // the pixel is in the image (edge tiles are partly outside)
};

__device__ Site site(int width, int height) {
    Site at;
    at.tile = blockIdx.y * ((width + TILE - 1) / TILE) + blockIdx.x;
    at.px = blockIdx.x * TILE + threadIdx.x;
    at.py = blockIdx.y * TILE + threadIdx.y;
    at.lane = threadIdx.y * TILE + threadIdx.x;
    at.inside = at.px < width && at.py < height;
    return at;
}

}  // namespace
extern "C" __global__ void __launch_bounds__(TILE * TILE)
render_tiles(const int* __restrict__ ranges, const unsigned int* __restrict__ values, const float* __restrict__ out_f,
             const float* __restrict__ rgb, int width, int height, float bg_r, float bg_g, float bg_b,
             float* __restrict__ color, float* __restrict__ alpha, float* __restrict__ depth,
             int* __restrict__ count, int* __restrict__ last) {
    const Site at = site(width, height);
    const int tile = at.tile, px = at.px, py = at.py, lane = at.lane;
    const bool inside = at.inside;
    const int begin = ranges[2 * tile], end = ranges[2 * tile + 1];

    __shared__ Batch s;

    splat::Pixel pix = splat::pixel_start();
    pix.done = !inside;
    int last_k = begin;  // one past the last composited splat (the backward pass starts there)
    for (int base = begin; base < end; base += TILE * TILE) {
        if (__syncthreads_count(pix.done) == TILE * TILE) break;  // every pixel of the tile is finished
        int k = base + lane;
        if (k < end) stage(s, lane, values[k], out_f, rgb);
        __syncthreads();
        int batch = min(TILE * TILE, end - base);
        for (int j = 0; j < batch && !pix.done; ++j) {
            float a = splat::alpha_at(s.mean[j], s.conic[j], s.opacity[j], px + 0.5f, py + 0.5f);
            int before = pix.count;
            splat::composite(pix, a, s.rgb[j], s.depth[j]);
            if (pix.count > before) last_k = base + j + 1;
        }
    }
    if (inside) {
        int o = py * width + px;
        color[3 * o] = pix.rgb[0] + pix.T * bg_r;
        color[3 * o + 1] = pix.rgb[1] + pix.T * bg_g;
        color[3 * o + 2] = pix.rgb[2] + pix.T * bg_b;
        alpha[o] = 1.f - pix.T;
        depth[o] = pix.depth;
        count[o] = pix.count;
        last[o] = last_k;
    }
}

// Backward of render_tiles: one block per tile, one thread per pixel, the tile's splats in reverse from the furthest
// `last` of the tile, in shared-memory batches. Each thread walks its pixel's composited splats back to front
// (splat::composite_backward, splat::alpha_backward) and adds the per-splat gradients with atomics.
extern "C" __global__ void __launch_bounds__(TILE * TILE)
render_tiles_backward(const int* __restrict__ ranges, const unsigned int* __restrict__ values,
                      const float* __restrict__ out_f, const float* __restrict__ rgb, int width, int height,
                      float bg_r, float bg_g, float bg_b, const float* __restrict__ alpha,
                      const int* __restrict__ last, const float* __restrict__ g_color,
                      const float* __restrict__ g_depth, const float* __restrict__ g_alpha,
                      float* __restrict__ g_mean2d, float* __restrict__ g_conic, float* __restrict__ g_opacity,
                      float* __restrict__ g_rgb, float* __restrict__ g_z) {
    const Site at = site(width, height);
    const int tile = at.tile, px = at.px, py = at.py, lane = at.lane;
    const bool inside = at.inside;
    const int begin = ranges[2 * tile];
    const int o = inside ? py * width + px : 0;
    const int my_last = inside ? last[o] : begin;

    __shared__ Batch s;
    __shared__ int s_end;

    if (lane == 0) s_end = begin;
    __syncthreads();
    atomicMax(&s_end, my_last);  // the furthest splat any pixel of the tile composited
    __syncthreads();
    const int end = s_end;

    const float bg[3] = {bg_r, bg_g, bg_b};
    splat::PixelBack b = splat::pixel_back_start(inside ? 1.f - alpha[o] : 1.f, bg);
    float gc[3] = {0.f, 0.f, 0.f}, gd = 0.f, ga = 0.f;
    if (inside) {
        gc[0] = g_color[3 * o]; gc[1] = g_color[3 * o + 1]; gc[2] = g_color[3 * o + 2];
        gd = g_depth[o];
        ga = g_alpha[o];
    }
    for (int top = end; top > begin; top -= TILE * TILE) {
        int k = top - 1 - lane;  // this batch holds [max(begin, top - TILE*TILE), top), loaded back to front
        __syncthreads();
        if (k >= begin) stage(s, lane, values[k], out_f, rgb);
        __syncthreads();
        int batch = min(TILE * TILE, top - begin);
        for (int j = 0; j < batch; ++j) {
            int kk = top - 1 - j;
            if (!inside || kk >= my_last) continue;  // behind this pixel's stop (or not composited at all)
            float a = splat::alpha_at(s.mean[j], s.conic[j], s.opacity[j], px + 0.5f, py + 0.5f);
            if (a <= 0.f) continue;
            float gr[3], gz, gm[2], gcn[3], gop;
            float g_a = splat::composite_backward(b, a, s.rgb[j], s.depth[j], gc, gd, ga, gr, &gz);
            splat::alpha_backward(s.mean[j], s.conic[j], s.opacity[j], px + 0.5f, py + 0.5f, g_a, gm, gcn, &gop);
            int g = s.id[j];
            atomicAdd(&g_rgb[3 * g], gr[0]); atomicAdd(&g_rgb[3 * g + 1], gr[1]); atomicAdd(&g_rgb[3 * g + 2], gr[2]);
            atomicAdd(&g_z[g], gz);
            atomicAdd(&g_mean2d[2 * g], gm[0]); atomicAdd(&g_mean2d[2 * g + 1], gm[1]);
            atomicAdd(&g_conic[3 * g], gcn[0]); atomicAdd(&g_conic[3 * g + 1], gcn[1]);
            atomicAdd(&g_conic[3 * g + 2], gcn[2]);
            atomicAdd(&g_opacity[g], gop);
        }
    }
}
