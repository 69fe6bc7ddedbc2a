//! Scoring: one dot product per item against a query vector, over f32 or int8 item tables.

use crate::linalg::dot;
use crate::quant::{Int8Rows, Matrix};

/// `out[i] = items[i] · query (+ bias[i])` for a row-major `n x dim` item table.
pub fn score_items(items: &[f32], dim: usize, query: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    assert_eq!(query.len(), dim, "query has {} dims, items have {dim}", query.len());
    assert_eq!(items.len(), out.len() * dim, "item table is not out.len() x dim");
    for (o, row) in out.iter_mut().zip(items.chunks_exact(dim)) {
        *o = dot(row, query);
    }
    if let Some(bias) = bias {
        assert_eq!(bias.len(), out.len(), "one bias per item");
        for (o, b) in out.iter_mut().zip(bias) {
            *o += b;
        }
    }
}

/// [`score_items`] (no bias) for several queries: `out[q * n + i] = items[i] · queries[q]` for
/// the `n` rows, each the same bits as [`score_items`] gives. Every row is read once per four
/// queries rather than once per query: a table of megabytes streams from memory on each pass, and
/// evaluation scores hundreds of people against it.
pub fn score_items_many(items: &[f32], dim: usize, queries: &[&[f32]], out: &mut [f32]) {
    assert!(dim > 0 && items.len().is_multiple_of(dim), "item table is not n x {dim}");
    assert!(queries.iter().all(|q| q.len() == dim), "every query has {dim} dims");
    assert_eq!(out.len(), queries.len() * (items.len() / dim), "one score per query and item");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked above).
        return unsafe { score_items_many_avx(items, dim, queries, out) };
    }
    score_items_many_body(items, dim, queries, out)
}

/// Four queries per pass in AVX registers ([`crate::linalg::dots4_avx`]: the same bits).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn score_items_many_avx(items: &[f32], dim: usize, queries: &[&[f32]], out: &mut [f32]) {
    score_items_many_with(items, dim, queries, out, |row, four| crate::linalg::dots4_avx(row, four))
}

fn score_items_many_body(items: &[f32], dim: usize, queries: &[&[f32]], out: &mut [f32]) {
    score_items_many_with(items, dim, queries, out, crate::linalg::dots)
}

/// Rows outer, queries inner, so each row is read from memory once; `dots4` scores four queries.
#[inline(always)]
fn score_items_many_with(
    items: &[f32],
    dim: usize,
    queries: &[&[f32]],
    out: &mut [f32],
    dots4: impl Fn(&[f32], [&[f32]; 4]) -> [f32; 4],
) {
    let n = items.len() / dim;
    let groups = queries.chunks_exact(4);
    let rest = groups.remainder();
    for (i, row) in items.chunks_exact(dim).enumerate() {
        for (g, four) in groups.clone().enumerate() {
            let s = dots4(row, [four[0], four[1], four[2], four[3]]);
            for (k, v) in s.into_iter().enumerate() {
                out[(4 * g + k) * n + i] = v;
            }
        }
        for (k, q) in rest.iter().enumerate() {
            out[(queries.len() - rest.len() + k) * n + i] = dot(row, q);
        }
    }
}

/// `out[i] = row_i · query` for a table in either storage.
pub fn score_matrix(m: &Matrix, cols: usize, query: &[f32], out: &mut [f32]) {
    match m {
        Matrix::F32(v) => score_items(v, cols, query, None, out),
        Matrix::Int8(q) => score_int8(q, query, out),
    }
}

/// `out[r] = row · query` for just the listed `rows` of a table: the same bits as
/// [`score_matrix`] gives those rows (the same products in the same order), for a backend that
/// scored the rest elsewhere.
pub fn score_matrix_rows(m: &Matrix, cols: usize, query: &[f32], rows: &[u32], out: &mut [f32]) {
    assert_eq!(query.len(), cols, "query has {} dims, items have {cols}", query.len());
    assert_eq!(rows.len(), out.len(), "one output per row");
    match m {
        Matrix::F32(v) => {
            for (o, &r) in out.iter_mut().zip(rows) {
                *o = dot(&v[r as usize * cols..(r as usize + 1) * cols], query);
            }
        }
        Matrix::Int8(items) => {
            let (q, q_scale) = quantize_query(query);
            if q_scale == 0.0 {
                out.fill(0.0);
                return;
            }
            for (o, &r) in out.iter_mut().zip(rows) {
                let r = r as usize;
                int8_rows(
                    &items.q[r * cols..(r + 1) * cols],
                    &items.scales[r..=r],
                    &q,
                    q_scale,
                    std::slice::from_mut(o),
                );
            }
        }
    }
}

