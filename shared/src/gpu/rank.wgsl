// nook's ranking kernels (WebGPU / wgpu). Two passes per shard of items:
//   score_*: one thread per item computes  cf·u_cf + text·u_text  (int8 rows with per-row scales,
//            or f32 rows) and writes -inf for excluded items;
//   select:  one workgroup per 2048 scores sorts them (bitonic, score descending then index
//            ascending, the CPU's tie rule) and keeps the best `k`.
// The host merges the per-workgroup candidates on the CPU. In the int8 variant every dot product
// is an exact integer sum, so scores match the CPU path bit for bit.

struct Params {
    n_items: u32,      // items in this shard
    first_item: u32,   // global index of the shard's first item
    cf_words: u32,     // u32 words per cf row (int8: dim / 4; f32: dim)
    text_words: u32,   // u32 words per text row
    cf_qscale: f32,    // the query's quantisation scale (int8 variant)
    text_qscale: f32,
    k: u32,            // candidates kept per workgroup
    cf_dim: u32,       // where the text query starts in `query`
}

// Six storage buffers: within WebGPU's default limit of eight per shader stage.
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> cf_rows: array<u32>;
@group(0) @binding(2) var<storage, read> text_rows: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;       // cf scales of the shard's items, then text scales
@group(0) @binding(4) var<storage, read> query: array<i32>;        // cf query, then text query (int8: i16-range ints; f32: float bits)
@group(0) @binding(5) var<storage, read> excluded: array<u32>;     // bitmask over the shard's items
@group(0) @binding(6) var<storage, read_write> scores: array<f32>;
@group(0) @binding(7) var<storage, read_write> candidates: array<vec2<u32>>; // (score bits, global index)

const NEG_INF: f32 = -3.4e38; // excluded items (real scores are never this low)

fn is_excluded(i: u32) -> bool {
    return (excluded[i >> 5u] & (1u << (i & 31u))) != 0u;
}

// Sign-extends the four bytes of a packed word.
fn unpack_i8(w: u32) -> vec4<i32> {
    let v = bitcast<i32>(w);
    return vec4<i32>((v << 24u) >> 24u, (v << 16u) >> 24u, (v << 8u) >> 24u, v >> 24u);
}

// Storage pointers cannot be passed to functions in WGSL, hence one function per table.
fn dot_cf_i8(row: u32) -> i32 {
    var acc: i32 = 0;
    let base = row * params.cf_words;
    for (var w: u32 = 0u; w < params.cf_words; w = w + 1u) {
        let b = unpack_i8(cf_rows[base + w]);
        let q = 4u * w;
        acc = acc + b.x * query[q] + b.y * query[q + 1u] + b.z * query[q + 2u] + b.w * query[q + 3u];
    }
    return acc;
}

fn dot_text_i8(row: u32) -> i32 {
    var acc: i32 = 0;
    let base = row * params.text_words;
    for (var w: u32 = 0u; w < params.text_words; w = w + 1u) {
        let b = unpack_i8(text_rows[base + w]);
        let q = params.cf_dim + 4u * w;
        acc = acc + b.x * query[q] + b.y * query[q + 1u] + b.z * query[q + 2u] + b.w * query[q + 3u];
    }
    return acc;
}

@compute @workgroup_size(256)
fn score_int8(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n_items) { return; }
    if (is_excluded(i)) { scores[i] = NEG_INF; return; }
    let cf = f32(dot_cf_i8(i)) * (scales[i] * params.cf_qscale);
    let text = f32(dot_text_i8(i)) * (scales[params.n_items + i] * params.text_qscale);
    scores[i] = cf + text;
}

fn dot_cf_f32(row: u32) -> f32 {
    var acc: f32 = 0.0;
    let base = row * params.cf_words;
    for (var w: u32 = 0u; w < params.cf_words; w = w + 1u) {
        acc = acc + bitcast<f32>(cf_rows[base + w]) * bitcast<f32>(query[w]);
    }
    return acc;
}

fn dot_text_f32(row: u32) -> f32 {
    var acc: f32 = 0.0;
    let base = row * params.text_words;
    for (var w: u32 = 0u; w < params.text_words; w = w + 1u) {
        acc = acc + bitcast<f32>(text_rows[base + w]) * bitcast<f32>(query[params.cf_dim + w]);
    }
    return acc;
}

@compute @workgroup_size(256)
fn score_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.n_items) { return; }
    if (is_excluded(i)) { scores[i] = NEG_INF; return; }
    scores[i] = dot_cf_f32(i) + dot_text_f32(i);
}

const CHUNK: u32 = 2048u;
var<workgroup> keys: array<f32, 2048>;
var<workgroup> ids: array<u32, 2048>;

// Whether (sa, ia) ranks before (sb, ib): higher score first, then lower index.
fn before(sa: f32, ia: u32, sb: f32, ib: u32) -> bool {
    return sa > sb || (sa == sb && ia < ib);
}

@compute @workgroup_size(256)
fn select_top(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let start = wg.x * CHUNK;
    for (var j: u32 = lid.x; j < CHUNK; j = j + 256u) {
        let i = start + j;
        if (i < params.n_items) {
            keys[j] = scores[i];
            ids[j] = i;
        } else {
            keys[j] = NEG_INF;
            ids[j] = 0xffffffffu;
        }
    }
    workgroupBarrier();
    // Bitonic sort of the chunk into "before" order.
    for (var size: u32 = 2u; size <= CHUNK; size = size << 1u) {
        for (var stride: u32 = size >> 1u; stride > 0u; stride = stride >> 1u) {
            for (var j: u32 = lid.x; j < CHUNK; j = j + 256u) {
                let partner = j ^ stride;
                if (partner > j) {
                    let ascending = (j & size) == 0u;
                    let first_wins = before(keys[j], ids[j], keys[partner], ids[partner]);
                    if (first_wins != ascending) {
                        let s = keys[j]; keys[j] = keys[partner]; keys[partner] = s;
                        let d = ids[j]; ids[j] = ids[partner]; ids[partner] = d;
                    }
                }
            }
            workgroupBarrier();
        }
    }
    for (var j: u32 = lid.x; j < params.k; j = j + 256u) {
        candidates[wg.x * params.k + j] = vec2<u32>(bitcast<u32>(keys[j]), select(ids[j] + params.first_item, 0xffffffffu, ids[j] == 0xffffffffu));
    }
}