/// Widest int8 row [`score_int8`] accepts: `cols * 127 * 32767` must fit an i32.
pub const MAX_INT8_COLS: usize = 512;

/// `out[i] ≈ items[i] · query` for int8 rows, reading one byte per weight.
///
/// The query is quantised to i16 (error below 1/32767 of its largest entry) and each row's dot
/// product accumulated exactly in i32, then scaled once: integer sums are exact and associative, so
/// the compiler may vectorise freely (`pmaddwd` on x86, `i32x4.dot_i16x8_s` on wasm) and every
/// platform gets the same bits.
pub fn score_int8(items: &Int8Rows, query: &[f32], out: &mut [f32]) {
    let dim = items.cols;
    assert_eq!(query.len(), dim, "query has {} dims, items have {dim}", query.len());
    assert_eq!(items.rows(), out.len(), "one output per item");
    assert!(dim <= MAX_INT8_COLS, "int8 rows wider than {MAX_INT8_COLS} could overflow");
    let (q, q_scale) = quantize_query(query);
    if q_scale == 0.0 {
        out.fill(0.0);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { int8_rows_avx2(&items.q, &items.scales, &q, q_scale, out) };
        return;
    }
    int8_rows(&items.q, &items.scales, &q, q_scale, out);
}

/// The query as [`score_int8`] uses it: i16 values and their scale (0 for an all-zero query).
/// The GPU kernels take exactly these, so both paths compute the same integers.
pub fn quantize_query(query: &[f32]) -> (Vec<i16>, f32) {
    let max = query.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; query.len()], 0.0);
    }
    let scale = max / 32767.0;
    (query.iter().map(|v| (v / scale).round() as i16).collect(), scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn int8_rows_avx2(rows: &[i8], scales: &[f32], q: &[i16], q_scale: f32, out: &mut [f32]) {
    int8_rows(rows, scales, q, q_scale, out)
}

#[inline(always)]
fn int8_rows(rows: &[i8], scales: &[f32], q: &[i16], q_scale: f32, out: &mut [f32]) {
    for ((o, row), &s) in out.iter_mut().zip(rows.chunks_exact(q.len())).zip(scales) {
        let acc: i32 = row.iter().zip(q).map(|(&a, &b)| a as i32 * b as i32).sum();
        *o = acc as f32 * (s * q_scale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_dot_products_plus_bias() {
        let items = [1.0, 0.0, 0.0, 1.0, 2.0, 2.0];
        let mut out = [0f32; 3];
        score_items(&items, 2, &[3.0, -1.0], Some(&[0.0, 0.5, 1.0]), &mut out);
        assert_eq!(out, [3.0, -0.5, 5.0]);
    }

    #[test]
    fn many_queries_score_as_each_alone_to_the_bit() {
        for dim in [1, 13, 64, 200] {
            let n = 37;
            let items: Vec<f32> = (0..dim * n).map(|i| ((i * 7919 % 201) as f32 - 100.0) * 0.013).collect();
            let queries: Vec<Vec<f32>> =
                (0..9).map(|q| (0..dim).map(|i| ((i * 31 + q * 5) % 17) as f32 * 0.1 - 0.8).collect()).collect();
            for m in 0..=queries.len() {
                let refs: Vec<&[f32]> = queries[..m].iter().map(Vec::as_slice).collect();
                let mut many = vec![f32::NAN; m * n];
                score_items_many(&items, dim, &refs, &mut many);
                for (q, row) in refs.iter().zip(many.chunks_exact(n)) {
                    let mut alone = vec![0f32; n];
                    score_items(&items, dim, q, None, &mut alone);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(row), bits(&alone), "dim {dim}, {m} queries");
                }
            }
        }
    }

    #[test]
    fn int8_scores_track_f32_scores() {
        let dim = 64;
        let values: Vec<f32> = (0..dim * 50).map(|i| ((i * 7919 % 201) as f32 - 100.0) * 0.01).collect();
        let query: Vec<f32> = (0..dim).map(|i| ((i * 31 % 17) as f32 - 8.0) * 0.1).collect();
        let q = Int8Rows::quantize(&values, dim);
        let (mut exact, mut fast) = (vec![0f32; 50], vec![0f32; 50]);
        score_items(&q.dequantize(), dim, &query, None, &mut exact);
        score_int8(&q, &query, &mut fast);
        let norm: f32 = query.iter().map(|v| v.abs()).sum();
        for (a, b) in exact.iter().zip(&fast) {
            assert!((a - b).abs() < 1e-3 * norm, "{a} vs {b}");
        }
        let mut zero = vec![1f32; 50];
        score_int8(&q, &vec![0.0; dim], &mut zero);
        assert!(zero.iter().all(|&v| v == 0.0));
    }
}
